#!/bin/bash
# serve-load.sh [CHECKPOINT] — nmt serve against hostile clients on loopback (opt-in: `make serve-load`;
# about a minute). With no CHECKPOINT, a small, barely trained model (d_model 256, 3+3 layers: long,
# slow outputs, the worst case) is made first. It measures a normal one-sentence request (from
# 127.0.0.2) while the server is
#   idle;
#   under the largest request the limits allow, sent again and again by one client (256 sentences,
#     --max-work 4096: beam 16), and a second such client;
#   under 256 connections from 127.0.0.1 trickling a byte every second (--max-per-address 32 lets 32
#     in; --timeout 5 ends each after 5 s whatever its pace);
# and then how long SIGTERM takes to end the server under both loads (--stop-timeout 2).
# Fails (exit 1) when the normal request is delayed by more than MAX_DELAY seconds (default 3) at the
# median, or fails, or when the stop takes more than --stop-timeout + 3 s.
#   NMT=./nmt bash scripts/serve-load.sh [CHECKPOINT]
set -u
NMT=${NMT:-./nmt}
MAX_DELAY=${MAX_DELAY:-3}
T=$(mktemp -d /tmp/nmt-serve-load-XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap "exit 130" INT TERM
fail=0

CK=${1:-}
if [ -z "$CK" ]; then
    . "$(dirname "$0")/../tests/ckpt-lib.sh"
    reversal_corpus "$T" 11 600
    cat >"$T/cfg.json" <<JSON
{"model": {"d_model": 256, "heads": 4, "d_ff": 1024, "encoder_layers": 3, "decoder_layers": 3},
 "data": {"train_src": "$T/s.txt", "train_tgt": "$T/t.txt"},
 "train": {"max_steps": 2, "batch_tokens": 400, "log_every": 1, "warmup_steps": 5, "lr": 0.001,
           "checkpoint_dir": "$T/ck"}}
JSON
    OMP_NUM_THREADS=2 "$NMT" train --config "$T/cfg.json" --quiet >/dev/null 2>&1 || { echo "training failed"; exit 2; }
    CK="$T/ck/last.ckpt"
fi

"$NMT" serve --checkpoint "$CK" --port 0 --timeout 5 --stop-timeout 2 >"$T/out" 2>"$T/err" &
SRV=$!
PIDS="$PIDS $SRV"
for _ in $(seq 100); do grep -q "listening on" "$T/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^nmt serve: listening on \(http:[^ ]*\) .*/\1/p' "$T/out")
[ -n "$URL" ] || { echo "the server did not start: $(cat "$T/err")"; exit 2; }
PORT=${URL##*:}

printf '{"q": "w1 w2 w3 w4 w5"}' >"$T/one.json"
# The largest request the default limits allow: 256 sentences of 39 characters (9984 of --max-chars
# 10000), beam 16 (256 x 16 = --max-work 4096).
line='w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w1 w2 w3'
{ printf '{"beam": 16, "q": ['; for i in $(seq 255); do printf '"%s", ' "$line"; done; printf '"%s"]}' "$line"; } >"$T/big.json"

# normal N: N one-sentence requests from 127.0.0.2, one after another; prints the median seconds and the errors.
normal() {
    for _ in $(seq "$1"); do
        curl -s -m 60 --interface 127.0.0.2 -o /dev/null -w '%{http_code} %{time_total}\n' \
            -H Content-Type:application/json --data-binary @"$T/one.json" "$URL/translate" || echo "000 60"
        sleep 0.2
    done >"$T/normal"
    errors=$(awk '$1 != 200' "$T/normal" | wc -l)
    median=$(awk '{ print $2 }' "$T/normal" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    max=$(awk '{ print $2 }' "$T/normal" | sort -n | tail -1)
    echo "$median $max $errors"
}

# hostile: the big request again and again until $T/stop exists; "status seconds" per request to $T/big.N
hostile() {
    while [ ! -e "$T/stop" ]; do
        curl -s -m 120 -o /dev/null -w '%{http_code} %{time_total}\n' -H Content-Type:application/json \
            --data-binary @"$T/big.json" "$URL/translate" || echo "000 0"
    done >"$T/big.$1"
}

# trickle N: N connections from 127.0.0.1, each sent one byte of a request line a second, until $T/stop
# (in one shell: the connections are its file descriptors; those closed by the server are reopened).
trickle() {
    trap '' PIPE
    local fds=() k
    while [ ! -e "$T/stop" ]; do
        for k in $(seq 0 $(($1 - 1))); do
            if [ -z "${fds[$k]:-}" ] || ! printf 'P' >&"${fds[$k]}" 2>/dev/null; then
                [ -n "${fds[$k]:-}" ] && exec {fds[$k]}>&-
                exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && fds[$k]=$fd || fds[$k]=""
            fi
        done
        sleep 1
    done
}

# under LABEL: times 10 normal requests beside the load; fails the run past MAX_DELAY or on an error.
under() {
    local med max err delay
    read -r med max err < <(normal 10)
    delay=$(awk -v a="$med" -v b="$idle" 'BEGIN { printf "%.3f", a - b }')
    echo "serve-load: $1: a one-sentence request takes $med s (median of 10; max $max s; $err errors):" \
         "delayed by $delay s"
    awk -v d="$delay" -v m="$MAX_DELAY" 'BEGIN { exit !(d <= m) }' && [ "$err" -eq 0 ] || fail=1
}

read -r idle idle_max idle_err < <(normal 5)
echo "serve-load: idle: a one-sentence request takes $idle s (median of 5; max $idle_max s; $idle_err errors)"

hostile 1 & PIDS="$PIDS $!"
sleep 1
under "the largest request (256 sentences, beam 16) sent again and again by one client"

hostile 2 & PIDS="$PIDS $!"
trickle 256 & PIDS="$PIDS $!"
sleep 2
under "two such clients and 256 trickling connections from 127.0.0.1"
big=$(cat "$T"/big.* 2>/dev/null | awk '$1 == 200 { n++; s += $2; if ($2 > m) m = $2 } END { printf "%d answered, %.2f s each on average, at most %.2f s", n, n ? s / n : 0, m }')
echo "serve-load: the largest requests so far: $big"

t0=$(date +%s%N)
kill -TERM "$SRV"
wait "$SRV"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
touch "$T/stop"
echo "serve-load: SIGTERM under that load: exit $rc after $ms ms (--stop-timeout 2)"
grep -E 'still in flight|cancelled|stopped' "$T/err" | sed 's/^/serve-load:   /' | sort | uniq -c | sed 's/^ *//'
[ "$rc" -eq 0 ] && [ "$ms" -le 5000 ] || fail=1
wait 2>/dev/null
echo "serve-load: $([ $fail -eq 0 ] && echo ok || echo FAILED)"
exit $fail
