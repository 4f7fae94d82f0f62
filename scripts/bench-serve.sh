#!/bin/bash
# bench-serve.sh URL SENTENCES — a bounded load test of a running `nmt serve`:
# CLIENTS clients (curl in a loop) each send one sentence per request, taken
# in turn from the file SENTENCES, for DURATION seconds; prints requests/s,
# sentences/s, the p50/p90/p99 latency and the number of errors (any status
# but 200). Exit status 1 when any request failed.
#   CLIENTS=16 DURATION=30 bash scripts/bench-serve.sh http://127.0.0.1:8080 data/toy/test.src
set -u
URL=${1:?usage: bench-serve.sh URL SENTENCES}
SRC=${2:?usage: bench-serve.sh URL SENTENCES}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-30}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=$(wc -l <"$SRC")
[ "$n" -gt 0 ] || { echo "bench-serve.sh: $SRC is empty" >&2; exit 2; }

# One JSON body per sentence ("q" escaped for quotes and backslashes).
i=0
while IFS= read -r line; do
    esc=$(printf '%s' "$line" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
    printf '{"q": "%s"}' "$esc" >"$TMP/body.$i"
    i=$((i + 1))
done <"$SRC"

client() {  # client ID: requests until the deadline; "status seconds" per line
    local k=$1 end=$2
    while [ "$(date +%s%N)" -lt "$end" ]; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
            --data-binary @"$TMP/body.$((k % n))" "$URL/translate" || echo "000 0"
        k=$((k + CLIENTS))
    done >"$TMP/client.$1"
}

start=$(date +%s%N)
end=$((start + DURATION * 1000000000))
for c in $(seq 0 $((CLIENTS - 1))); do client "$c" "$end" & done
wait
wall=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$TMP"/client.* >"$TMP/all"
total=$(wc -l <"$TMP/all")
errors=$(awk '$1 != 200' "$TMP/all" | wc -l)
awk '$1 == 200 { print $2 }' "$TMP/all" | sort -n >"$TMP/lat"
ok=$(wc -l <"$TMP/lat")
pct() { [ "$ok" -gt 0 ] && awk -v p="$1" -v n="$ok" 'NR == int((n - 1) * p) + 1 { printf "%.1f", $1 * 1000 }' "$TMP/lat"; }
echo "bench-serve: $CLIENTS clients, $(awk -v w="$wall" 'BEGIN { printf "%.1f", w / 1000 }') s: $total requests" \
     "($(awk -v t="$total" -v w="$wall" 'BEGIN { printf "%.1f", t / (w / 1000) }') requests/s, one sentence each)," \
     "latency p50 $(pct 0.5) ms, p90 $(pct 0.9) ms, p99 $(pct 0.99) ms; $errors errors"
[ "$errors" -eq 0 ]
