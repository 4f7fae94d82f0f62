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
# train.precision is "fp32" or "bf16": another value or type names the key and both.
expect 2 '--set train.precision: expected one of "fp32|bf16" (got "fp16")' -- \
    "$NMT" train --config "$T/ok.json" --set train.precision=fp16
sed 's/"max_steps": 3,/"max_steps": 3, "precision": 16,/' "$T/ok.json" >"$T/prec.json"
expect 2 "$T/prec.json: train.precision: expected one of \"fp32|bf16\"" -- "$NMT" train --config "$T/prec.json"
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
# --nbest 1 is the Moses format too, with the best hypothesis of the plain output.
printf 'a b c\nb a\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 3 --nbest 1 >"$T/nb1" 2>"$T/err"
printf 'a b c\nb a\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 3 >"$T/plain" 2>>"$T/err"
if [ "$(grep -c '^[01] ||| .* ||| -\{0,1\}[0-9][0-9.]*$' "$T/nb1")" -eq 2 ] &&
   [ "$(sed 's/^[0-9]* ||| \(.*\) ||| [^|]*$/\1/' "$T/nb1")" = "$(cat "$T/plain")" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: --nbest 1 output: $(cat "$T/nb1") / $(cat "$T/plain") $(cat "$T/err")"; fi
# --nbest larger than the hypotheses the search finds (outputs cut at one token, a vocabulary of
# three words): only those found are printed, never a placeholder line with -inf.
printf 'a b c\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 16 --nbest 16 --max-len-a 0 --max-len-b 1 \
    >"$T/nbx" 2>"$T/err"
nx=$(grep -c '^0 ||| ' "$T/nbx")
if [ "$nx" -ge 1 ] && [ "$nx" -lt 16 ] && [ "$(wc -l <"$T/nbx")" -eq "$nx" ] && ! grep -q 'inf' "$T/nbx"; then
    pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: --nbest past the hypotheses found: $(cat "$T/nbx") $(cat "$T/err")"; fi
# A special's spelling in a word-tokenized line is a word like any other (unknown), not the special.
printf 'a </s> b\na <s> b\na <pad> b\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --nbest 1 >"$T/spelled" 2>"$T/err"
printf 'a <unk> b\na <unk> b\na <unk> b\n' | "$NMT" translate --checkpoint "$T/ck/last.ckpt" --nbest 1 >"$T/unk" 2>>"$T/err"
if [ -s "$T/unk" ] && cmp -s "$T/spelled" "$T/unk"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: spelled specials: $(cat "$T/spelled") / $(cat "$T/unk") $(cat "$T/err")"; fi
# nmt score: the log-probability greedy decoding reports (alpha 0: no length
# penalty) for its own output; the same bytes whatever the batch.
printf 'a b c\nb c a\nc a b\nb a\n' >"$T/s4.txt"
"$NMT" translate --checkpoint "$T/ck/last.ckpt" --alpha 0 --nbest 1 <"$T/s4.txt" >"$T/nb4" 2>"$T/err"
sed 's/^[0-9]* ||| \(.*\) ||| [^|]*$/\1/' "$T/nb4" >"$T/t4.txt"
if "$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/t4.txt" >"$T/sc" 2>>"$T/err" &&
   "$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/t4.txt" --batch 1 >"$T/sc1" 2>>"$T/err" &&
   [ "$(wc -l <"$T/sc")" -eq 4 ] && cmp -s "$T/sc" "$T/sc1" &&
   sed 's/.* ||| //' "$T/nb4" | paste - "$T/sc" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 || $2 >= 0) bad = 1 } END { exit bad }'
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: score: $(cat "$T/sc") vs $(cat "$T/nb4") $(cat "$T/err")"; fi
"$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/t4.txt" --normalize >"$T/scn" 2>>"$T/err"
if awk '{ print NF }' "$T/t4.txt" | paste - "$T/sc" "$T/scn" | awk '{ d = $2 / ($1 + 1) - $3; if (d < -1e-6 || d > 1e-6) bad = 1 } END { exit bad }'
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: score --normalize: $(cat "$T/scn")"; fi
expect 2 "has 4 lines but" -- "$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/s.txt"
printf 'x y\nx \377\nz\ny\n' >"$T/bad4.txt"
expect 2 "bad4.txt:2: invalid UTF-8" -- "$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/bad4.txt"
if [ ! -s "$T/out" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: score printed scores before an error"; fi
expect 2 "--checkpoint, --src and --tgt are required" -- "$NMT" score --src "$T/s4.txt"
# Ensembles: a second model of the same vocabulary (another seed).
# It records its languages and the first does not: they do not disagree.
OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --quiet --set train.seed=2 --set train.checkpoint_dir="$T/ck_seed2" \
    --set data.src_lang=de --set data.tgt_lang=en >"$T/out" 2>"$T/err" ||
    { fail=$((fail + 1)); echo "FAIL: second tiny run: $(cat "$T/err")"; }
OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --quiet --set train.seed=3 --set train.checkpoint_dir="$T/ck_fr" \
    --set data.src_lang=fr --set data.tgt_lang=en --set train.max_steps=1 >"$T/out" 2>"$T/err" ||
    { fail=$((fail + 1)); echo "FAIL: a tiny fr-en run: $(cat "$T/err")"; }
expect 2 "ck_fr/last.ckpt: its languages (fr -> en) are not $T/ck_seed2/last.ckpt's (de -> en)" -- \
    "$NMT" translate --checkpoint "$T/ck_seed2/last.ckpt" --checkpoint "$T/ck_fr/last.ckpt"
A="$T/ck/last.ckpt" B="$T/ck_seed2/last.ckpt"
tr_nb() { "$NMT" translate --beam 3 --nbest 2 --alpha 0 "$@" <"$T/s4.txt" 2>>"$T/err"; }
tr_nb --checkpoint "$A" >"$T/ea"; tr_nb --checkpoint "$B" >"$T/eb"
tr_nb --checkpoint "$A" --checkpoint "$A" >"$T/eaa"
tr_nb --checkpoint "$A" --checkpoint "$B" --weights 1,0 >"$T/ea10"
tr_nb --checkpoint "$A" --checkpoint "$B" --weights 0,3 >"$T/eb03"
tr_nb --checkpoint "$A" --checkpoint "$B" >"$T/eab"
tr_nb --checkpoint "$A" --checkpoint "$B" --weights 2,2 --batch 1 >"$T/eab1"
OMP_NUM_THREADS=1 tr_nb --checkpoint "$A" --checkpoint "$B" >"$T/eabt"
if [ -s "$T/ea" ] && cmp -s "$T/ea" "$T/eaa" && cmp -s "$T/ea" "$T/ea10" && cmp -s "$T/eb" "$T/eb03" &&
   ! cmp -s "$T/eab" "$T/ea" && ! cmp -s "$T/eab" "$T/eb" && cmp -s "$T/eab" "$T/eab1" && cmp -s "$T/eab" "$T/eabt"
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: ensemble translate: $(cat "$T/eab") $(cat "$T/err")"; fi
tr_nb --checkpoint "$A" --checkpoint "$B" --int8 >"$T/eab8"; tr_nb --checkpoint "$A" --checkpoint "$B" --int8 --batch 1 >"$T/eab81"
if [ -s "$T/eab8" ] && cmp -s "$T/eab8" "$T/eab81"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: int8 ensemble batch: $(cat "$T/err")"; fi
# An ensemble's score is what its search ranks: its greedy output's log-probability.
"$NMT" translate --checkpoint "$A" --checkpoint "$B" --weights 1,3 --alpha 0 --nbest 1 <"$T/s4.txt" >"$T/eg" 2>"$T/err"
sed 's/^[0-9]* ||| \(.*\) ||| [^|]*$/\1/' "$T/eg" >"$T/eg.txt"
"$NMT" score --checkpoint "$A" --checkpoint "$B" --weights 1,3 --src "$T/s4.txt" --tgt "$T/eg.txt" >"$T/egs" 2>>"$T/err"
"$NMT" score --checkpoint "$A" --src "$T/s4.txt" --tgt "$T/eg.txt" >"$T/egsa" 2>>"$T/err"
"$NMT" score --checkpoint "$B" --src "$T/s4.txt" --tgt "$T/eg.txt" >"$T/egsb" 2>>"$T/err"
if [ "$(wc -l <"$T/egs")" -eq 4 ] && sed 's/.* ||| //' "$T/eg" | paste - "$T/egs" "$T/egsa" "$T/egsb" |
   awk '{ d = $1 - $2; e = $2 - ($3 + 3 * $4) / 4; if (d < 0) d = -d; if (e < 0) e = -e; if (d > 1e-4 || e > 1e-5) bad = 1 }
        END { exit bad }'
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: ensemble score: $(cat "$T/egs") vs $(cat "$T/eg") $(cat "$T/err")"; fi
if "$NMT" eval --checkpoint "$A" --checkpoint "$B" --src "$T/s.txt" --ref "$T/t.txt" >"$T/out" 2>"$T/err" &&
   grep -q "^BLEU = " "$T/out"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: ensemble eval: $(cat "$T/err")"; fi
printf 'p q\nq p\n' >"$T/ps.txt"
cat >"$T/other.json" <<JSON
{"model": {"d_model": 16, "heads": 2, "d_ff": 16, "encoder_layers": 1, "decoder_layers": 1},
 "data": {"train_src": "$T/ps.txt", "train_tgt": "$T/ps.txt"},
 "train": {"max_steps": 1, "batch_tokens": 200, "checkpoint_dir": "$T/ck_vocab"}}
JSON
OMP_NUM_THREADS=1 "$NMT" train --config "$T/other.json" --quiet >"$T/out" 2>"$T/err"
expect 2 "ck_vocab/last.ckpt: its vocabulary is not" -- "$NMT" translate --checkpoint "$A" --checkpoint "$T/ck_vocab/last.ckpt"
expect 2 "ck_vocab/last.ckpt: its vocabulary is not" -- "$NMT" score --checkpoint "$A" --checkpoint "$T/ck_vocab/last.ckpt" \
    --src "$T/s4.txt" --tgt "$T/s4.txt"
expect 2 "--weights 1: give 2 weights" -- "$NMT" translate --checkpoint "$A" --checkpoint "$B" --weights 1
expect 2 "--weights 1,-1: weight 2" -- "$NMT" translate --checkpoint "$A" --checkpoint "$B" --weights 1,-1
expect 2 "--weights weighs two --checkpoint or more" -- "$NMT" translate --checkpoint "$A" --weights 1
expect 2 "--attention-png draws one model's attention" -- "$NMT" translate --checkpoint "$A" --checkpoint "$B" \
    --attention-png "$T/a.png"
# Sampling: N draws per line; the same bytes whatever the batch and threads; another seed, other draws;
# top-k 1 is greedy search.
smp() { "$NMT" translate --checkpoint "$A" --sample --temperature 2 "$@" <"$T/s4.txt" 2>>"$T/err"; }
smp --nbest 5 --seed 3 >"$T/sa"; smp --nbest 5 --seed 3 --batch 1 >"$T/sa1"; OMP_NUM_THREADS=1 smp --nbest 5 --seed 3 >"$T/sat"
smp --nbest 5 --seed 4 >"$T/sb"; smp --topk 1 >"$T/sk1"
"$NMT" translate --checkpoint "$A" <"$T/s4.txt" >"$T/greedy" 2>>"$T/err"
if [ "$(grep -c '^[0-3] ||| ' "$T/sa")" -eq 20 ] && cmp -s "$T/sa" "$T/sa1" && cmp -s "$T/sa" "$T/sat" &&
   ! cmp -s "$T/sa" "$T/sb" && [ -s "$T/greedy" ] && cmp -s "$T/sk1" "$T/greedy"
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: sampling: $(cat "$T/sa") $(cat "$T/err")"; fi
expect 2 "--sample draws each translation: --beam does not apply" -- "$NMT" translate --checkpoint "$A" --sample --beam 4
expect 2 "add --sample" -- "$NMT" translate --checkpoint "$A" --topp 0.9
expect 2 "--topp" -- "$NMT" translate --checkpoint "$A" --sample --topp 1.5
# export / import: the imported checkpoint translates and scores exactly as the original.
if "$NMT" export --checkpoint "$T/ck/last.ckpt" --output "$T/m.safetensors" 2>"$T/err" &&
   "$NMT" import --input "$T/m.safetensors" --output "$T/imp.ckpt" 2>>"$T/err" &&
   "$NMT" translate --checkpoint "$T/imp.ckpt" --beam 2 --nbest 2 <"$T/s4.txt" >"$T/a" 2>>"$T/err" &&
   "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam 2 --nbest 2 <"$T/s4.txt" >"$T/b" 2>>"$T/err" &&
   [ -s "$T/a" ] && cmp -s "$T/a" "$T/b"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: export/import round trip: $(cat "$T/err")"; fi
# scripts/nmt_torch.py (PyTorch) loads the exported file and scores as nmt does: within 1e-4 per token.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    "$NMT" score --checkpoint "$T/ck/last.ckpt" --src "$T/s4.txt" --tgt "$T/t4.txt" >"$T/sc_nmt" 2>"$T/err"
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$(dirname "$0")/../scripts/nmt_torch.py" --model "$T/m.safetensors" \
        --src "$T/s4.txt" --tgt "$T/t4.txt" >"$T/sc_torch" 2>>"$T/err"
    if [ "$(wc -l <"$T/sc_torch")" -eq 4 ] && awk '{ print NF + 1 }' "$T/t4.txt" | paste - "$T/sc_nmt" "$T/sc_torch" |
       awk '{ d = $2 - $3; if (d < 0) d = -d; if (d > 1e-4 * $1) bad = 1 } END { exit bad }'; then pass=$((pass + 1))
    else fail=$((fail + 1)); echo "FAIL: nmt_torch.py scores $(cat "$T/sc_torch") vs nmt $(cat "$T/sc_nmt"): $(cat "$T/err")"; fi
else
    echo "cli: skipping the nmt_torch.py comparison: no PyTorch for /usr/bin/python3 (scripts/install-deps.sh bench)"
fi
expect 2 "--format onnx: only safetensors" -- "$NMT" export --checkpoint "$T/ck/last.ckpt" --format onnx --output "$T/x"
expect 2 "not a safetensors file" -- "$NMT" import --input "$T/s4.txt" --output "$T/never.ckpt"
sed 's/"d_ff": 16/"d_ff": 32/' "$T/ok.json" >"$T/ff32.json"
expect 2 "model keys differ from $T/m.safetensors's: model.d_ff" -- \
    "$NMT" import --input "$T/m.safetensors" --config "$T/ff32.json" --output "$T/never.ckpt"
if [ ! -e "$T/never.ckpt" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: a refused import wrote"; fi
"$NMT" quantize --checkpoint "$T/ck/last.ckpt" --output "$T/q8.ckpt" >/dev/null 2>&1
expect 2 "int8 weights; export the float checkpoint" -- "$NMT" export --checkpoint "$T/q8.ckpt" --output "$T/x"
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
# One option parser for every subcommand: `--opt value` and `--opt=value`, one
# wording for usage errors (exit 2), and --help from each command's table.
"$NMT" train --config="$T/ok.json" --set=train.max_steps=2 --set model.d_ff=8 --set=train.checkpoint_dir="$T/ck2" --dry-run >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q '"d_ff":[[:space:]]*8' "$T/out" && grep -q '"max_steps":[[:space:]]*2' "$T/out" && [ ! -e "$T/ck2" ]; then
    pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: train --config=... --set=...: $(cat "$T/err")"; fi
printf 'a b c\nb a\n' | "$NMT" translate --checkpoint="$T/ck/last.ckpt" --beam=3 --nbest=2 --alpha=0.6 >"$T/nb2" 2>"$T/err"
if [ $? -eq 0 ] && cmp -s "$T/nb" "$T/nb2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: translate --checkpoint=... --beam=...: $(cat "$T/err")"; fi
"$NMT" eval --checkpoint="$T/ck/last.ckpt" --src="$T/s.txt" --ref "$T/t.txt" --beam=2 --output="$T/hyp2" >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^BLEU = " "$T/out" && cmp -s "$T/hyp" "$T/hyp2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: eval --opt=value: $(cat "$T/err")"; fi
"$NMT" average --output="$T/avg.ckpt" "$T/ck/last.ckpt" >"$T/out" 2>"$T/err" && "$NMT" info "$T/avg.ckpt" >/dev/null 2>&1
if [ $? -eq 0 ] && grep -q "averaged 1 checkpoints into $T/avg.ckpt" "$T/out"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: average --output=...: $(cat "$T/err")"; fi
for cmd in train translate eval info average quantize score export import bleu bpe bench "bench gemm" config-keys; do
    # shellcheck disable=SC2086  # "bench gemm" is two words
    expect 2 "nmt $cmd: unknown option '--bogus' (see: nmt $cmd --help)" -- "$NMT" $cmd --bogus=1
    # shellcheck disable=SC2086
    "$NMT" $cmd --help >"$T/out" 2>"$T/err"
    if [ $? -eq 0 ] && grep -q "^usage: nmt $cmd" "$T/out" && grep -q -- "-h, --help" "$T/out" && [ ! -s "$T/err" ]; then
        pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: nmt $cmd --help: $(head -c 300 "$T/out")"; fi
done
expect 2 "nmt train: --config needs a value (see: nmt train --help)" -- "$NMT" train --config=
expect 2 "nmt train: --quiet takes no value (see: nmt train --help)" -- "$NMT" train --config "$T/ok.json" --quiet=yes
expect 2 "nmt train: --config FILE is required (see: nmt train --help)" -- "$NMT" train --dry-run
expect 2 "nmt train: unexpected argument 'extra' (see: nmt train --help)" -- "$NMT" train --config "$T/ok.json" extra
expect 2 "nmt translate: --checkpoint needs a value (see: nmt translate --help)" -- "$NMT" translate --checkpoint
expect 2 "nmt translate: --checkpoint FILE is required (see: nmt translate --help)" -- "$NMT" translate --beam 2
expect 2 "nmt translate: --beam: 'x' is not a whole number in [1, 256] (see: nmt translate --help)" -- "$NMT" translate --checkpoint "$T/ck/last.ckpt" --beam=x
expect 2 "nmt translate: --alpha: '11' is not a number in [0, 10]" -- "$NMT" translate --checkpoint "$T/ck/last.ckpt" --alpha 11
expect 2 "nmt eval: --batch: '0' is not a whole number in [1, 4096]" -- "$NMT" eval --checkpoint "$T/ck/last.ckpt" --batch=0
expect 2 "nmt eval: unknown option '--attention-png'" -- "$NMT" eval --checkpoint "$T/ck/last.ckpt" --attention-png x.png
expect 2 "nmt translate: unknown option '--lowercase'" -- "$NMT" translate --checkpoint "$T/ck/last.ckpt" --lowercase
expect 2 "nmt average: --output needs a value (see: nmt average --help)" -- "$NMT" average "$T/ck/last.ckpt" --output
expect 2 "nmt average: needs --output OUT and at least one input" -- "$NMT" average --output "$T/avg9.ckpt"
expect 2 "nmt info: expects exactly one checkpoint file" -- "$NMT" info "$T/ck/last.ckpt" "$T/ck/last.ckpt"
expect 2 "nmt bench: --steps: '0' is not a whole number in [1, 1000000] (see: nmt bench --help)" -- "$NMT" bench --steps=0
expect 2 "nmt bench: --warmup needs a value" -- "$NMT" bench --warmup
expect 2 "nmt bench: --precision: 'fp16' is not fp32 or bf16 (see: nmt bench --help)" -- "$NMT" bench --precision fp16
# The bench step runs in --precision, else in its config's train.precision, and says which.
sed 's/"train": {/"train": {"precision": "bf16", /' configs/bench-tiny.json >"$T/bench-bf.json"
if OMP_NUM_THREADS=1 "$NMT" bench --config "$T/bench-bf.json" --steps 1 --warmup 0 >"$T/out" 2>"$T/err" &&
   grep -q '^nmt   bf     1 thr bf16 | ' "$T/out" && grep -q '"precision": "bf16"' "$T/out" &&
   OMP_NUM_THREADS=1 "$NMT" bench --config "$T/bench-bf.json" --steps 1 --warmup 0 --precision fp32 --json >"$T/out" 2>>"$T/err" &&
   grep -q '"precision": "fp32"' "$T/out"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: nmt bench's precision: $(cat "$T/out" "$T/err")"; fi
expect 2 "nmt bench gemm: --reps: '0' is not a whole number in [1, 1000] (see: nmt bench gemm --help)" -- "$NMT" bench gemm --reps 0
expect 2 "nmt bench gemm: --reps: 'x' is not a whole number" -- "$NMT" bench gemm --reps=x
expect 2 "nmt bench gemm: --reps needs a value" -- "$NMT" bench gemm --reps
for shape in 4x4 0x4x4 4x-4x4 100000x100000x100000; do
    expect 2 "nmt bench gemm: --shape wants MxNxK" -- "$NMT" bench gemm --shape "$shape"
done
expect 2 "nmt bpe: --vocab-size: '0' is not a whole number in [1, 16777216]" -- "$NMT" bpe learn --vocab-size=0 --input "$T/s.txt" --output "$T/m.bpe"
expect 2 "nmt bpe: missing subcommand (learn, encode or decode)" -- "$NMT" bpe
expect 2 "nmt bpe: unknown subcommand 'frob'" -- "$NMT" bpe frob
expect 2 "nmt bpe: learn needs --vocab-size N" -- "$NMT" bpe learn --input "$T/s.txt" --output "$T/m.bpe"
expect 2 "nmt bpe: encode takes only --model (text comes from stdin)" -- "$NMT" bpe encode --model "$T/m.bpe" --input "$T/s.txt"
expect 2 "nmt bpe: --model needs a value" -- "$NMT" bpe decode --model=
expect 2 "nmt config-keys: unexpected argument 'x'" -- "$NMT" config-keys x
if "$NMT" bpe learn --vocab-size=300 --input="$T/s.txt" --input "$T/t.txt" --output="$T/m.bpe" 2>"$T/err" &&
   "$NMT" bpe encode --model="$T/m.bpe" <"$T/s.txt" >"$T/s.tok" && "$NMT" bpe decode --model "$T/m.bpe" <"$T/s.tok" >"$T/s.dec" &&
   cmp -s "$T/s.txt" "$T/s.dec"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: bpe with --opt=value: $(cat "$T/err")"; fi

# nmt bleu: the command line around bleu_read_segments / bleu_score_segments.
printf 'The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n' >"$T/ref.txt"
printf 'The dog bit the man.\nIt wasn'"'"'t surprising.\nThe man had just bitten him.\n' | "$NMT" bleu "$T/ref.txt" --chrf >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && [ "$(cat "$T/out")" = "BLEU = 45.07 70.6/42.9/36.4/37.5 (BP = 1.000 ratio = 1.000 hyp_len = 17 ref_len = 17)
chrF2 = 50.04" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: bleu --chrf: $(cat "$T/out" "$T/err")"; fi
expect 2 "nmt bleu: missing REF_FILE (see: nmt bleu --help)" -- "$NMT" bleu --chrf
expect 2 "nmt bleu: unknown option '--smooth'" -- "$NMT" bleu "$T/ref.txt" --smooth
expect 2 "nmt bleu: unexpected argument '$T/ref.txt' (one REF_FILE only" -- "$NMT" bleu "$T/ref.txt" "$T/ref.txt"
expect 2 "nmt bleu: --lowercase takes no value" -- "$NMT" bleu "$T/ref.txt" --lowercase=1
expect 2 "/nonexistent/ref.txt" -- "$NMT" bleu /nonexistent/ref.txt
expect 2 "bleu: $T/ref.txt has 3 lines but the hypotheses on stdin have 0" -- "$NMT" bleu "$T/ref.txt"
expect 2 "bleu: $T/empty.txt is empty: nothing to score" -- "$NMT" bleu "$T/empty.txt"
# The plot script (when gnuplot is installed).
if command -v gnuplot >/dev/null; then
    if sh scripts/plot-log.sh "$T/ck/train_log.jsonl" "$T/log.png" 2>"$T/err" && [ -s "$T/log.png" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: plot-log.sh: $(cat "$T/err")"; fi
    sh scripts/plot-log.sh "$T/missing.jsonl" "$T/log2.png" 2>/dev/null
    if [ $? -eq 2 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: plot-log.sh on a missing log"; fi
else
    echo "cli: gnuplot not installed; plot-log.sh not tested"
fi

# Config strictness ("say what is wrong, exactly"): --set values are taken whole
# and errors in them name the --set; duplicates, \u0000 and trailing data are
# refused; a directory for a file names the key; numbers round-trip on resume.
expect 2 "--set train.max_steps: expected an integer (got \"5 garbage\")" -- "$NMT" train --config "$T/ok.json" --set train.max_steps='5 garbage'
expect 2 "--set model.dropout: 2 is out of range" -- "$NMT" train --config "$T/ok.json" --set model.dropout=2
"$NMT" train --config "$T/ok.json" --set train.checkpoint_dir=2024-run --dry-run >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q '"checkpoint_dir":[[:space:]]*"2024-run"' "$T/out" && [ ! -e 2024-run ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: --set train.checkpoint_dir=2024-run: $(cat "$T/err")"; fi
sed 's/"d_ff": 16,/"d_ff": 16, "d_ff": 32,/' "$T/ok.json" >"$T/dupkey.json"
expect 2 "dupkey.json: duplicate key 'model.d_ff'" -- "$NMT" train --config "$T/dupkey.json"
{ cat "$T/ok.json"; echo '"train": {}}'; } >"$T/trail.json"
expect 2 "trail.json:4:1: data after the closing brace" -- "$NMT" train --config "$T/trail.json"
sed 's/"d_ff": 16,/"d_ff": 16, "d_ff\\u0000x": 8,/' "$T/ok.json" >"$T/nul.json"
expect 2 "nul.json:1:" -- "$NMT" train --config "$T/nul.json"
expect 2 "(NUL) is not allowed" -- "$NMT" train --config "$T/nul.json"
mkdir -p "$T/adir"
expect 2 "--set data.train_src: '$T/adir' is a directory" -- "$NMT" train --config "$T/ok.json" --set data.train_src="$T/adir"
expect 2 "$T/adir: cannot read: is a directory" -- "$NMT" train --config "$T/adir"
expect 2 "--set train.adam_eps: must be greater than 0 (adam_eps 0 divides 0 by 0" -- "$NMT" train --config "$T/ok.json" --set train.adam_eps=0
if OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/rt" --set train.max_steps=2 \
       --set train.label_smoothing=0.30000000000000004 --quiet >"$T/out" 2>"$T/err" &&
   OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/rt" --set train.max_steps=3 \
       --set train.label_smoothing=0.30000000000000004 --quiet >"$T/out" 2>"$T/err" &&
   grep -q "resuming with changed settings: train.max_steps$" "$T/err"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: a resume with the same label_smoothing reports it changed: $(cat "$T/err")"; fi

# int8: quantize -> info -> translate/eval, the same as --int8 on the float
# checkpoint; commands that need float weights refuse an int8 checkpoint.
"$NMT" quantize --checkpoint "$T/ck/last.ckpt" --output "$T/q.ckpt" >"$T/out" 2>"$T/err" &&
    "$NMT" info "$T/q.ckpt" >"$T/info" 2>>"$T/err"
if [ $? -eq 0 ] && grep -q "int8 matrices" "$T/out" && grep -q "^weights: int8 (13 matrices" "$T/info" &&
   grep -q "qweights" "$T/info" && ! grep -q "adam_m" "$T/info" &&
   [ "$(wc -c <"$T/q.ckpt")" -lt "$(wc -c <"$T/ck/last.ckpt")" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: quantize/info: $(cat "$T/out" "$T/err")"; fi
printf 'a b c\n\nb a\nc c c a\n' >"$T/q_in.txt"
"$NMT" translate --checkpoint "$T/q.ckpt" --beam 2 <"$T/q_in.txt" >"$T/q1" 2>"$T/err" &&
    "$NMT" translate --checkpoint "$T/ck/last.ckpt" --int8 --beam 2 <"$T/q_in.txt" >"$T/q2" 2>>"$T/err" &&
    "$NMT" eval --checkpoint "$T/q.ckpt" --src "$T/s.txt" --ref "$T/t.txt" >"$T/out" 2>>"$T/err"
if [ $? -eq 0 ] && [ "$(wc -l <"$T/q1")" -eq 4 ] && cmp -s "$T/q1" "$T/q2" && grep -q "^BLEU = " "$T/out"; then
    pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: int8 translate/eval: $(cat "$T/err")"; fi
expect 2 "is an int8 checkpoint (made by nmt quantize): average the float" -- "$NMT" average --output "$T/qa.ckpt" "$T/q.ckpt"
expect 2 "is already an int8 checkpoint" -- "$NMT" quantize --checkpoint "$T/q.ckpt" --output "$T/qq.ckpt"
expect 2 "q.ckpt: an int8 checkpoint (made by nmt quantize) holds no float weights or optimizer state" -- \
    "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/qr" --resume "$T/q.ckpt"
expect 2 "nmt quantize: needs --checkpoint IN and --output OUT" -- "$NMT" quantize --checkpoint "$T/q.ckpt"
if [ ! -e "$T/qa.ckpt" ] && [ ! -e "$T/qq.ckpt" ] && [ ! -e "$T/qr/last.ckpt" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: a refused int8 command wrote a file"; fi

# train.ema_decay: the checkpoint says decoding uses the moving average; a
# resume cannot switch it off.
if OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/ema" --set train.ema_decay=0.5 \
       --quiet >"$T/out" 2>"$T/err" && "$NMT" info "$T/ema/last.ckpt" >"$T/info" 2>>"$T/err" &&
   grep -q "^weights for decoding: the moving average (train.ema_decay 0.5)" "$T/info" &&
   printf 'a b c\n' | "$NMT" translate --checkpoint "$T/ema/last.ckpt" >/dev/null 2>>"$T/err"; then
    pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: train.ema_decay run/info/translate: $(cat "$T/err")"; fi
expect 2 "train.ema_decay: the run keeps a moving average of the weights and the config asks for none" -- \
    "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/ema" --set train.max_steps=4

# The PyTorch reference decoder (make bench-translate) is the same model: its
# greedy output equals nmt's, line for line (when Debian's PyTorch is installed).
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    printf 'a b c\nb c a\nc\n\nc b a b c a\n' >"$T/pt_in.txt"
    OMP_NUM_THREADS=1 "$NMT" translate --checkpoint "$T/ck/last.ckpt" <"$T/pt_in.txt" >"$T/pt_nmt" 2>"$T/err"
    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_translate_torch.py --checkpoint "$T/ck/last.ckpt" \
        --input "$T/pt_in.txt" --output "$T/pt_torch" >/dev/null 2>>"$T/err"
    if [ $? -eq 0 ] && cmp -s "$T/pt_nmt" "$T/pt_torch"; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: the PyTorch reference decodes differently: $(cat "$T/err")"; fi
    # ... and on a model with relative positions, an attention window and pre-norm (trained until
    # its outputs follow the source, so that a wrong distance or window changes them).
    if OMP_NUM_THREADS=1 "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/rw" --set train.max_steps=200 \
           --set train.warmup_steps=20 --set train.lr=0.01 --set model.positions=relative \
           --set model.max_relative_position=2 --set model.attention_window=1 --set model.norm=pre \
           --quiet >/dev/null 2>"$T/err" &&
       OMP_NUM_THREADS=1 "$NMT" translate --checkpoint "$T/rw/last.ckpt" <"$T/pt_in.txt" >"$T/pt_nmt" 2>>"$T/err" &&
       OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_translate_torch.py \
           --checkpoint "$T/rw/last.ckpt" --input "$T/pt_in.txt" --output "$T/pt_torch" >/dev/null 2>>"$T/err" &&
       cmp -s "$T/pt_nmt" "$T/pt_torch"; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: the PyTorch reference decodes a relative + window model differently: $(cat "$T/err")"; fi
else
    echo "cli: PyTorch not installed; the reference decoder's parity not tested"
fi

# No command destroys a file it did not make. (1) A command never writes over
# one of its inputs -- the same path, "dir/./X", a hard link or a symlink to it:
# exit 2 naming both, the input byte for byte as it was.
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$T/orig"
cp "$T/ck/last.ckpt" "$T/orig/keep.ckpt"
cp "$T/m.safetensors" "$T/orig/keep.st"
cp "$T/s.txt" "$T/orig/keep.txt"
cp "$T/ok.json" "$T/orig/ok.json"
restore() {
    rm -f "$T/keep-hard.ckpt" "$T/keep-sym.ckpt"
    for f in keep.ckpt keep.st keep.txt ok.json; do cp "$T/orig/$f" "$T/$f"; done
    ln "$T/keep.ckpt" "$T/keep-hard.ckpt"
    ln -s "$T/keep.ckpt" "$T/keep-sym.ckpt"
}
restore
# refused NEEDLE -- command...: exit 2 naming NEEDLE, every input as it was.
refused() {
    expect 2 "$@"
    for f in keep.ckpt keep.st keep.txt ok.json; do
        if ! cmp -s "$T/orig/$f" "$T/$f"; then no "$f was changed or removed by: $*"; restore; return; fi
    done
    ok
}
refused "--output $T/keep.ckpt: is the same file as --checkpoint $T/keep.ckpt" -- \
    "$NMT" export --checkpoint "$T/keep.ckpt" --output "$T/keep.ckpt"
refused "--output $T/./keep.ckpt: is the same file as --checkpoint $T/keep.ckpt" -- \
    "$NMT" export --checkpoint "$T/keep.ckpt" --output "$T/./keep.ckpt"
refused "--output $T/keep-hard.ckpt: is the same file as --checkpoint $T/keep.ckpt" -- \
    "$NMT" quantize --checkpoint "$T/keep.ckpt" --output "$T/keep-hard.ckpt"
refused "--output $T/keep.ckpt: is the same file as --checkpoint $T/keep-sym.ckpt" -- \
    "$NMT" quantize --checkpoint "$T/keep-sym.ckpt" --output "$T/keep.ckpt"
refused "--output $T/keep.ckpt: is the same file as input $T/keep.ckpt" -- \
    "$NMT" average --output "$T/keep.ckpt" "$T/ck/last.ckpt" "$T/keep.ckpt"
refused "--output $T/keep.st: is the same file as --input $T/keep.st" -- \
    "$NMT" import --input "$T/keep.st" --output "$T/keep.st"
refused "--output $T/ok.json: is the same file as --config $T/ok.json" -- \
    "$NMT" import --input "$T/keep.st" --config "$T/ok.json" --output "$T/ok.json"
refused "--output $T/keep.txt: is the same file as --ref $T/keep.txt" -- \
    "$NMT" eval --checkpoint "$T/keep.ckpt" --src "$T/s.txt" --ref "$T/keep.txt" --output "$T/keep.txt"
refused "--output $T/keep.txt: is the same file as --input $T/keep.txt" -- \
    "$NMT" bpe learn --vocab-size 300 --input "$T/t.txt" --input "$T/keep.txt" --output "$T/keep.txt"
refused "--attention-png $T/keep.ckpt: is the same file as --checkpoint $T/keep.ckpt" -- \
    "$NMT" translate --checkpoint "$T/keep.ckpt" --attention-png "$T/keep.ckpt"
head -1 "$T/s.txt" >"$T/one.txt"
cp "$T/one.txt" "$T/one.bak"
"$NMT" translate --checkpoint "$T/keep.ckpt" --attention-png "$T/one.txt" <"$T/one.txt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF -- "--attention-png $T/one.txt: is the same file as the standard input" "$T/err" &&
   cmp -s "$T/one.txt" "$T/one.bak"; then ok; else no "translate --attention-png over its stdin: $(cat "$T/err")"; fi
# train: a data file that is one the run writes in train.checkpoint_dir.
mkdir -p "$T/tk"
cp "$T/s.txt" "$T/tk/train_log.jsonl"
cp "$T/s.txt" "$T/tk.bak"
expect 2 "train.checkpoint_dir's $T/tk/train_log.jsonl: is the same file as data.train_src $T/tk/train_log.jsonl" -- \
    "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/tk" --set data.train_src="$T/tk/train_log.jsonl"
if cmp -s "$T/tk/train_log.jsonl" "$T/tk.bak" && [ ! -e "$T/tk/last.ckpt" ]; then ok; else no "train wrote over its data"; fi
[ "$(ls "$T" | grep -c '\.tmp$')" -eq 0 ] && ok || no "a refusal left a temporary: $(ls "$T")"
# (2) nmt import --output F verifies what it wrote before it replaces F: an
# nmt.step too large for a checkpoint (it passed import's checks, the written
# file did not load, and F -- here the user's checkpoint -- was removed) is
# refused naming nmt.step, F as it was.
# st_edit IN OUT SED: a copy of safetensors file IN with sed applied to its
# JSON header, the same length (the tabs of the embedded config dropped,
# spaces padding the end, as the format allows).
st_edit() {
    hl=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    head -c $((8 + hl)) "$1" | tail -c +9 | sed -e 's/\\t//g' -e "$3" >"$2.h"
    pad=$((hl - $(wc -c <"$2.h")))
    { head -c 8 "$1"; cat "$2.h"; printf "%${pad}s" ""; tail -c +$((9 + hl)) "$1"; } >"$2"
    rm -f "$2.h"
}
st_edit "$T/m.safetensors" "$T/step.st" 's/"nmt.step":"[0-9]*"/"nmt.step":"99999999999999999999"/'
refused 'nmt.step "99999999999999999999" is not a step count' -- \
    "$NMT" import --input "$T/step.st" --output "$T/keep.ckpt"
# (3) The temporary a write goes through is always a new file: a file named
# like it (the user's, or a killed run's) is left as it was.
printf 'mine\n' >"$T/imp2.ckpt.tmp"
printf 'mine\n' >"$T/exp2.st.tmp"
if "$NMT" import --input "$T/m.safetensors" --output "$T/imp2.ckpt" 2>"$T/err" &&
   "$NMT" export --checkpoint "$T/imp2.ckpt" --output "$T/exp2.st" 2>>"$T/err" && "$NMT" info "$T/imp2.ckpt" >/dev/null &&
   [ "$(cat "$T/imp2.ckpt.tmp")" = mine ] && [ "$(cat "$T/exp2.st.tmp")" = mine ] &&
   [ "$(ls "$T" | grep -c '\.tmp$')" -eq 2 ]; then ok; else no "a file named like the temporary: $(cat "$T/err"); $(ls "$T")"; fi
mkdir -p "$T/tmpk"
printf 'mine\n' >"$T/tmpk/last.ckpt.tmp"
printf 'mine\n' >"$T/tmpk/step-2.ckpt.tmp"
if "$NMT" train --config "$T/ok.json" --set train.checkpoint_dir="$T/tmpk" --set train.save_every=2 --quiet \
       >/dev/null 2>"$T/err" && "$NMT" info "$T/tmpk/step-2.ckpt" >/dev/null 2>>"$T/err" &&
   "$NMT" info "$T/tmpk/last.ckpt" | grep -q "^step: 3" && [ "$(cat "$T/tmpk/last.ckpt.tmp")" = mine ] &&
   [ "$(cat "$T/tmpk/step-2.ckpt.tmp")" = mine ] && [ "$(ls "$T/tmpk" | grep -c '\.tmp$')" -eq 2 ]; then ok
else no "train beside files named like its temporaries: $(cat "$T/err"); $(ls "$T/tmpk")"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
