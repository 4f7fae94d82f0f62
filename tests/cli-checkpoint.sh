#!/bin/sh
# cli-checkpoint.sh — checkpoints never lose work: exact resume after SIGKILL
# (1 and 2 threads), SIGINT saves and exits 0, every section's corruption and
# truncation is caught, a kill during a save leaves last.ckpt loadable, a run
# cannot be resumed with another optimizer, averaging copies of one
# checkpoint returns its weights, a checkpoint and the log say the
# train.precision of their run (fp32 for checkpoints from before the key), which
# a resume may change, and the languages and language profiles are carried
# along. Run by `make test`.
set -u
NMT=${NMT:-./nmt}
. "$(dirname "$0")/ckpt-lib.sh"
T=$(mktemp -d /tmp/nmt-ckpt-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# A small reversal task, so that a run lasts long enough to be interrupted.
reversal_corpus "$T" 7 600
cat >"$T/cfg.json" <<JSON
{"model": {"d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
           "dropout": 0.1, "attention_dropout": 0.1, "ffn_dropout": 0.1},
 "data": {"train_src": "$T/s.txt", "train_tgt": "$T/t.txt"},
 "train": {"max_steps": 300, "batch_tokens": 300, "log_every": 10, "save_every": 100,
           "warmup_steps": 50, "checkpoint_dir": "$T/ck"}}
JSON

losses_after() { grep '"loss"' "$1" | sed 's/, "tokens_per_s".*//' | awk -v n="$2" -F '[:,]' '$2 > n'; }

for threads in 1 2; do
    export OMP_NUM_THREADS=$threads
    "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/full$threads" --quiet >/dev/null 2>&1 ||
        bad "uninterrupted run ($threads threads)"
    "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/kill$threads" --quiet >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ ! -e "$T/kill$threads/step-100.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    step=$("$NMT" info "$T/kill$threads/last.ckpt" | awk '/^step:/ { print $2 }')
    if [ "$step" != 100 ]; then bad "could not kill the run between steps 100 and 300 (last.ckpt at step $step)"; fi
    "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/kill$threads" >"$T/resume.out" 2>&1 ||
        bad "resume after SIGKILL ($threads threads)"
    grep -q "resuming from $T/kill$threads/last.ckpt at step 100" "$T/resume.out" || bad "resume did not say so"
    losses_after "$T/full$threads/train_log.jsonl" 100 >"$T/a"
    losses_after "$T/kill$threads/train_log.jsonl" 100 >"$T/b"
    if [ -s "$T/a" ] && cmp -s "$T/a" "$T/b"; then ok; else bad "losses after resume differ ($threads threads)"; diff "$T/a" "$T/b" | head -5; fi
    section "$T/full$threads/last.ckpt" params >"$T/pa"
    section "$T/kill$threads/last.ckpt" params >"$T/pb"
    if [ -s "$T/pa" ] && cmp -s "$T/pa" "$T/pb"; then ok; else bad "final weights differ after resume ($threads threads)"; fi
    section "$T/full$threads/last.ckpt" adam_v >"$T/pa"
    section "$T/kill$threads/last.ckpt" adam_v >"$T/pb"
    if cmp -s "$T/pa" "$T/pb"; then ok; else bad "Adam state differs after resume ($threads threads)"; fi
done
cmp -s "$T/full1/train_log.jsonl" "$T/full2/train_log.jsonl" 2>/dev/null  # (timings differ; losses checked below)
losses_after "$T/full1/train_log.jsonl" 0 >"$T/a"; losses_after "$T/full2/train_log.jsonl" 0 >"$T/b"
if cmp -s "$T/a" "$T/b"; then ok; else bad "losses differ between 1 and 2 threads"; fi
export OMP_NUM_THREADS=2
CK="$T/full2/last.ckpt"

# A resume may change the dropout rates (it says so), and the new rates are the ones trained with.
for d in 0 0.1; do
    "$NMT" train --config "$T/cfg.json" --resume "$T/full2/step-200.ckpt" --set train.max_steps=230 \
        --set model.dropout=$d --set model.attention_dropout=$d --set model.ffn_dropout=$d \
        --set train.checkpoint_dir="$T/drop$d" >"$T/drop$d.out" 2>&1 || bad "resume with dropout $d: $(cat "$T/drop$d.out")"
    losses_after "$T/drop$d/train_log.jsonl" 200 >"$T/drop$d.loss"
done
losses_after "$T/full2/train_log.jsonl" 200 | head -3 >"$T/full.loss"
if [ -s "$T/drop0.loss" ] && ! cmp -s "$T/drop0.loss" "$T/drop0.1.loss" && cmp -s "$T/drop0.1.loss" "$T/full.loss" &&
   grep -q "resuming with changed settings: model.dropout" "$T/drop0.out"; then ok
else bad "a resume's new dropout rates: $(cat "$T/drop0.loss") vs $(cat "$T/drop0.1.loss")"; fi

# Relative positions, a local window (narrower than the sentences: the band)
# and the cosine schedule: 1 and 2 threads give the same losses, and a run
# resumed from a middle checkpoint continues the uninterrupted one exactly.
REL="--set model.positions=relative --set model.max_relative_position=3 --set model.attention_window=2
     --set train.lr_schedule=cosine --set train.max_steps=60 --set train.save_every=30"
for threads in 1 2; do
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$threads "$NMT" train --config "$T/cfg.json" $REL --set train.checkpoint_dir="$T/rel$threads" \
        --quiet >/dev/null 2>&1 || bad "relative + window run ($threads threads)"
done
losses_after "$T/rel1/train_log.jsonl" 0 >"$T/a"; losses_after "$T/rel2/train_log.jsonl" 0 >"$T/b"
if [ -s "$T/a" ] && cmp -s "$T/a" "$T/b"; then ok; else bad "relative + window: losses differ between 1 and 2 threads"; fi
# shellcheck disable=SC2086
"$NMT" train --config "$T/cfg.json" $REL --set train.checkpoint_dir="$T/relr" --resume "$T/rel2/step-30.ckpt" \
    --quiet >/dev/null 2>"$T/err" || bad "relative + window: resume: $(cat "$T/err")"
losses_after "$T/rel2/train_log.jsonl" 30 >"$T/a"; losses_after "$T/relr/train_log.jsonl" 30 >"$T/b"
if [ -s "$T/a" ] && cmp -s "$T/a" "$T/b"; then ok; else bad "relative + window: losses after resume differ"; fi
section "$T/rel2/last.ckpt" params >"$T/pa"
section "$T/relr/last.ckpt" params >"$T/pb"
if [ -s "$T/pa" ] && cmp -s "$T/pa" "$T/pb"; then ok; else bad "relative + window: weights after resume differ"; fi
if "$NMT" info "$T/rel2/last.ckpt" 2>&1 | grep -q "positions: relative (distances clipped at 3), attention window 2"; then ok
else bad "relative + window: info does not say so: $("$NMT" info "$T/rel2/last.ckpt" 2>&1 | head -5)"; fi
# Int8: the relative embeddings stay float; the quantized file and --int8 decode alike.
head -20 "$T/s.txt" >"$T/rel.src"
if "$NMT" quantize --checkpoint "$T/rel2/last.ckpt" --output "$T/rel8.ckpt" >/dev/null 2>"$T/err" &&
   "$NMT" translate --checkpoint "$T/rel8.ckpt" --beam 3 <"$T/rel.src" >"$T/a" 2>>"$T/err" &&
   "$NMT" translate --checkpoint "$T/rel2/last.ckpt" --int8 --beam 3 <"$T/rel.src" >"$T/b" 2>>"$T/err" &&
   [ "$(wc -l <"$T/a")" -eq 20 ] && cmp -s "$T/a" "$T/b"; then ok
else bad "relative + window: int8 decoding: $(cat "$T/err")"; fi

# Keep-last: save_every 100 over 300 steps with keep_last 5 keeps steps 100..300.
if [ -e "$T/full2/step-100.ckpt" ] && [ -e "$T/full2/step-300.ckpt" ]; then ok; else bad "step-N.ckpt files missing"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/keep" --set train.max_steps=40 \
    --set train.save_every=10 --set train.keep_last=2 --quiet >/dev/null 2>&1
if [ "$(ls "$T/keep" | grep -c '^step-')" -eq 2 ] && [ -e "$T/keep/step-40.ckpt" ] && [ -e "$T/keep/step-30.ckpt" ]; then ok
else bad "keep_last 2 left: $(ls "$T/keep")"; fi

# SIGINT: finish the step, save, exit 0; the run then resumes.
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/int" --set train.max_steps=100000 --quiet >/dev/null 2>&1 &
pid=$!
i=0
while ! grep -q '"step": 20,' "$T/int/train_log.jsonl" 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
kill -INT $pid
wait $pid
st=$?
step=$("$NMT" info "$T/int/last.ckpt" 2>/dev/null | awk '/^step:/ { print $2 }')
if [ $st -eq 0 ] && [ -n "$step" ] && [ "$step" -ge 20 ]; then ok; else bad "SIGINT: exit $st, last.ckpt step '$step'"; fi

# Corruption: a flipped byte in, or a truncation inside, every section.
"$NMT" info "$CK" | awk '/^  [a-z_]+ +offset/ { print $1, $3, $5 }' >"$T/sections"
[ "$(wc -l <"$T/sections")" -eq 8 ] || bad "expected 8 sections, got $(wc -l <"$T/sections")"
while read -r name off size; do
    cp "$CK" "$T/flip.ckpt"
    pos=$((off + size / 2))
    byte=$(od -An -tu1 -j "$pos" -N1 "$T/flip.ckpt" | tr -d ' ')
    printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$T/flip.ckpt" bs=1 seek="$pos" conv=notrunc 2>/dev/null
    for cmd in info translate resume; do
        case $cmd in
            info) "$NMT" info "$T/flip.ckpt" >/dev/null 2>"$T/err" </dev/null ;;
            translate) echo "w1 w2" | "$NMT" translate --checkpoint "$T/flip.ckpt" >/dev/null 2>"$T/err" ;;
            resume) "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/never" --resume "$T/flip.ckpt" >/dev/null 2>"$T/err" ;;
        esac
        st=$?
        if [ $st -eq 2 ] && grep -q "section '$name'" "$T/err"; then ok; else bad "flipped byte in '$name': $cmd exit $st: $(cat "$T/err")"; fi
    done
    head -c "$pos" "$CK" >"$T/trunc.ckpt"
    "$NMT" info "$T/trunc.ckpt" >/dev/null 2>"$T/err"
    st=$?
    if [ $st -eq 2 ] && grep -q "trunc.ckpt" "$T/err"; then ok; else bad "truncation in '$name': exit $st"; fi
