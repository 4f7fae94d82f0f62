#!/bin/sh
# bench-window.sh — local attention against full attention on long inputs:
# `nmt bench` training steps at source = target length L, with
# model.attention_window W (0 = full attention), interleaved and repeated;
# one table of medians: ms/step, the activation arena (alloc MiB) and the
# peak resident set, with the ratios full / window.
#
#   make bench-window          or   sh scripts/bench-window.sh
# Environment:
#   NMT=./nmt                  the binary
#   LENGTHS="128 512 2048"     source and target lengths
#   WINDOWS="0 64"             attention windows (0 = full)
#   ROUNDS=3                   interleaved rounds (medians)
#   THREADS=2                  OMP_NUM_THREADS
#   TOKENS=4096                train.batch_tokens (B = TOKENS / L)
#   PYTHON=/usr/bin/python3    for the table
# The model is bench-small's width (d_model 256, 4 heads, d_ff 1024) with 2+2
# layers; cross-attention stays full at every window (the issue's design), so
# its S x T weights still grow with the square of the length.
set -eu
NMT=${NMT:-./nmt}
LENGTHS=${LENGTHS:-128 512 2048}
WINDOWS=${WINDOWS:-0 64}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-4096}
PYTHON=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

config() {  # config L W -> path
    f="$TMP/window-L$1-W$2.json"
    cat >"$f" <<EOF
{
  "model": {"d_model": 256, "heads": 4, "d_ff": 1024, "encoder_layers": 2, "decoder_layers": 2,
            "tie_output": true, "shared_vocab": true, "attention_window": $2,
            "dropout": 0.1, "attention_dropout": 0.0, "ffn_dropout": 0.0},
  "data": {"train_src": "/dev/null", "train_tgt": "/dev/null", "tokenizer": "word", "vocab_size": 8000,
           "max_src_len": $1, "max_tgt_len": $1},
  "train": {"seed": 1, "checkpoint_dir": "$TMP/ck", "batch_tokens": $TOKENS, "lr_schedule": "inverse_sqrt",
            "lr": 0.0005, "warmup_steps": 4000}
}
EOF
    echo "$f"
}

echo "bench-window.sh: lengths [$LENGTHS], windows [$WINDOWS], $ROUNDS round(s), $THREADS thread(s); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then
    echo "bench-window.sh: warning: the machine is busy (1-minute load $(cut -d' ' -f1 /proc/loadavg)); the figures will be noisy" >&2
fi
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for L in $LENGTHS; do
        steps=5
        [ "$L" -ge 2048 ] && steps=3
        for W in $WINDOWS; do
            out=$(OMP_NUM_THREADS=$THREADS "$NMT" bench --config "$(config "$L" "$W")" --steps $steps --warmup 1 --json)
            echo "$out" | sed "s/}\$/, \"L\": $L, \"W\": $W}/" >>"$TMP/results.jsonl"
            echo "$out" | "$PYTHON" -c "import json,sys; r=json.loads(sys.stdin.read()); print('round $r L $L W $W: %.1f ms/step, arena %.1f MiB, peak RSS %.1f MiB' % (r['ms_median'], r['alloc_mib'], r['peak_rss_mib']))"
        done
    done
    r=$((r + 1))
done

"$PYTHON" - "$TMP/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
Ls = sorted({r["L"] for r in rows})
Ws = sorted({r["W"] for r in rows})
def med(L, W, k):
    v = [r[k] for r in rows if r["L"] == L and r["W"] == W]
    return statistics.median(v) if v else None
print()
print("| length | batch | window | ms/step | arena MiB | peak RSS MiB | step full/window | arena full/window |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for L in Ls:
    B = next(r["B"] for r in rows if r["L"] == L)
    for W in Ws:
        ms, mib, rss = med(L, W, "ms_median"), med(L, W, "alloc_mib"), med(L, W, "peak_rss_mib")
        full_ms, full_mib = med(L, 0, "ms_median"), med(L, 0, "alloc_mib")
        rs = "%.2fx" % (full_ms / ms) if W and full_ms else "-"
        ra = "%.2fx" % (full_mib / mib) if W and full_mib else "-"
        print("| %d | %d | %s | %.1f | %.1f | %.1f | %s | %s |" % (L, B, W or "full", ms, mib, rss, rs, ra))
EOF
