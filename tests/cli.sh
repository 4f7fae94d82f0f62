#!/bin/sh
# cli.sh — command-line behaviour: bad input gives exit status 2 and one clear
# message naming the file/key; nothing is written. Run by `make test`.
# Usage: NMT=./nmt sh tests/cli.sh
set -u
NMT=${NMT:-./nmt}
T=$(mktemp -d /tmp/nmt-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

# expect STATUS NEEDLE -- command...: checks exit status and that stderr contains NEEDLE.
expect() {
    want=$1 needle=$2
    shift 3
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" -eq "$want" ] && grep -qF -- "$needle" "$T/err"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> status $got (want $want), stderr: $(head -c 300 "$T/err") (want '$needle')"
    fi
}

printf 'a b c\nb c a\nc a b\n' >"$T/s.txt"
printf 'x y z\ny z x\nz x y\n' >"$T/t.txt"
cat >"$T/ok.json" <<JSON
{"model": {"d_model": 16, "heads": 2, "d_ff": 16, "encoder_layers": 1, "decoder_layers": 1},
 "data": {"train_src": "$T/s.txt", "train_tgt": "$T/t.txt"},
 "train": {"max_steps": 3, "batch_tokens": 200, "log_every": 1, "checkpoint_dir": "$T/ck"}}
JSON

expect 2 "no/such.json" -- "$NMT" train --config "$T/no/such.json"
expect 2 "unknown option" -- "$NMT" train --config "$T/ok.json" --bogus
expect 2 "needs a value" -- "$NMT" train --config
expect 2 "model.d_modl" -- "$NMT" train --config "$T/ok.json" --set model.d_modl=4
expect 2 "model.heads" -- "$NMT" train --config "$T/ok.json" --set model.d_model=18 --set model.heads=4
expect 2 "train.max_steps" -- "$NMT" train --config "$T/ok.json" --set train.max_steps=abc
sed 's/"d_ff": 16/"d_ff": 16,,/' "$T/ok.json" >"$T/bad.json"
expect 2 "bad.json:1: malformed JSON" -- "$NMT" train --config "$T/bad.json"
expect 2 "data.train_src" -- "$NMT" train --config "$T/ok.json" --set data.train_src="$T/missing.txt"
if [ -e "$T/ck" ]; then fail=$((fail + 1)); echo "FAIL: a rejected config wrote $T/ck"; fi
printf 'a b\n' >"$T/short.txt"
expect 2 "has 3 lines but" -- "$NMT" train --config "$T/ok.json" --set data.train_tgt="$T/short.txt"
printf 'a \377 b\nb\nc\n' >"$T/bad8.txt"
expect 2 "bad8.txt:1: invalid UTF-8" -- "$NMT" train --config "$T/ok.json" --set data.train_src="$T/bad8.txt"
: >"$T/empty.txt"
expect 2 "no sentences" -- "$NMT" train --config "$T/ok.json" --set data.train_src="$T/empty.txt" --set data.train_tgt="$T/empty.txt"

# --dry-run validates and writes nothing.
"$NMT" train --config "$T/ok.json" --dry-run >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^parameters: " "$T/out" && grep -q '"d_model":[[:space:]]*16' "$T/out" && [ ! -e "$T/ck" ]; then
    pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: --dry-run: $(cat "$T/err")"; fi

# A real (tiny) run, then the checkpoint's failure modes.
if OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --quiet >"$T/out" 2>"$T/err" &&
   [ "$(wc -l <"$T/ck/train_log.jsonl")" -eq 3 ] &&
   grep -q '"step": 3, "epoch": [0-9]*, "loss": ' "$T/ck/train_log.jsonl" &&
   printf 'a b c\n\nb a\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" >"$T/tr" && [ "$(wc -l <"$T/tr")" -eq 3 ] &&
   "$NMT" info "$T/ck/last.ckpt" >"$T/info" && grep -q "step: 3" "$T/info"; then
    pass=$((pass + 1))
else
    fail=$((fail + 1)); echo "FAIL: tiny train/translate/info run: $(cat "$T/err")"
fi
expect 2 "--checkpoint" -- "$NMT" translate
expect 2 "--nbest (3) cannot exceed --beam (2)" -- "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 2 --nbest 3
expect 2 "has 3 lines but" -- "$NMT" eval --checkpoint "$T/ck/last.ckpt" --src "$T/s.txt" --ref "$T/short.txt"
expect 2 "--src and --ref are required" -- "$NMT" eval --checkpoint "$T/ck/last.ckpt" --src "$T/s.txt"
if "$NMT" eval --checkpoint "$T/ck/last.ckpt" --src "$T/s.txt" --ref "$T/t.txt" --beam 2 --output "$T/hyp" >"$T/out" 2>"$T/err" &&
   grep -q "^BLEU = " "$T/out" && grep -q "^chrF2 = " "$T/out" && [ "$(wc -l <"$T/hyp")" -eq 3 ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: eval: $(cat "$T/err")"; fi
printf 'a b c\nb a\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 3 --nbest 2 >"$T/nb" 2>"$T/err"
if [ "$(grep -c ' ||| ' "$T/nb")" -eq 4 ] && grep -q '^1 ||| ' "$T/nb"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: nbest output: $(cat "$T/nb") $(cat "$T/err")"; fi
expect 2 "missing.ckpt" -- "$NMT" translate --checkpoint "$T/missing.ckpt"
expect 2 "--beam" -- "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 0
cp "$T/ck/last.ckpt" "$T/flip.ckpt"
size=$(wc -c <"$T/flip.ckpt")
printf '\001' | dd of="$T/flip.ckpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect 2 "flip.ckpt" -- "$NMT" info "$T/flip.ckpt"
expect 2 "flip.ckpt" -- "$NMT" translate --checkpoint "$T/flip.ckpt"
head -c $((size - 7)) "$T/ck/last.ckpt" >"$T/trunc.ckpt"
expect 2 "trunc.ckpt" -- "$NMT" info "$T/trunc.ckpt"
expect 2 "s.txt" -- "$NMT" info "$T/s.txt"
expect 2 "unknown command" -- "$NMT" frobnicate
printf 'a \377\n' >"$T/in8.txt"
"$NMT" translate --checkpoint "$T/ck/last.ckpt" <"$T/in8.txt" >"$T/out" 2>"$T/err"
if [ $? -eq 2 ] && grep -q "stdin:1: invalid UTF-8" "$T/err" && [ ! -s "$T/out" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: invalid UTF-8 on stdin: $(cat "$T/err")"; fi

printf 'a b\nb c\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --attention-png "$T/a.png" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "exactly one input sentence" "$T/err" && [ ! -e "$T/a.png" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: --attention-png with two lines: $(cat "$T/err")"; fi
printf 'a b c\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --attention-png "$T/a.png" --attention-heads >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && [ "$(head -c 4 "$T/a.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: --attention-png: $(cat "$T/err")"; fi
# The plot script (when gnuplot is installed).
if command -v gnuplot >/dev/null; then
    if sh scripts/plot-log.sh "$T/ck/train_log.jsonl" "$T/log.png" 2>"$T/err" && [ -s "$T/log.png" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: plot-log.sh: $(cat "$T/err")"; fi
    sh scripts/plot-log.sh "$T/missing.jsonl" "$T/log2.png" 2>/dev/null
    if [ $? -eq 2 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: plot-log.sh on a missing log"; fi
else
    echo "cli: gnuplot not installed; plot-log.sh not tested"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
