#!/bin/sh
# toy-eval.sh NMT CHECKPOINT PREFIX — greedy-translates PREFIX.src, prints a
# few examples and the exact-match accuracy against PREFIX.tgt.
set -e
NMT=${1:-./nmt}
CKPT=${2:-checkpoints/toy/last.ckpt}
PREFIX=${3:-data/toy/test}
HYP=$(mktemp)
trap 'rm -f "$HYP"' EXIT
start=$(date +%s%N)
"$NMT" translate --checkpoint "$CKPT" <"$PREFIX.src" >"$HYP"
end=$(date +%s%N)
echo "examples (source / reference / nmt):"
for i in 1 2 3 4 5; do
    echo "  src: $(sed -n "${i}p" "$PREFIX.src")"
    echo "  ref: $(sed -n "${i}p" "$PREFIX.tgt")"
    echo "  nmt: $(sed -n "${i}p" "$HYP")"
    echo
done
paste -d '\t' "$HYP" "$PREFIX.tgt" | awk -F '\t' -v ms="$(( (end - start) / 1000000 ))" '
    { n++; if ($1 == $2) ok++ }
    END { printf "exact match: %d / %d = %.1f%% (translated in %.2f s)\n", ok, n, 100 * ok / n, ms / 1000 }'