done <"$T/sections"
if [ ! -e "$T/never" ]; then ok; else bad "a failed resume wrote its checkpoint_dir"; fi
: >"$T/empty.ckpt"
for f in empty.ckpt s.txt; do
    "$NMT" info "$T/$f" >/dev/null 2>"$T/err"
    if [ $? -eq 2 ] && grep -q "$f" "$T/err"; then ok; else bad "info on $f: $(cat "$T/err")"; fi
done
cp "$CK" "$T/newer.ckpt"
printf '\007' | dd of="$T/newer.ckpt" bs=1 seek=8 conv=notrunc 2>/dev/null
"$NMT" info "$T/newer.ckpt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "version 7 is newer" "$T/err"; then ok; else bad "newer version: $(cat "$T/err")"; fi

# A mismatched model shape is refused, naming the key.
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/full2" --set model.d_ff=32 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "model.d_ff" "$T/err"; then ok; else bad "shape mismatch: $(cat "$T/err")"; fi
# Settings that may change are reported.
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/full2" --set train.max_steps=305 >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -q "changed settings: train.max_steps" "$T/err"; then ok; else bad "changed settings: $(cat "$T/err")"; fi

# Kill during save (injected): last.ckpt stays whole and keeps its step.
cp -r "$T/full1" "$T/crash"
before=$("$NMT" info "$T/crash/last.ckpt" | awk '/^step:/ { print $2 }')
for at in 1 5000 60000; do
    NMT_CKPT_CRASH_AFTER=$at "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/crash" \
        --set train.max_steps=$((before + 2)) --quiet >/dev/null 2>&1
    st=$?
    after=$("$NMT" info "$T/crash/last.ckpt" 2>/dev/null | awk '/^step:/ { print $2 }')
    if [ $st -eq 137 ] && [ "$after" = "$before" ]; then ok; else bad "crash at byte $at: exit $st, step '$after' (want $before)"; fi
