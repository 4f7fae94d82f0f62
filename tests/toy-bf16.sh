#!/bin/sh
# toy-bf16.sh — the toy job (configs/toy.json, its shipped budget of steps)
# trained with train.precision bf16 must reach at least 90% exact match on
# data/toy/test, decoded as any checkpoint is (float). About two minutes on
# two cores; run by `make test` in the plain build (the sanitizer build runs
# the same code in the unit tests).
set -u
NMT=${NMT:-./nmt}
T=$(mktemp -d /tmp/nmt-toybf16-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: toy-bf16: $*"; exit 1; }

"$NMT" train --config configs/toy.json --set train.precision=bf16 --set train.checkpoint_dir="$T/ck" \
    --quiet >"$T/train.out" 2>&1 || fail "training exited $? ($(tail -n 3 "$T/train.out"))"
"$NMT" info "$T/ck/last.ckpt" | grep -q 'bf16' || fail "nmt info does not say bf16"
sh scripts/toy-eval.sh "$NMT" "$T/ck/last.ckpt" data/toy/test >"$T/eval.out" 2>&1 || fail "toy-eval exited $?"
line=$(grep '^exact match' "$T/eval.out") || fail "no exact-match line ($(tail -n 2 "$T/eval.out"))"
pct=$(echo "$line" | sed 's/.*= \([0-9.]*\)%.*/\1/')
echo "toy-bf16: $line"
awk -v p="$pct" 'BEGIN { exit !(p >= 90) }' || fail "exact match $pct% < 90%"
echo "toy-bf16: passed"
