#!/bin/sh
# Regenerates the committed seed corpora in fuzz/corpus/ with ./nmt (or $NMT):
# tiny checkpoints (word and BPE tokenizers, Adam and SGD state), configs, a
# BPE model, tokenizer sections, corpus pairs and BLEU pairs. Every seed is a
# few KB at most. Run from anywhere: sh fuzz/make-seeds.sh
set -e
cd "$(dirname "$0")/.."
NMT=${NMT:-./nmt}
[ -x "$NMT" ] || { echo "make-seeds: $NMT not found (run make first)" >&2; exit 1; }
C=fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p $C/checkpoint $C/config $C/bpe $C/tokenizer $C/corpus $C/bleu $C/safetensors $C/request fuzz/data

# Tiny training data: the first lines of the toy corpus.
head -n 40 data/toy/train.src > $T/train.src
head -n 40 data/toy/train.tgt > $T/train.tgt
head -n 5 data/toy/valid.src > $T/valid.src
head -n 5 data/toy/valid.tgt > $T/valid.tgt

# The BPE model the corpus harness uses (fuzz/data/) and a BPE seed.
"$NMT" bpe learn --vocab-size 300 --input $T/train.src --input $T/train.tgt --output fuzz/data/toy.bpe >/dev/null
cp fuzz/data/toy.bpe $C/bpe/toy.bpe
head -c 0 /dev/null > $C/bpe/empty

cat > $T/tiny.json <<JSON
{
  "model": { "d_model": 4, "heads": 1, "d_ff": 4, "encoder_layers": 1, "decoder_layers": 1,
             "dropout": 0.0 },
  "data": { "train_src": "$T/train.src", "train_tgt": "$T/train.tgt",
            "valid_src": "$T/valid.src", "valid_tgt": "$T/valid.tgt",
            "tokenizer": "word", "vocab_size": 12, "max_src_len": 40, "max_tgt_len": 40 },
  "train": { "max_steps": 1, "seed": 1, "checkpoint_dir": "$T/ck", "log_every": 1,
             "save_every": 1, "keep_last": 1, "eval_every": 1000, "batch_tokens": 64 }
}
JSON
train() {  # NAME SETS...
    name=$1; shift
    rm -rf $T/ck
    "$NMT" train --config $T/tiny.json --quiet "$@" >$T/log 2>&1 || { cat $T/log >&2; exit 1; }
    cp $T/ck/last.ckpt $C/checkpoint/$name.ckpt
}
train word-adam
train word-shared-sgd --set model.shared_vocab=true --set train.optimizer=sgd_momentum
train word-prenorm --set model.norm=pre --set model.tie_output=false
train word-relative --set model.positions=relative --set model.max_relative_position=2 --set model.attention_window=3
train bpe --set data.tokenizer=bpe --set data.bpe_model=fuzz/data/toy.bpe --set data.vocab_size=300 --set model.shared_vocab=true --set train.optimizer=sgd_momentum \
    --set data.max_src_len=400 --set data.max_tgt_len=400 --set train.batch_tokens=800

# A container with valid CRCs whose config claims a huge model (d_model 65536,
# d_ff 2^20, 64 + 64 layers) next to a tiny params section: the reader must
# refuse it without allocating the model (exit 2, not out of memory).
python3 - $C/checkpoint/word-adam.ckpt $C/checkpoint/huge-config.ckpt \
    d_model=65536 d_ff=1048576 encoder_layers=64 decoder_layers=64 <<'PY'
import struct, sys, zlib, re
src, dst, subs = sys.argv[1], sys.argv[2], sys.argv[3:]
b = open(src,'rb').read()
n = struct.unpack_from('<I', b, 16)[0]
secs = []
for i in range(n):
    e = 32 + 56*i
    name = b[e:e+32]; off, size = struct.unpack_from('<QQ', b, e+32)
    secs.append([name, bytearray(b[off:off+size])])
for s in subs:
    k, v = s.split('=')
    for sec in secs:
        if sec[0].rstrip(b'\0') == b'config':
            sec[1] = bytearray(re.sub(rb'("%s":\s*)[^,\n}]+' % k.encode(), rb'\g<1>' + v.encode(), bytes(sec[1])))
end = 32 + 56*n; offs = []
for name, p in secs:
    o = (end + 63)//64*64; offs.append(o); end = o + len(p)
out = bytearray(end); out[0:16] = b[0:16]; struct.pack_into('<I', out, 16, n); struct.pack_into('<Q', out, 24, end)
for i,(name,p) in enumerate(secs):
    e = 32+56*i; out[e:e+32] = name; struct.pack_into('<QQI', out, e+32, offs[i], len(p), zlib.crc32(p)); out[offs[i]:offs[i]+len(p)] = p
struct.pack_into('<I', out, 20, zlib.crc32(bytes(out[:32+56*n])))
open(dst,'wb').write(out)
PY

