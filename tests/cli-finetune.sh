#!/bin/sh
# cli-finetune.sh — fine-tuning (train.init_from): a fresh run takes a
# checkpoint's weights (its moving average when kept, bit for bit) and
# tokenizer, and nothing else (a fresh optimizer, schedule and data order);
# its first step's loss is the loaded model's on the new data; it records
# where it started (nmt info, the log's first record); a restart resumes;
# mismatched model keys, a conflicting data.bpe_model, a missing, corrupt or
# int8 file and the run's own files are refused (exit 2, naming the key and
# the file); fine-tuning the toy model on a changed corpus learns the change.
# Run by `make test`.
set -u
NMT=${NMT:-./nmt}
. "$(dirname "$0")/ckpt-lib.sh"
T=$(mktemp -d /tmp/nmt-finetune-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export OMP_NUM_THREADS=2

reversal_corpus "$T" 7 600
mkdir "$T/x" && reversal_corpus "$T/x" 8 8  # the "new data": 8 pairs, one batch
cat >"$T/cfg.json" <<JSON
{"model": {"d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
           "dropout": 0.1, "attention_dropout": 0.1, "ffn_dropout": 0.1},
 "data": {"train_src": "$T/s.txt", "train_tgt": "$T/t.txt"},
 "train": {"max_steps": 5, "batch_tokens": 300, "log_every": 1, "save_every": 0,
           "warmup_steps": 50, "checkpoint_dir": "$T/never"}}
JSON
train() { "$NMT" train --config "$T/cfg.json" "$@"; }
field() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" "$1" | head -1; }  # FILE KEY: its first value
info_line() { "$NMT" info "$1" 2>&1 | sed -n "s/^$2: //p"; }           # FILE LABEL

# The origin: 40 steps with a moving average of the weights (so the average and the weights differ).
train --set train.checkpoint_dir="$T/A" --set train.max_steps=40 --set train.log_every=10 \
    --set train.ema_decay=0.99 --quiet >/dev/null 2>"$T/err" || bad "the origin run: $(cat "$T/err")"
A="$T/A/last.ckpt"
ema_crc=$("$NMT" info "$A" | awk '$1 == "ema" { print $7 }')

# The weights are the origin's moving average, bit for bit: one step at
# learning rate 0 (noam with lr_scale 0) leaves them as they were loaded.
train --set train.checkpoint_dir="$T/B" --set train.init_from="$A" --set train.max_steps=1 \
    --set train.lr_scale=0 >"$T/out" 2>"$T/err" || bad "init_from run: $(cat "$T/err")"
section "$A" ema >"$T/a.bin"
section "$A" params >"$T/p.bin"
section "$T/B/last.ckpt" params >"$T/b.bin"
if [ -s "$T/a.bin" ] && cmp -s "$T/a.bin" "$T/b.bin" && ! cmp -s "$T/p.bin" "$T/b.bin"; then ok
else bad "the weights taken are not the origin's moving average"; fi
grep -q "^nmt: starting from the weights' moving average and the tokenizer of $A (step 40); the optimizer, the \
learning-rate schedule and the data order start afresh$" "$T/out" && ok || bad "the run did not say where it starts: $(cat "$T/out")"
# Where it started: nmt info, the state, the log's first record (with the CRC-32 nmt info shows for the ema section).
if [ "$(info_line "$T/B/last.ckpt" "started from")" = "$A (step 40; its weights' crc32 $ema_crc)" ] &&
   [ "$(info_line "$T/B/last.ckpt" step | cut -d' ' -f1)" = 1 ] && [ -n "$ema_crc" ]; then ok
else bad "nmt info: $("$NMT" info "$T/B/last.ckpt" 2>&1 | head -12)"; fi
if [ "$(head -1 "$T/B/train_log.jsonl")" = "{\"step\": 0, \"init_from\": \"$A\", \"init_from_step\": 40, \"init_from_crc32\": \"$ema_crc\"}" ]
then ok; else bad "the log's first record: $(head -1 "$T/B/train_log.jsonl")"; fi
section "$T/B/last.ckpt" state | grep -q "\"init_from\":\"$A\",\"init_from_step\":40," && ok || bad "state: $(section "$T/B/last.ckpt" state)"
if info_line "$A" "started from" | grep -q .; then bad "a run from scratch says it started from a checkpoint"; else ok; fi

# The first step's loss is the loaded model's loss on the new data: without
# dropout, at learning rate 0, the training loss of step 1 and the
# validation loss after it (the same 8 pairs, one batch each) are the same
# bits, and the per-token log-likelihood is what `nmt score` gives the origin.
NODROP="--set model.dropout=0 --set model.attention_dropout=0 --set model.ffn_dropout=0"
# shellcheck disable=SC2086
train --set train.checkpoint_dir="$T/X" --set train.init_from="$A" $NODROP --set train.max_steps=1 \
    --set train.lr_scale=0 --set train.eval_every=1 --set train.valid_bleu_lines=-1 \
    --set data.train_src="$T/x/s.txt" --set data.train_tgt="$T/x/t.txt" \
    --set data.valid_src="$T/x/s.txt" --set data.valid_tgt="$T/x/t.txt" >"$T/out" 2>"$T/err" || bad "X: $(cat "$T/err")"
grep '"loss"' "$T/X/train_log.jsonl" >"$T/tr"
grep '"valid_loss"' "$T/X/train_log.jsonl" >"$T/va"
grep -q "1 batches" "$T/out" || bad "the new data is not one batch: $(cat "$T/out")"
if [ -n "$(field "$T/tr" loss)" ] && [ "$(field "$T/tr" loss)" = "$(field "$T/va" valid_loss)" ] &&
   [ "$(field "$T/tr" nll)" = "$(field "$T/va" valid_nll)" ]; then ok
else bad "first step's loss $(field "$T/tr" loss) / nll $(field "$T/tr" nll), the loaded model's $(field "$T/va" valid_loss) / $(field "$T/va" valid_nll)"; fi
ntok=$(awk '{ n += NF + 1 } END { print n }' "$T/x/t.txt")
"$NMT" score --checkpoint "$A" --src "$T/x/s.txt" --tgt "$T/x/t.txt" >"$T/sc" 2>"$T/err" || bad "score: $(cat "$T/err")"
awk -v nll="$(field "$T/tr" nll)" -v n="$ntok" '{ s -= $1 } END { d = s / n - nll; exit !(d < 1e-5 && d > -1e-5) }' "$T/sc" &&
    ok || bad "first step's nll $(field "$T/tr" nll) is not nmt score's $(awk -v n="$ntok" '{ s -= $1 } END { print s / n }' "$T/sc")"

# Nothing but the weights is carried: the run equals one started from the
# same weights exported and imported (a checkpoint without optimizer state or
# moving average) — losses, weights and Adam's moments —, its learning rate
# at step 1 is the warmup's first (noam: 32^-0.5 * 50^-1.5 = 0.0005), and its
# data order is a run from scratch's (the same batches: the same tokens).
"$NMT" export --checkpoint "$A" --output "$T/a.safetensors" 2>"$T/err" &&
    "$NMT" import --input "$T/a.safetensors" --output "$T/imp.ckpt" >/dev/null 2>>"$T/err" || bad "export/import: $(cat "$T/err")"
train --set train.checkpoint_dir="$T/C" --set train.init_from="$A" --quiet >/dev/null 2>"$T/err" || bad "C: $(cat "$T/err")"
train --set train.checkpoint_dir="$T/I" --set train.init_from="$T/imp.ckpt" --quiet >/dev/null 2>"$T/err" || bad "I: $(cat "$T/err")"
train --set train.checkpoint_dir="$T/S" --quiet >/dev/null 2>"$T/err" || bad "S: $(cat "$T/err")"
losses() { grep '"loss"' "$1/train_log.jsonl" | sed 's/, "tokens_per_s".*//'; }
if [ "$(losses "$T/C" | wc -l)" -eq 5 ] && [ "$(losses "$T/C")" = "$(losses "$T/I")" ]; then ok
else bad "a run from the origin and one from its imported weights differ: $(losses "$T/C" | head -2) / $(losses "$T/I" | head -2)"; fi
same=1
for sec in params adam_m adam_v; do
    section "$T/C/last.ckpt" $sec >"$T/a.bin"
    section "$T/I/last.ckpt" $sec >"$T/b.bin"
    { [ -s "$T/a.bin" ] && cmp -s "$T/a.bin" "$T/b.bin"; } || same=0
done
[ $same -eq 1 ] && ok || bad "weights or Adam state differ from a run from the imported weights"
[ "$(field "$T/C/train_log.jsonl" lr)" = 0.0005 ] && ok || bad "lr at step 1: $(field "$T/C/train_log.jsonl" lr)"
# (the step, the data cursor and the tokens; not the seconds of training, which vary)
cursor() { info_line "$1" step | sed 's/, [0-9.]* s of training$//'; }
if [ "$(cursor "$T/C/last.ckpt")" = "$(cursor "$T/S/last.ckpt")" ] &&
   cursor "$T/C/last.ckpt" | grep -q '^5 (epoch 0, batch 5), [0-9]* target tokens$'; then ok
else bad "data order: $(cursor "$T/C/last.ckpt") vs from scratch $(cursor "$T/S/last.ckpt")"; fi
[ "$(losses "$T/C" | head -1)" != "$(losses "$T/S" | head -1)" ] && ok || bad "the run from the origin starts as one from scratch"

# A restart resumes from last.ckpt (init_from is for a fresh start; silent
# when the run started from it); a run that did not start there says it is unused.
train --set train.checkpoint_dir="$T/C" --set train.init_from="$A" --set train.max_steps=7 >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^nmt: resuming from $T/C/last.ckpt at step 5$" "$T/out" && ! grep -q "starting from" "$T/out" &&
   ! grep -q init_from "$T/err" && [ "$(info_line "$T/C/last.ckpt" "started from" | cut -d' ' -f1-3)" = "$A (step 40;" ] &&
   [ "$(grep -c init_from "$T/C/train_log.jsonl")" -eq 1 ]; then ok
else bad "restart: $(cat "$T/out" "$T/err")"; fi
train --set train.checkpoint_dir="$T/S" --set train.init_from="$A" --set train.max_steps=6 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^nmt: note: train.init_from $A is not used: it starts a new run, and this run resumes from $T/S/last.ckpt$" "$T/err"
then ok; else bad "resume of a run from scratch with init_from: $(cat "$T/err")"; fi

# --dry-run says it and writes nothing.
train --set train.checkpoint_dir="$T/dry" --set train.init_from="$A" --dry-run >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^nmt: starting from the weights' moving average and the tokenizer of $A (step 40)" "$T/out" &&
   [ ! -e "$T/dry" ]; then ok; else bad "dry run: $(cat "$T/out" "$T/err")"; fi

# Refusals: exit 2 naming train.init_from, the file and what is wrong; nothing written.
refused() { # WHAT PATTERN --set ...
    what=$1 pattern=$2
    shift 2
    train --set train.checkpoint_dir="$T/no" "$@" >/dev/null 2>"$T/err"
    st=$?
    if [ $st -eq 2 ] && grep -q -- "$pattern" "$T/err" && [ ! -e "$T/no" ]; then ok
    else bad "$what: exit $st: $(cat "$T/err")"; rm -rf "$T/no"; fi
}
refused "d_ff differs" "train.init_from $A: model.d_ff is 64 there but 32 in the config$" \
    --set train.init_from="$A" --set model.d_ff=32
refused "norm differs" "train.init_from $A: model.norm is \"post\" there but \"pre\" in the config$" \
    --set train.init_from="$A" --set model.norm=pre
refused "vocab_size differs" "train.init_from $A: data.vocab_size is 0 there but 12 in the config$" \
    --set train.init_from="$A" --set data.vocab_size=12
refused "missing file" "train.init_from: $T/nothing.ckpt: " --set train.init_from="$T/nothing.ckpt"
refused "a directory" "train.init_from: '$T/A' is a directory" --set train.init_from="$T/A"
cp "$A" "$T/flip.ckpt"
printf 'X' | dd of="$T/flip.ckpt" bs=1 seek=5000 conv=notrunc 2>/dev/null
refused "corrupt file" "train.init_from: $T/flip.ckpt: .*section 'params'" --set train.init_from="$T/flip.ckpt"
"$NMT" quantize --checkpoint "$A" --output "$T/q.ckpt" >/dev/null 2>&1 || bad "quantize"
refused "int8" "train.init_from $T/q.ckpt: an int8 checkpoint" --set train.init_from="$T/q.ckpt"
# The run's own files (here an abandoned run's step file): refused, left as they were.
mkdir "$T/own" && cp "$A" "$T/own/step-40.ckpt"
train --set train.checkpoint_dir="$T/own" --set train.init_from="$T/own/step-40.ckpt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "train.checkpoint_dir's $T/own/step-40.ckpt: is the same file as train.init_from" "$T/err" &&
   cmp -s "$A" "$T/own/step-40.ckpt" && [ "$(ls "$T/own")" = step-40.ckpt ]; then ok
else bad "init_from the run's own step file: $(cat "$T/err")"; fi

# BPE: the checkpoint's model is used and nothing is learnt; data.bpe_model
# may name that same model, not another one.
BPE="--set data.tokenizer=bpe --set data.vocab_size=300"
# shellcheck disable=SC2086
train $BPE --set train.checkpoint_dir="$T/bpeA" --set train.max_steps=2 --quiet >/dev/null 2>"$T/err" || bad "bpe origin: $(cat "$T/err")"
# shellcheck disable=SC2086
train $BPE --set train.checkpoint_dir="$T/bpeB" --set train.init_from="$T/bpeA/last.ckpt" --set train.max_steps=2 \
    --set data.train_src="$T/x/s.txt" --set data.train_tgt="$T/x/t.txt" --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && ! grep -q "learning BPE" "$T/err" && [ ! -e "$T/bpeB/bpe.model" ] &&
   [ "$(section "$T/bpeA/last.ckpt" tokenizer | cksum)" = "$(section "$T/bpeB/last.ckpt" tokenizer | cksum)" ]; then ok
else bad "bpe init_from: $(cat "$T/err")"; fi
# shellcheck disable=SC2086
train $BPE --set train.checkpoint_dir="$T/bpeC" --set train.init_from="$T/bpeA/last.ckpt" --set train.max_steps=2 \
    --set data.bpe_model="$T/bpeA/bpe.model" --quiet >/dev/null 2>"$T/err" && ok || bad "the same bpe_model: $(cat "$T/err")"
"$NMT" bpe learn --vocab-size 300 --input "$T/x/s.txt" --output "$T/other.bpe" >/dev/null 2>"$T/err" || bad "bpe learn: $(cat "$T/err")"
# shellcheck disable=SC2086
refused "another BPE model" "train.init_from $T/bpeA/last.ckpt: data.bpe_model '$T/other.bpe' is not the checkpoint's BPE model" \
    $BPE --set train.init_from="$T/bpeA/last.ckpt" --set data.bpe_model="$T/other.bpe"
# shellcheck disable=SC2086
refused "a missing BPE model" "train.init_from $T/bpeA/last.ckpt: data.bpe_model '$T/none.bpe' does not exist" \
    $BPE --set train.init_from="$T/bpeA/last.ckpt" --set data.bpe_model="$T/none.bpe"

# The toy, fine-tuned on a changed corpus (the source words "red" and
# "green" swapped), learns the change: the sentences of the test set with
# "green" (and no "red") were translated with green's target forms (tik-o/a/e/i)
# and are now translated with red's (mob-o/a/e/i); a run from scratch of as
# many steps on the changed corpus has not learnt them.
SMALL="--set model.d_model=64 --set model.heads=2 --set model.d_ff=128 --set model.encoder_layers=1
       --set model.decoder_layers=1 --set train.batch_tokens=1024 --set train.warmup_steps=100 --set train.eval_every=0
       --set train.save_every=0 --set train.log_every=100 --set data.valid_src= --set data.valid_tgt="
toy() { "$NMT" train --config configs/toy.json $SMALL "$@" --quiet >/dev/null 2>"$T/err" || bad "toy $*: $(cat "$T/err")"; }
swap='{ for (i = 1; i <= NF; i++) if ($i == "red") $i = "green"; else if ($i == "green") $i = "red"; print }'
awk "$swap" data/toy/train.src >"$T/swap.src"
awk '{ g = r = 0; for (i = 1; i <= NF; i++) { g += $i == "green"; r += $i == "red" } } g && !r' data/toy/test.src >"$T/green.src"
# shellcheck disable=SC2086
toy --set train.checkpoint_dir="$T/toyA" --set train.max_steps=800
# shellcheck disable=SC2086
toy --set train.checkpoint_dir="$T/toyB" --set train.max_steps=300 --set train.lr=0.001 \
    --set data.train_src="$T/swap.src" --set train.init_from="$T/toyA/last.ckpt"
# shellcheck disable=SC2086
toy --set train.checkpoint_dir="$T/toyS" --set train.max_steps=300 --set train.lr=0.001 --set data.train_src="$T/swap.src"
forms() { "$NMT" translate --checkpoint "$1/last.ckpt" <"$T/green.src" | grep -cE "(^| )$2[oaei]( |\$)"; }
n=$(wc -l <"$T/green.src")
old_tik=$(forms "$T/toyA" tik) old_mob=$(forms "$T/toyA" mob) new_tik=$(forms "$T/toyB" tik) new_mob=$(forms "$T/toyB" mob)
scratch_mob=$(forms "$T/toyS" mob)
echo "cli-finetune: of $n test sentences with green: the toy model uses green's forms in $old_tik, red's in $old_mob;" \
    "fine-tuned: $new_tik and $new_mob; from scratch: red's in $scratch_mob"
if [ "$n" -ge 40 ] && [ "$old_tik" -ge $((n * 2 / 3)) ] && [ "$old_mob" -eq 0 ] && [ "$new_mob" -ge $((n / 2)) ] &&
   [ "$new_mob" -gt $((3 * new_tik)) ] && [ "$scratch_mob" -lt $((n / 5)) ]; then ok
else bad "fine-tuning on the changed corpus did not learn the change"; fi

echo "cli-finetune: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