done
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/crash" --set train.max_steps=$((before + 2)) --quiet >/dev/null 2>&1 &&
    [ "$("$NMT" info "$T/crash/last.ckpt" | awk '/^step:/ { print $2 }')" = $((before + 2)) ] && ok || bad "save after crashes"

# A run keeps its optimizer: an SGD run's checkpoint holds its momentum, and
# resuming it with Adam is refused (exit 2, naming the file and the key).
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/sgd" --set train.optimizer=sgd_momentum \
    --set train.max_steps=2 --quiet >/dev/null 2>&1 || bad "sgd_momentum run"
"$NMT" info "$T/sgd/last.ckpt" | grep -q '^  momentum ' && ok || bad "no momentum section in an sgd_momentum checkpoint"
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/sgd" --set train.max_steps=4 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "$T/sgd/last.ckpt: train.optimizer" "$T/err"; then ok; else bad "resume with another optimizer: $(cat "$T/err")"; fi

# Averaging copies of one checkpoint returns its weights; incompatible inputs are refused.
"$NMT" average --output "$T/avg.ckpt" "$CK" "$CK" "$CK" >/dev/null 2>"$T/err"
section "$CK" params >"$T/pa"
section "$T/avg.ckpt" params >"$T/pb"
if cmp -s "$T/pa" "$T/pb"; then ok; else bad "average of 3 copies differs: $(cat "$T/err")"; fi
"$NMT" average --output "$T/avg2.ckpt" "$CK" "$T/full1/step-100.ckpt" >/dev/null 2>&1 && ok || bad "average of two steps"
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/other" --set model.d_model=16 --set train.max_steps=1 --quiet >/dev/null 2>&1
"$NMT" average --output "$T/avg3.ckpt" "$CK" "$T/other/last.ckpt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "model.d_model" "$T/err" && [ ! -e "$T/avg3.ckpt" ]; then ok; else bad "incompatible average: $(cat "$T/err")"; fi


