#!/bin/sh
# BPE check on Multi30k (run by `make test` when ../shared/data/multi30k exists): learns a joint
# vocabulary on train.de + train.en, round-trips every line of train, val and
# test through `nmt bpe encode | nmt bpe decode`, and prints the timings.
# Usage: NMT=./nmt VOCAB=8400 sh scripts/check-bpe-multi30k.sh
set -eu
NMT=${NMT:-./nmt}
VOCAB=${VOCAB:-8400}
DATA=${DATA:-$(dirname "$0")/../../shared/data/multi30k}
TMP=$(mktemp -d /tmp/nmt-bpe-check.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

for f in train.de train.en val.de val.en test_2016_flickr.de test_2016_flickr.en; do
    zcat "$DATA/$f.gz" > "$TMP/$f"
done

t0=$(now)
"$NMT" bpe learn --vocab-size "$VOCAB" --input "$TMP/train.de" --input "$TMP/train.en" --output "$TMP/model.bpe"
t1=$(now)
echo "learn: vocab $VOCAB, $(sed -n 's/^chars //p' "$TMP/model.bpe") characters," \
     "$(sed -n 's/^merges //p' "$TMP/model.bpe") merges: $(secs "$t0" "$t1") s (limit 10 s)"

cat "$TMP/train.de" "$TMP/train.en" > "$TMP/train.both"
t0=$(now)
"$NMT" bpe encode --model "$TMP/model.bpe" < "$TMP/train.both" > "$TMP/train.tok"
t1=$(now)
echo "encode train (both sides, $(wc -l < "$TMP/train.both") lines, $(wc -w < "$TMP/train.tok") tokens):" \
     "$(secs "$t0" "$t1") s (limit 2 s)"
t0=$(now)
"$NMT" bpe decode --model "$TMP/model.bpe" < "$TMP/train.tok" > "$TMP/train.dec"
t1=$(now)
echo "decode train: $(secs "$t0" "$t1") s"
cmp "$TMP/train.both" "$TMP/train.dec"
echo "round trip train: identical"

for f in val.de val.en test_2016_flickr.de test_2016_flickr.en; do
    "$NMT" bpe encode --model "$TMP/model.bpe" < "$TMP/$f" | "$NMT" bpe decode --model "$TMP/model.bpe" > "$TMP/$f.dec"
    cmp "$TMP/$f" "$TMP/$f.dec"
    echo "round trip $f: identical ($(wc -l < "$TMP/$f") lines)"
done
echo "check-bpe-multi30k: OK"