# Configs: the one above, its resolved form from a checkpoint, the repository's.
cp $T/tiny.json $C/config/tiny.json
for f in configs/*.json; do cp "$f" $C/config/; done
printf '{}' > $C/config/empty.json
printf '{"model":{"norm":"pre"},"train":{"optimizer":"sgd_momentum","momentum":0.5}}\0train.seed=7\0data.tokenizer=bpe' > $C/config/with-sets

# Tokenizer sections, cut out of the checkpoints.
for k in word-adam word-shared-sgd bpe; do
    python3 - "$C/checkpoint/$k.ckpt" "$C/tokenizer/$k" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack_from('<I', b, 16)[0]
for i in range(n):
    e = 32 + 56 * i
    name = b[e:e + 32].rstrip(b'\0').decode()
    off, size = struct.unpack_from('<QQ', b, e + 32)
    if name == 'tokenizer':
        open(sys.argv[2], 'wb').write(b[off:off + size])
PY
done

# The word tokenizer fuzz_corpus uses (a 12-word vocabulary: plenty of <unk>).
cp $C/tokenizer/word-adam fuzz/data/word.tok

# Corpus pairs: source, NUL, target (see fuzz_corpus.c).
i=0
paste -d '\t' data/toy/test.src data/toy/test.tgt | head -n 6 | while IFS="$(printf '\t')" read -r s t; do
    i=$((i + 1)); printf 'w%s\n\0%s\n' "$s" "$t" > $C/corpus/pair$i
done
printf 'b\xc3\xa9t\xc3\xa9 \xe2\x96\x81x\r\n\n  two  spaces \n\0\xc3\xa9\n\nl\xc3\xa0\r\n' > $C/corpus/utf8-crlf

# BLEU pairs: one options byte, hypothesis, NUL, reference (see fuzz_bleu.c).
i=0
paste -d '\t' data/toy/test.tgt data/toy/test.tgt | head -n 4 | while IFS="$(printf '\t')" read -r h r; do
    i=$((i + 1)); printf '\000%s\0%s' "$h" "$r" > $C/bleu/same$i
done
printf '\001The cat sat on the mat.\0The cat is on the mat.' > $C/bleu/cat
printf '\003\xc3\x84rger \xe2\x80\x94 \xe2\x82\xac 3,5\0\xc3\xa4rger-\xe2\x82\xac 3.5 \xf0\x9f\x98\x80' > $C/bleu/unicode
printf '\007&quot;x&lt;y&gt;&amp;\0"x<y>&"' > $C/bleu/entities
# Safetensors files (nmt import): the tiny checkpoints, exported.
for k in word-adam word-prenorm word-relative bpe; do
    "$NMT" export --checkpoint $C/checkpoint/$k.ckpt --output $C/safetensors/$k.safetensors
done

# Numbers (issue 26): bytes after the JSON (a safetensors header, a
# checkpoint's state, a config), a shape whose product wraps size_t, and
# finite weights too large for a finite forward pass (all 3e38).
python3 - $C <<'PY'
import json, re, struct, sys, zlib
C = sys.argv[1]
def st(h, data):
    j = h.encode(); j += b' ' * (-len(j) % 8)
    return struct.pack('<Q', len(j)) + j + data
b = open(C + '/safetensors/word-adam.safetensors', 'rb').read()
hl = struct.unpack_from('<Q', b)[0]
head, data = b[8:8 + hl].rstrip(b' ').decode(), b[8 + hl:]
open(C + '/safetensors/trailing-bytes.safetensors', 'wb').write(st(head + ' GARBAGE', data))
open(C + '/safetensors/shape-overflow.safetensors', 'wb').write(
    st('{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}', b''))
open(C + '/safetensors/absurd-weights.safetensors', 'wb').write(st(head, struct.pack('<f', 3e38) * (len(data) // 4)))
def ckpt(src, dst, edit):  # rewrites sections, then offsets and CRCs (fuzz_checkpoint's format)
    b = open(src, 'rb').read()
    n = struct.unpack_from('<I', b, 16)[0]
    secs = []
    for i in range(n):
        e = 32 + 56 * i
        off, size = struct.unpack_from('<QQ', b, e + 32)
        secs.append([b[e:e + 32], edit(b[e:e + 32].rstrip(b'\0').decode(), b[off:off + size])])
    end = 32 + 56 * n; offs = []
    for name, p in secs:
        o = (end + 63) // 64 * 64; offs.append(o); end = o + len(p)
    out = bytearray(end); out[0:16] = b[0:16]; struct.pack_into('<I', out, 16, n); struct.pack_into('<Q', out, 24, end)
    for i, (name, p) in enumerate(secs):
        e = 32 + 56 * i; out[e:e + 32] = name
        struct.pack_into('<QQI', out, e + 32, offs[i], len(p), zlib.crc32(p)); out[offs[i]:offs[i] + len(p)] = p
    struct.pack_into('<I', out, 20, zlib.crc32(bytes(out[:32 + 56 * n])))
    open(dst, 'wb').write(out)
w = C + '/checkpoint/word-adam.ckpt'
ckpt(w, C + '/checkpoint/state-trailing.ckpt', lambda k, p: p + b' {"step":9}' if k == 'state' else p)
ckpt(w, C + '/checkpoint/absurd-weights.ckpt',
     lambda k, p: struct.pack('<f', 3e38) * (len(p) // 4) if k == 'params' else p)
PY
printf '{"data": {"train_src": "a", "train_tgt": "b"}} GARBAGE' > $C/config/trailing.json

# Request bodies (nmt serve's POST /translate).
printf '{"q": "the old man"}' > $C/request/one
printf '{"q": ["a b", "", "\\u00e9t\\u00e9"], "beam": 5, "nbest": 2, "attention": true}' > $C/request/many
printf '{"q": "x", "alternatives": 3, "source": "de", "target": "en", "format": "text"}' > $C/request/libre
printf '[{"src": "the old man", "id": 100}, {"src": "b"}]' > $C/request/opennmt
printf '{"q": "a\\nb", "beam": 0}' > $C/request/bad
printf '{"q": "a"} GARBAGE' > $C/request/trailing
printf '{"q": ["a\\u0000b", "c\\\\u0000"]}' > $C/request/nul
printf '{"q": ["", "", ""], "beam": 16, "nbest": 16}' > $C/request/work
printf '\001{"q": "a"}' > $C/request/leading-control

ls -l $C/*/ | awk '$5 > 8192 {print "make-seeds: large seed:", $0}'
echo "make-seeds: wrote $(find $C -type f | wc -l) seeds under $C"