# Untrusted content behind valid checksums (tests/test_untrusted.c has the rest):
# a NaN written into the weights, with the params CRC and the header CRC
# recomputed (gzip's trailer holds the same CRC-32), is refused by info and
# translate (exit 2, naming the tensor); info on a valid file says what it checked.
crc32_le() { gzip -c | tail -c 8 | head -c 4; }
put_at() { dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
"$NMT" info "$CK" >"$T/info.ok" && grep -q '^verified: ' "$T/info.ok" && grep -q '^optimizer state: adam$' "$T/info.ok" &&
    ok || bad "info on a valid checkpoint: $(cat "$T/info.ok")"
nsec=$(awk '/^  [a-z_]+ +offset/ { n++ } END { print n }' "$T/info.ok")
set -- $(awk '/^  [a-z_]+ +offset/ { if ($1 == "params") print i, $3, $5; i++ }' "$T/info.ok")
cp "$CK" "$T/nan.ckpt"
printf '\000\000\300\177' | put_at "$T/nan.ckpt" "$2"
tail -c +$(($2 + 1)) "$T/nan.ckpt" | head -c "$3" | crc32_le | put_at "$T/nan.ckpt" $((32 + 56 * $1 + 48))
printf '\000\000\000\000' | put_at "$T/nan.ckpt" 20
head -c $((32 + 56 * nsec)) "$T/nan.ckpt" | crc32_le | put_at "$T/nan.ckpt" 20
"$NMT" info "$T/nan.ckpt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "nan.ckpt: section 'params' holds 1 non-finite values in 1 tensor; the first: tensor 'src_emb' \[0, 0\] is nan" "$T/err"
then ok; else bad "info on NaN weights: $(cat "$T/err")"; fi
echo "w1 w2" | "$NMT" translate --checkpoint "$T/nan.ckpt" >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "tensor 'src_emb'" "$T/err"; then ok; else bad "translate with NaN weights: $(cat "$T/err")"; fi
# Finite but absurd: a weight of 3e38 (beyond the bound a model of this width
# can carry through one layer) is refused too, not translated into NaN scores.
cp "$CK" "$T/big.ckpt"
printf '\346\261\141\177' | put_at "$T/big.ckpt" $(($2 + 20))
tail -c +$(($2 + 1)) "$T/big.ckpt" | head -c "$3" | crc32_le | put_at "$T/big.ckpt" $((32 + 56 * $1 + 48))
printf '\000\000\000\000' | put_at "$T/big.ckpt" 20
head -c $((32 + 56 * nsec)) "$T/big.ckpt" | crc32_le | put_at "$T/big.ckpt" 20
for cmd in translate "translate --int8"; do
    echo "w1 w2" | "$NMT" $cmd --checkpoint "$T/big.ckpt" >"$T/out" 2>"$T/err"
    if [ $? -eq 2 ] && [ ! -s "$T/out" ] && grep -q "big.ckpt: section 'params' holds 1 non-finite values or values beyond" "$T/err" &&
        grep -q "the first: tensor 'src_emb' \[0, 5\] is 3e+38" "$T/err"
    then ok; else bad "$cmd with a weight of 3e38: $(cat "$T/err" "$T/out")"; fi
done

# train.precision (tests/cli.sh has the refusals): the checkpoint (nmt info)
# and every training record of the log say which precision the run trained
# in; a checkpoint from before the key (neither its state nor its config has
# it) reads as fp32; a resume in another precision continues in the config's
# and says so in one line, and only there.
prec_of() { "$NMT" info "$1" 2>/dev/null | sed -n 's/^training precision: \([a-z0-9]*\) .*/\1/p'; }
records() { grep -c "\"loss\".*\"precision\": \"$2\"}\$" "$1/train_log.jsonl"; }  # DIR PRECISION
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/bf" --set train.max_steps=20 \
    --set train.precision=bf16 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && [ "$(prec_of "$T/bf/last.ckpt")" = bf16 ] && [ "$(records "$T/bf" bf16)" -eq 2 ] &&
   [ "$(grep -c '"loss"' "$T/bf/train_log.jsonl")" -eq 2 ]; then ok
else bad "a bf16 run: info says '$(prec_of "$T/bf/last.ckpt")': $(cat "$T/err")"; fi
if [ "$(prec_of "$CK")" = fp32 ] && [ "$(records "$T/full2" fp32)" -eq "$(grep -c '"loss"' "$T/full2/train_log.jsonl")" ] &&
   [ "$(records "$T/full2" fp32)" -gt 0 ]; then ok; else bad "an fp32 run: info says '$(prec_of "$CK")'"; fi
# Every bf16 kernel this machine runs gives the same run (losses, weights,
# Adam's state) as the one nmt chooses; an unknown kernel name exits 2.
for k in portable avx2 avx512bf16; do
    NMT_BF16_KERNEL=$k "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/bfk$k" \
        --set train.max_steps=20 --set train.precision=bf16 --quiet >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q "not available on this CPU" "$T/err"; then continue; fi  # not this CPU
    same=1
    for sec in params adam_m adam_v; do
        section "$T/bf/last.ckpt" $sec >"$T/a.bin"
        section "$T/bfk$k/last.ckpt" $sec >"$T/b.bin"
        { [ -s "$T/a.bin" ] && cmp -s "$T/a.bin" "$T/b.bin"; } || same=0
    done
    if [ $rc -eq 0 ] && [ $same -eq 1 ] && [ "$(grep '"loss"' "$T/bf/train_log.jsonl" | sed 's/, "tokens_per_s".*//')" = \
        "$(grep '"loss"' "$T/bfk$k/train_log.jsonl" | sed 's/, "tokens_per_s".*//')" ]; then ok
    else bad "NMT_BF16_KERNEL=$k: another run than the default kernel's (exit $rc: $(cat "$T/err"))"; fi
done
NMT_BF16_KERNEL=fp16 "$NMT" info "$CK" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "NMT_BF16_KERNEL=fp16: not a bf16 kernel" "$T/err" && ok || bad "NMT_BF16_KERNEL=fp16 not refused"
# bf16 -> bf16 (nothing to say), fp32 -> bf16 from a middle checkpoint, and
# bf16 -> fp32 (the config's default).
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/bf" --set train.max_steps=25 \
    --set train.precision=bf16 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && [ "$(prec_of "$T/bf/last.ckpt")" = bf16 ] && ! grep -q "trained in" "$T/err"; then ok
else bad "a bf16 checkpoint resumed in bf16: $(cat "$T/err")"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/up" --resume "$T/full1/step-100.ckpt" \
    --set train.max_steps=120 --set train.precision=bf16 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -qx "nmt: resuming $T/full1/step-100.ckpt (trained in fp32) in bf16" "$T/err" &&
   [ "$(grep -c . "$T/err")" -eq 2 ] && grep -q "^nmt: resuming with changed settings: train.max_steps" "$T/err" &&
   ! grep -q "changed settings: .*train.precision" "$T/err" &&
   [ "$(prec_of "$T/up/last.ckpt")" = bf16 ] && [ "$(records "$T/up" bf16)" -eq 2 ]; then ok
else bad "fp32 checkpoint resumed in bf16: $(cat "$T/err")"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/bf" --set train.max_steps=30 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^nmt: resuming $T/bf/last.ckpt (trained in bf16) in fp32$" "$T/err" &&
   [ "$(prec_of "$T/bf/last.ckpt")" = fp32 ] && [ "$(records "$T/bf" bf16)" -eq 2 ] && [ "$(records "$T/bf" fp32)" -eq 1 ]
then ok; else bad "bf16 checkpoint resumed in fp32: $(cat "$T/err")"; fi
# An older checkpoint: the precision taken out of the state and the config
# (blanked: JSON whitespace keeps the sizes), the CRCs recomputed.
blank_in_section() { # FILE SECTION PERL-REGEX
    set -- "$1" "$2" "$3" $("$NMT" info "$1" | awk -v n="$2" '/^  [a-z_]+ +offset/ { if ($1 == n) print i + 0, $3, $5; i++ }')
    tail -c +$(($5 + 1)) "$1" | head -c "$6" | perl -0777 -pe "s/$3/' ' x length(\$&)/ge" >"$T/payload"
    put_at "$1" "$5" <"$T/payload"
    crc32_le <"$T/payload" | put_at "$1" $((32 + 56 * $4 + 48))
    printf '\000\000\000\000' | put_at "$1" 20
    head -c $((32 + 56 * nsec)) "$1" | crc32_le | put_at "$1" 20
}
cp "$CK" "$T/old.ckpt"
blank_in_section "$T/old.ckpt" state ',"precision":"fp32"'
blank_in_section "$T/old.ckpt" config '\t\t"precision":\t"fp32",\n'
if [ "$(section "$T/old.ckpt" state | grep -c precision)$(section "$T/old.ckpt" config | grep -c precision)" = 00 ] &&
   [ "$(prec_of "$T/old.ckpt")" = fp32 ]; then ok; else bad "a checkpoint without the precision: $("$NMT" info "$T/old.ckpt" 2>&1 | tail -3)"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/oldr" --resume "$T/old.ckpt" --set train.max_steps=310 \
    --set train.precision=bf16 --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^nmt: resuming $T/old.ckpt (trained in fp32) in bf16$" "$T/err" &&
   [ "$(prec_of "$T/oldr/last.ckpt")" = bf16 ]; then ok; else bad "an old checkpoint resumed in bf16: $(cat "$T/err")"; fi

# Languages (data.src_lang, data.tgt_lang) and the language profiles (the
# langid section, built at a fresh start; tests/test_untrusted.c and
# test_export.c have the refusals): nmt info shows them; a resume carries the
# profiles and may record or change the languages (said as a changed
# setting); average, quantize and export/import keep both.
langs() { "$NMT" info "$1" 2>&1 | sed -n 's/^languages: //p'; }
if [ "$(langs "$CK")" = "not recorded" ] && "$NMT" info "$CK" | grep -q '^language profiles: source and target'; then ok
else bad "a run without languages: $("$NMT" info "$CK" 2>&1 | grep -i lang)"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/lang" --set train.max_steps=2 \
    --set data.src_lang=de --set data.tgt_lang=en --quiet >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && [ "$(langs "$T/lang/last.ckpt")" = "de -> en" ]; then ok; else bad "languages de -> en: $(cat "$T/err")"; fi
section "$T/lang/last.ckpt" langid >"$T/lid"
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/lang" --set train.max_steps=4 \
    --set data.src_lang=pt-BR --set data.tgt_lang=zh-Hans --quiet >/dev/null 2>"$T/err"
st=$?
section "$T/lang/last.ckpt" langid >"$T/lid2"
if [ $st -eq 0 ] && grep -q "^nmt: resuming with changed settings: data.src_lang, data.tgt_lang, train.max_steps$" "$T/err" &&
   [ "$(langs "$T/lang/last.ckpt")" = "pt-BR -> zh-Hans" ] && [ -s "$T/lid" ] && cmp -s "$T/lid" "$T/lid2"; then ok
else bad "a resume changing the languages: $(cat "$T/err")"; fi
"$NMT" average --output "$T/lavg.ckpt" "$T/lang/last.ckpt" "$T/lang/last.ckpt" >/dev/null 2>"$T/err" &&
"$NMT" quantize --checkpoint "$T/lang/last.ckpt" --output "$T/lq.ckpt" >/dev/null 2>>"$T/err" &&
"$NMT" export --checkpoint "$T/lang/last.ckpt" --output "$T/l.safetensors" 2>>"$T/err" &&
"$NMT" import --input "$T/l.safetensors" --output "$T/limp.ckpt" >/dev/null 2>>"$T/err"
st=$?
for f in lavg lq limp; do
    section "$T/$f.ckpt" langid >"$T/lid3"
    if [ $st -eq 0 ] && [ "$(langs "$T/$f.ckpt")" = "pt-BR -> zh-Hans" ] && cmp -s "$T/lid" "$T/lid3"; then ok
    else bad "$f.ckpt lost the languages or profiles: $(cat "$T/err")"; fi
done
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/never" --set data.src_lang=de --dry-run >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q -- "--set data.src_lang: data.tgt_lang is missing" "$T/err"; then ok
else bad "data.src_lang alone: $(cat "$T/err")"; fi

# Never lose good work (tests/test_safety.c has the rest): a second run on one
# checkpoint_dir exits 2 naming the directory and the holder's pid, and a
# killed holder releases the lock; a file size limit (ulimit -f) during a save
# gives exit 1 and a clear message, with last.ckpt intact and no .tmp left; a
# diverged run stops with exit 1 without replacing last.ckpt.
export OMP_NUM_THREADS=2
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/locked" --set train.max_steps=100000 --quiet >/dev/null 2>&1 &
pid=$!
i=0
while ! grep -q '"step": 10,' "$T/locked/train_log.jsonl" 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/locked" --set train.max_steps=20 --quiet >/dev/null 2>"$T/err"
st=$?
if [ $st -eq 2 ] && grep -q "$T/locked" "$T/err" && grep -q "pid $pid" "$T/err"; then ok; else bad "second run on one directory: exit $st: $(cat "$T/err")"; fi
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/locked" --set train.max_steps=20 --quiet >/dev/null 2>"$T/err" &&
    ok || bad "a run after the holder was killed: $(cat "$T/err")"
cp -r "$T/full1" "$T/safe"
before=$("$NMT" info "$T/safe/last.ckpt" | awk '/^step:/ { print $2 }')
(ulimit -f 64 && exec "$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/safe" \
    --set train.max_steps=$((before + 2)) --quiet) >/dev/null 2>"$T/err"
st=$?
after=$("$NMT" info "$T/safe/last.ckpt" 2>/dev/null | awk '/^step:/ { print $2 }')
if [ $st -eq 1 ] && grep -q "File too large (the file size limit" "$T/err" && [ "$after" = "$before" ] &&
    ! ls "$T/safe" | grep -q '\.tmp$'; then ok; else bad "ulimit -f: exit $st, step '$after' (want $before): $(ls "$T/safe"): $(cat "$T/err")"; fi
"$NMT" train --config "$T/cfg.json" --set train.checkpoint_dir="$T/safe" --set train.max_steps=$((before + 60)) \
    --set train.lr_schedule=inverse_sqrt --set train.lr=10 --set train.warmup_steps="$before" --quiet >/dev/null 2>"$T/err"
st=$?
after=$("$NMT" info "$T/safe/last.ckpt" 2>/dev/null | awk '/^step:/ { print $2 }')
if [ $st -eq 1 ] && grep -q "training diverged" "$T/err" && grep -q "warning: step .*looks diverged" "$T/err" &&
    [ "$after" = "$before" ]; then ok; else bad "diverged run: exit $st, step '$after' (want $before): $(cat "$T/err")"; fi
echo "cli-checkpoint: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
