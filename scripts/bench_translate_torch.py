#!/usr/bin/python3
"""A PyTorch reference decoder for nmt checkpoints: the speed yardstick for
`nmt translate`.

Reads an nmt float checkpoint straight from its file (src/ckptfile.h,
src/checkpoint.h), rebuilds the model as a plain nn.Module (nn.Linear,
F.layer_norm, hand-written multi-head attention), tokenizes as nmt does
(word vocabularies or nmt's BPE, reimplemented here), and translates with
a key/value cache, greedy (--beam 1) or beam search, batches of --batch
sentences in input order, with nmt's stopping rules, length limit and length
penalty (src/decode.c). Greedy output is meant to equal `nmt translate`
line for line; beam search follows nmt's algorithm (the same rows, steps and
candidates) but may break score ties differently.

Only decoding is timed: tokenizing, loading and one warm-up batch are not.
Prints one summary line (or, with --json, one JSON object) on stdout.

usage: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_translate_torch.py \
           --checkpoint CKPT --input SRC [--output OUT] [--beam K] [--batch 32] \
           [--threads N] [--quantize] [--alpha A] [--max-len-a A] [--max-len-b B] \
           [--check-against FILE] [--json]
--quantize applies PyTorch's own dynamic int8 quantization to every nn.Linear
(the output projection included). Needs Debian's python3-torch.
"""
import argparse
import json
import math
import os
import re
import resource
import struct
import sys
import time
import zlib

# PyTorch's dynamic int8 Linear always asks for reduce_range, which qnnpack
# ignores with a C++ warning on every call: keep those warnings off stderr
# (c10 lets glog print the lower of the two levels, so both are needed).
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
os.environ.setdefault("GLOG_minloglevel", "2")
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("bench_translate_torch.py: PyTorch is not installed (apt-get install -y python3-torch)")

PAD, UNK, BOS, EOS, SPECIALS = 0, 1, 2, 3, 4
SPECIAL_NAMES = ["<pad>", "<unk>", "<s>", "</s>"]
LN_EPS = 1e-5  # src/ops.c
NBEST = 1       # hypotheses nmt translate keeps per sentence by default (--nbest)


def fail(msg):
    print(f"bench_translate_torch.py: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- checkpoint file

NEEDED = ("config", "tokenizer", "tensors", "params")


def read_sections(path):
    """The sections decoding needs, name -> bytes, after the header and CRC
    checks ckpt_open makes (a damaged file should fail here, not give a
    plausible-looking benchmark). Only those sections are read: a training
    checkpoint's optimizer state would double the memory high-water mark."""
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) < 32 or head[:8] != b"NMTCKPT\0":
            fail(f"{path}: not an nmt checkpoint")
        version, bom, count, hcrc, size = struct.unpack_from("<IIIIQ", head, 8)
        if version != 1:
            fail(f"{path}: checkpoint format version {version}, this script reads 1")
        if bom != 0x01020304:
            fail(f"{path}: written on a machine of the other byte order")
        if size != os.fstat(f.fileno()).st_size:
            fail(f"{path}: truncated or malformed (header says {size} bytes)")
        table = f.read(56 * count)
        header = bytearray(head + table)
        header[20:24] = b"\0\0\0\0"
        if len(table) != 56 * count or zlib.crc32(header) != hcrc:
            fail(f"{path}: header checksum mismatch")
        entries = {}
        for i in range(count):
            name, off, n, crc, _ = struct.unpack_from("<32sQQII", table, 56 * i)
            entries[name.rstrip(b"\0").decode("ascii")] = (off, n, crc)
        sections = {}
        for name in NEEDED:
            if name not in entries:
                what = " (an int8 checkpoint? this script reads float ones)" if "qweights" in entries else ""
                fail(f"{path}: no '{name}' section{what}")
            off, n, crc = entries[name]
            f.seek(off)
            data = bytearray(n)
            if f.readinto(data) != n or zlib.crc32(data) != crc:
                fail(f"{path}: section '{name}' is damaged")
            sections[name] = data
    return sections


def model_config(cfg):
    """The model keys of the resolved config, with src/config.c's defaults."""
    m, d = cfg.get("model", {}), cfg.get("data", {})
    c = {
        "d_model": m.get("d_model", 512), "heads": m.get("heads", 8), "d_ff": m.get("d_ff", 2048),
        "enc_layers": m.get("encoder_layers", 6), "dec_layers": m.get("decoder_layers", 6),
        "pre_norm": m.get("norm", "post") == "pre", "tie_output": m.get("tie_output", True),
        "shared_vocab": m.get("shared_vocab", False),
        "max_src_len": d.get("max_src_len", 100), "max_tgt_len": d.get("max_tgt_len", 100),
    }
    # Positions for the longest sentence the config admits (+ BOS/EOS), and
    # never fewer than 1024 (src/model_config.c); decoding stops 2 short of it.
    c["max_len"] = max(max(c["max_src_len"], c["max_tgt_len"]) + 2, 1024)
    return c


def read_tensors(sections):
    """name -> float32 tensor of its (rows, cols) shape, from the tensor table
    and the params payload (offsets count floats)."""
    params = torch.frombuffer(sections["params"], dtype=torch.float32)
    out = {}
    for line in bytes(sections["tensors"]).decode().splitlines():
        if not line.strip():
            continue
        name, rows, cols, off, _decay = line.split()
        rows, cols, off = int(rows), int(cols), int(off)
        out[name] = params[off:off + rows * cols].view(rows, cols)
    return out


# ---------------------------------------------------------------- tokenizers

def utf8_replace(raw):
    """bytes -> str the way src/bpe.c's decode does it: every byte that does not
    start a whole, valid UTF-8 character (and NUL) becomes one U+FFFD. Python's
    'replace' handler would merge a broken sequence into one U+FFFD instead."""
    out, i, n = [], 0, len(raw)
    while i < n:
        c = raw[i]
        k = 1 if c < 0x80 else 2 if 0xC2 <= c <= 0xDF else 3 if c & 0xF0 == 0xE0 else 4 if 0xF0 <= c <= 0xF4 else 0
        ch = None
        if k and i + k <= n:
            try:
                ch = raw[i:i + k].decode("utf-8")
            except UnicodeDecodeError:
                ch = None
        if ch is None or ch == "\0":
            out.append("\ufffd")
            i += 1
        else:
            out.append(ch)
            i += k
    return "".join(out)


class WordTokenizer:
    """src/vocab.c: words are runs of anything but space, tab, CR and LF;
    unknown words are <unk>, which decoding shows; other specials are skipped."""
    SPLIT = re.compile(r"[ \t\r\n]+")

    def __init__(self, src_words, tgt_words):
        self.src = {w: i for i, w in enumerate(src_words)}
        self.tgt_words = tgt_words

    def encode(self, line):
        return [self.src.get(w, UNK) for w in self.SPLIT.split(line) if w]

    def decode(self, ids):
        words = []
        for i in ids:
            if i == UNK:
                words.append(SPECIAL_NAMES[UNK])
            elif EOS < i < len(self.tgt_words):
                words.append(self.tgt_words[i])
        return " ".join(words)

    def vocab_size(self):
        return len(self.src), len(self.tgt_words)


MARKER = "\u2581"
BYTE0, FIRST_LEARNED = SPECIALS, SPECIALS + 256
CL_SPACE, CL_RAW, CL_PUNCT, CL_DIGIT, CL_WORD = range(5)


def char_class(cp):
    """src/bpe.c's character classes: runs of one class form a piece."""
    if cp == 0x20:
        return CL_SPACE
    if cp < 0x20 or cp == 0x7F or 0x80 <= cp < 0xA0 or cp == 0x2581:
        return CL_RAW
    if 0x30 <= cp <= 0x39:
        return CL_DIGIT
    if cp < 0x80:
        return CL_WORD if 0x61 <= (cp | 0x20) <= 0x7A else CL_PUNCT
    if (0xA1 <= cp <= 0xBF or cp in (0xD7, 0xF7) or 0x2000 <= cp <= 0x206F or 0x20A0 <= cp <= 0x20CF
            or 0x3000 <= cp <= 0x303F or 0xFF01 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20
            or 0xFF3B <= cp <= 0xFF40 or 0xFF5B <= cp <= 0xFF65):
        return CL_PUNCT
    return CL_WORD


class BpeTokenizer:
    """nmt's BPE (src/bpe.c), rebuilt from the model text of the tokenizer
    section: ids 0..3 specials, 4..259 bytes, then the learned characters,
    then merge results in merge order (a result spelled like an existing
    learned token reuses its id)."""

    def __init__(self, text):
        lines = text.split("\n")
        if lines[0] != "nmt-bpe 1":
            fail("tokenizer: not an nmt BPE model")
        size = int(lines[1].split()[1])
        nchars = int(lines[2].split()[1])
        self.tok = SPECIAL_NAMES + [f"<0x{i:02X}>" for i in range(256)]
        self.char_id = {}
        for ch in lines[3:3 + nchars]:
            self.char_id[ch] = len(self.tok)
            self.tok.append(ch)
        tok_id = {t: i for i, t in enumerate(self.tok)}
        nmerges = int(lines[3 + nchars].split()[1])
        self.merges = {}  # (left id, right id) -> (rank, result id)
        for rank, line in enumerate(lines[4 + nchars:4 + nchars + nmerges]):
            a, b = line.split(" ")
            x, y = tok_id[a], tok_id[b]
            s = a + b
            if s not in tok_id:
                tok_id[s] = len(self.tok)
                self.tok.append(s)
            self.merges[(x, y)] = (rank, tok_id[s])
        if len(self.tok) != size:
            fail(f"tokenizer: BPE model defines {len(self.tok)} tokens, declares {size}")
        self.cache = {}

    def vocab_size(self):
        return len(self.tok), len(self.tok)

    def pieces(self, line):
        """src/bpe.c pretokenize(): (text, marker, raw) pieces; a dummy space
        before the line; a space followed by no word is a piece of its own."""
        out, pending, run_class = [], True, None
        for ch in line:
            cl = char_class(ord(ch))
            if cl in (CL_SPACE, CL_RAW):
                if pending:
                    out.append(["", True, False])
                pending = cl == CL_SPACE
                if cl == CL_RAW:
                    out.append([ch, False, True])
                run_class = None
            elif run_class == cl:
                out[-1][0] += ch
            else:
                out.append([ch, pending, False])
                run_class, pending = cl, False
        if line and pending:
            out.append(["", True, False])
        return out

    def encode_piece(self, s):
        """Merge the adjacent pair of lowest rank, leftmost on ties, until none
        is left (what src/bpe.c's heap does); unlearned characters are bytes."""
        sym = []
        for ch in s:
            i = self.char_id.get(ch)
            if i is not None:
                sym.append(i)
            else:
                sym.extend(BYTE0 + b for b in ch.encode("utf-8"))
        merges = self.merges
        while len(sym) > 1:
            best, at = None, -1
            for j in range(len(sym) - 1):
                m = merges.get((sym[j], sym[j + 1]))
                if m is not None and (best is None or m[0] < best[0]):
                    best, at = m, j
            if best is None:
                break
            sym[at:at + 2] = [best[1]]
        return sym

    def encode(self, line):
        ids = []
        for text, marker, raw in self.pieces(line):
            if raw:
                ids.extend(BYTE0 + b for b in text.encode("utf-8"))
                continue
            key = (MARKER if marker else "") + text
            got = self.cache.get(key)
            if got is None:
                got = self.cache[key] = self.encode_piece(key)
            ids.extend(got)
        return ids

    def decode(self, ids):
        out, first = bytearray(), True
        for i in ids:
            if i < BYTE0 or i >= len(self.tok):
                continue
            if i < FIRST_LEARNED:
                out.append(i - BYTE0)
                first = False
                continue
            t = self.tok[i]
            if first and t.startswith(MARKER):  # the dummy space encode put there
                t = t[1:]
            first = False
            out += t.replace(MARKER, " ").encode("utf-8")
        return utf8_replace(bytes(out))


def read_tokenizer(section):
    raw = bytes(section)
    nl = raw.index(b"\n")
    _, kind, l0, l1 = raw[:nl].decode().split()
    l0, l1 = int(l0), int(l1)
    p0 = raw[nl + 1:nl + 1 + l0].decode("utf-8")
    if kind == "bpe":
        return BpeTokenizer(p0)
    src = p0.split("\n")[:-1]
    tgt = src if kind == "word-shared" else raw[nl + 1 + l0:nl + 1 + l0 + l1].decode("utf-8").split("\n")[:-1]
    return WordTokenizer(src, tgt)


# ---------------------------------------------------------------- the model

def positions_table(max_len, C):
    """src/ops.c: sin and cos interleaved (even and odd columns), in double,
    rounded to float."""
    t = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)
    angle = t / torch.pow(10000.0, i / C)
    pe = torch.zeros(max_len, C, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)[:, :C // 2]
    return pe.float()


def linear_from(w, b):
    """nmt stores a linear weight as (in, out); nn.Linear wants (out, in)."""
    lin = nn.Linear(w.shape[0], w.shape[1], bias=b is not None)
    with torch.no_grad():
        lin.weight.copy_(w.t())
        if b is not None:
            lin.bias.copy_(b.reshape(-1))
    return lin


class Norm(nn.Module):
    def __init__(self, t, prefix):
        super().__init__()
        self.w = nn.Parameter(t[prefix + ".w"].reshape(-1).clone())
        self.b = nn.Parameter(t[prefix + ".b"].reshape(-1).clone())

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.w, self.b, LN_EPS)


def attend(q, k, v, mask):
    """q (..., Tq, D), k/v (..., Tk, D); mask (broadcastable, True = hidden key)
    or None. Scores scaled by 1/sqrt(D), as src/ops.c does. Plain matmul on
    purpose: it is what a PyTorch user writes. (This PyTorch runs it as one
    small BLAS product per row and head, a third of greedy decoding's time;
    a broadcast multiply-and-sum was faster for 32 rows, slower for 128.)"""
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


class Sublayer(nn.Module):
    """The wrapper around every sublayer F (src/layer.c): post-norm
    y = LN(x + F(x)); pre-norm y = x + F(LN(x))."""

    def __init__(self, norm, pre_norm):
        super().__init__()
        self.norm, self.pre_norm = norm, pre_norm

    def run(self, x, fn):
        if self.pre_norm:
            return x + fn(self.norm(x))
        return self.norm(x + fn(x))


class Ffn(Sublayer):
    def __init__(self, t, p, norm, pre_norm):
        super().__init__(Norm(t, norm), pre_norm)
        self.w1 = linear_from(t[p + ".w1"], t[p + ".b1"])
        self.w2 = linear_from(t[p + ".w2"], t[p + ".b2"])

    def forward(self, x):
        return self.run(x, lambda u: self.w2(F.relu(self.w1(u))))


class EncoderLayer(nn.Module):
    def __init__(self, t, l, c):
        super().__init__()
        p = f"enc.{l}"
        self.H, self.pre_norm = c["heads"], c["pre_norm"]
        self.attn = Sublayer(Norm(t, p + ".ln1"), c["pre_norm"])
        self.qkv = linear_from(t[p + ".self_attn.wqkv"], t[p + ".self_attn.bqkv"])
        self.wo = linear_from(t[p + ".self_attn.wo"], t[p + ".self_attn.bo"])
        self.ffn = Ffn(t, p + ".ffn", p + ".ln2", c["pre_norm"])

    def self_attn(self, u, mask):
        B, S, C = u.shape
        # Fused projection: columns [q | k | v], head h takes D columns of each.
        qkv = self.qkv(u).view(B, S, 3, self.H, C // self.H).permute(2, 0, 3, 1, 4)
        o = attend(qkv[0], qkv[1], qkv[2], mask)
        return self.wo(o.transpose(1, 2).reshape(B, S, C))

    def forward(self, x, mask):
        x = self.attn.run(x, lambda u: self.self_attn(u, mask))
        return self.ffn(x)


class DecoderLayer(nn.Module):
    def __init__(self, t, l, c):
        super().__init__()
        p = f"dec.{l}"
        self.H = c["heads"]
        self.self_sub = Sublayer(Norm(t, p + ".ln1"), c["pre_norm"])
        self.qkv = linear_from(t[p + ".self_attn.wqkv"], t[p + ".self_attn.bqkv"])
        self.wo = linear_from(t[p + ".self_attn.wo"], t[p + ".self_attn.bo"])
        self.cross_sub = Sublayer(Norm(t, p + ".ln2"), c["pre_norm"])
        self.cq = linear_from(t[p + ".cross_attn.wq"], t[p + ".cross_attn.bq"])
        self.ckv = linear_from(t[p + ".cross_attn.wkv"], t[p + ".cross_attn.bkv"])
        self.co = linear_from(t[p + ".cross_attn.wo"], t[p + ".cross_attn.bo"])
        self.ffn = Ffn(t, p + ".ffn", p + ".ln3", c["pre_norm"])

    def cross_kv(self, enc):
        """The source keys and values, once per batch: (B, H, S, D) each."""
        B, S, C = enc.shape
        kv = self.ckv(enc).view(B, S, 2, self.H, C // self.H).permute(2, 0, 3, 1, 4)
        return kv[0].contiguous(), kv[1].contiguous()

    def self_attn(self, u, cache, t):
        """One new position per row: its key and value go into the cache at t,
        and it attends over positions 0..t (all of them precede it)."""
        R, C = u.shape
        qkv = self.qkv(u).view(R, 3, self.H, C // self.H)
        kc, vc = cache
        kc[:, :, t] = qkv[:, 1]
        vc[:, :, t] = qkv[:, 2]
        o = attend(qkv[:, 0].unsqueeze(2), kc[:, :, :t + 1], vc[:, :, :t + 1], None)
        return self.wo(o.reshape(R, C))

    def cross_attn(self, u, src_kv, src_mask):
        # The K rows of one sentence share its source: they are the query
        # positions of one attention over it, (B, H, K, D) x (B, H, S, D).
        R, C = u.shape
        B = src_kv[0].shape[0]
        q = self.cq(u).view(B, R // B, self.H, C // self.H).transpose(1, 2)
        o = attend(q, src_kv[0], src_kv[1], src_mask)
        return self.co(o.transpose(1, 2).reshape(R, C))

    def forward(self, x, cache, t, src_kv, src_mask):
        x = self.self_sub.run(x, lambda u: self.self_attn(u, cache, t))
        x = self.cross_sub.run(x, lambda u: self.cross_attn(u, src_kv, src_mask))
        return self.ffn(x)


class Transformer(nn.Module):
    def __init__(self, c, t):
        super().__init__()
        self.c = c
        C = c["d_model"]
        self.scale = math.sqrt(C)
        self.src_emb = nn.Parameter(t["src_emb"].clone())
        self.tgt_emb = self.src_emb if c["shared_vocab"] else nn.Parameter(t["tgt_emb"].clone())
        # The output projection (V, C) as an nn.Linear, so that quantize_dynamic
        # covers it as it covers the other products; tied, it shares the
        # target embedding's storage (the quantized copy is the Linear's own).
        V = self.tgt_emb.shape[0]
        self.out_proj = nn.Linear(C, V, bias=False)
        if c["tie_output"]:
            self.out_proj.weight = self.tgt_emb
        else:
            with torch.no_grad():
                self.out_proj.weight.copy_(t["out_proj"])
        self.enc = nn.ModuleList(EncoderLayer(t, l, c) for l in range(c["enc_layers"]))
        self.dec = nn.ModuleList(DecoderLayer(t, l, c) for l in range(c["dec_layers"]))
        self.enc_final = Norm(t, "enc.ln_final") if c["pre_norm"] else None
        self.dec_final = Norm(t, "dec.ln_final") if c["pre_norm"] else None
        self.register_buffer("pe", positions_table(c["max_len"], C))

    def encode(self, src, src_len):
        """src (B, S) ids padded with PAD, src_len (B) with EOS. Returns every
        decoder layer's cross keys/values and the key mask (B, 1, 1, S)."""
        B, S = src.shape
        x = F.embedding(src, self.src_emb) * self.scale + self.pe[:S]
        mask = (torch.arange(S)[None, :] >= src_len[:, None]).view(B, 1, 1, S)
        for layer in self.enc:
            x = layer(x, mask)
        if self.enc_final is not None:
            x = self.enc_final(x)
        return [layer.cross_kv(x) for layer in self.dec], mask

    def step(self, tokens, t, caches, src_kv, src_mask):
        """Logits (R, V) of the position after `tokens` (R), fed at position t."""
        x = F.embedding(tokens, self.tgt_emb) * self.scale + self.pe[t]
        for layer, cache, kv in zip(self.dec, caches, src_kv):
            x = layer(x, cache, t, kv, src_mask)
        if self.dec_final is not None:
            x = self.dec_final(x)
        return self.out_proj(x)


# ---------------------------------------------------------------- search

class Hyp:
    __slots__ = ("ids", "logprob", "score", "eos")

    def __init__(self, ids, logprob, score, eos):
        self.ids, self.logprob, self.score, self.eos = ids, logprob, score, eos


def length_penalty(alpha, n):
    return 1.0 if alpha == 0 else ((5.0 + n) / 6.0) ** alpha


class Decoder:
    def __init__(self, model, opts):
        self.m, self.o = model, opts
        c = model.c
        self.limit = c["max_len"] - 2
        self.H, self.D = c["heads"], c["d_model"] // c["heads"]

    def max_out_len(self, src_len):
        """a * source length (without EOS) + b, within [1, max_len - 2], floored."""
        n = self.o.max_len_a * src_len + self.o.max_len_b
        return int(min(max(n, 1), self.limit))

    def begin(self, srcs, K):
        """Encodes a batch; returns the per-layer caches, cross keys/values,
        mask, and each sentence's output cap."""
        nb = len(srcs)
        S = max(len(s) for s in srcs) + 1
        src = torch.full((nb, S), PAD, dtype=torch.long)
        for i, s in enumerate(srcs):
            src[i, :len(s)] = torch.tensor(s, dtype=torch.long)
            src[i, len(s)] = EOS
        src_len = torch.tensor([len(s) + 1 for s in srcs])
        src_kv, mask = self.m.encode(src, src_len)
        caps = [self.max_out_len(len(s)) for s in srcs]
        T = max(caps) + 1
        R = nb * K
        caches = [(torch.empty(R, self.H, T, self.D), torch.empty(R, self.H, T, self.D)) for _ in self.m.dec]
        return caches, src_kv, mask, caps

    def greedy(self, srcs):
        """Beam 1 exactly as src/decode.c runs it: every row steps until the
        whole batch is done; the best token among ids >= EOS (never pad, unk or
        bos; ties to the lowest id); a sentence ends at EOS or at its cap."""
        caches, src_kv, mask, caps = self.begin(srcs, 1)
        nb = len(srcs)
        cap = torch.tensor(caps)
        out = torch.zeros(nb, max(caps), dtype=torch.long)
        length = torch.zeros(nb, dtype=torch.long)
        done = torch.zeros(nb, dtype=torch.bool)
        tokens = torch.full((nb,), BOS, dtype=torch.long)
        for t in range(max(caps)):
            logits = self.m.step(tokens, t, caches, src_kv, mask)
            tok = logits[:, EOS:].argmax(dim=1) + EOS
            out[:, t] = tok
            eos = tok == EOS
            end = ~done & (eos | (t + 1 >= cap))
            length = torch.where(end, t + (~eos).long(), length)
            done |= end
            if bool(done.all()):
                break
            tokens = torch.where(done, torch.full_like(tok, PAD), tok)
        return [out[i, :length[i]].tolist() for i in range(nb)]

    def beam(self, srcs):
        """src/decode.c's beam search: K rows per sentence, its live hypotheses
        first; each step every row's best K continuations (log-probabilities
        over the whole vocabulary, candidates ids >= EOS), of which the sentence
        keeps its best K - finished; EOS or the cap finishes a candidate; a
        sentence stops when no live one can beat its best finished one."""
        K, alpha = self.o.beam, self.o.alpha
        caches, src_kv, mask, caps = self.begin(srcs, K)
        nb = len(srcs)
        R = nb * K
        live = [1] * nb
        fin = [[] for _ in range(nb)]
        hist = [[] for _ in range(R)]
        score = torch.zeros(R, dtype=torch.float64)
        tokens = torch.full((R,), BOS, dtype=torch.long)
        row_live = torch.zeros(R, dtype=torch.bool)
        row_live[0::K] = True
        for t in range(max(caps) + 1):
            if not any(live):
                break
            logits = self.m.step(tokens, t, caches, src_kv, mask)
            lp = logits[:, EOS:] - torch.logsumexp(logits, dim=1, keepdim=True)
            top_lp, top_tok = lp.topk(K, dim=1)
            cand = score[:, None] + top_lp.double()
            cand.masked_fill_(~row_live[:, None], float("-inf"))
            best, flat = cand.view(nb, K * K).topk(K, dim=1)
            rows = (torch.arange(nb)[:, None] * K + flat // K)
            toks = top_tok.view(nb, K * K).gather(1, flat) + EOS
            best, rows, toks = best.tolist(), rows.tolist(), toks.tolist()
            frm = list(range(R))
            new_tokens = [PAD] * R
            new_score = score.tolist()
            for i in range(nb):
                if not live[i]:
                    continue
                k = K - len(fin[i])
                cap = caps[i]
                cands = []
                for c in range(k):
                    s, r, v = best[i][c], rows[i][c], toks[i][c]
                    if s == float("-inf"):
                        break
                    if v == EOS or len(hist[r]) + 1 >= cap:
                        ids = hist[r] + ([] if v == EOS else [v])
                        fin[i].append(Hyp(ids, s, s / length_penalty(alpha, len(ids) + (v == EOS)), v == EOS))
                    else:
                        cands.append((s, r, v))
                # Log-probabilities only fall and the penalty is largest at the
                # cap: no live hypothesis can do better than this bound.
                best_fin = max((h.score for h in fin[i]), default=float("-inf"))
                bound = max((s / length_penalty(alpha, cap + 1) for s, _, _ in cands), default=float("-inf"))
                if len(fin[i]) >= NBEST and best_fin >= bound:
                    cands = []
                for c, (s, r, v) in enumerate(cands):
                    frm[i * K + c] = r
                    new_score[i * K + c] = s
                    new_tokens[i * K + c] = v
                live[i] = len(cands)
            # Histories, scores and cached keys/values follow the chosen parents.
            hist = [hist[frm[r]] + [new_tokens[r]] if r % K < live[r // K] else [] for r in range(R)]
            score = torch.tensor(new_score, dtype=torch.float64)
            tokens = torch.tensor(new_tokens, dtype=torch.long)
            row_live = torch.tensor([r % K < live[r // K] for r in range(R)])
            if frm != list(range(R)):
                idx = torch.tensor(frm)
                for kc, vc in caches:
                    kc[:, :, :t + 1] = kc[idx, :, :t + 1]
                    vc[:, :, :t + 1] = vc[idx, :, :t + 1]
        result = []
        for i in range(nb):
            # Best first: score, then the shorter; earlier finished on full ties.
            f = sorted(fin[i], key=lambda h: (-h.score, len(h.ids)))
            result.append(f[0].ids if f else [])
        return result

    def batch(self, srcs):
        return self.greedy(srcs) if self.o.beam == 1 else self.beam(srcs)


# ---------------------------------------------------------------- main

def read_lines(path):
    """src/data.c read_lines: split at LF, one trailing CR dropped, no line
    after a final LF."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            fail(f"{path}:{n}: invalid UTF-8")
    return out


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference decoder for nmt checkpoints (a benchmark).")
    ap.add_argument("--checkpoint", required=True, help="an nmt float checkpoint")
    ap.add_argument("--input", required=True, help="source sentences, one per line")
    ap.add_argument("--output", help="write the translations here")
    ap.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy (default 1)")
    ap.add_argument("--batch", type=int, default=32, help="sentences decoded together (default 32)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default OMP_NUM_THREADS, else 1)")
    ap.add_argument("--quantize", action="store_true", help="torch dynamic int8 quantization of every nn.Linear")
    ap.add_argument("--qengine", help="quantized engine for --quantize (default: the first of fbgemm, onednn, "
                    "qnnpack this PyTorch has)")
    ap.add_argument("--alpha", type=float, default=0.6, help="length penalty ((5+len)/6)^A (default 0.6)")
    ap.add_argument("--max-len-a", type=float, default=1.5, help="output length limit A * source length + B")
    ap.add_argument("--max-len-b", type=int, default=10, help="the B of --max-len-a (default 10)")
    ap.add_argument("--check-against", metavar="FILE", help="report how many output lines equal FILE's")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    a = ap.parse_args()
    if a.beam < 1 or a.batch < 1:
        fail("--beam and --batch must be at least 1")
    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    torch.set_num_threads(threads)

    sections = read_sections(a.checkpoint)
    cfg = json.loads(bytes(sections["config"]).decode())
    c = model_config(cfg)
    tok = read_tokenizer(sections["tokenizer"])
    model = Transformer(c, read_tensors(sections)).eval()
    del sections
    sv, tv = tok.vocab_size()
    if model.src_emb.shape[0] != sv or model.out_proj.weight.shape[0] != tv:
        fail("tokenizer and tensor table disagree on the vocabulary sizes")
    if a.beam > tv - EOS:
        fail(f"--beam {a.beam} exceeds the {tv - EOS} tokens a hypothesis can continue with")
    engine = None
    if a.quantize:
        # fbgemm is PyTorch's usual x86 engine, but Debian's 1.13 is built
        # without it; onednn is its x86 successor (and much faster here than
        # qnnpack, which is made for ARM).
        have = torch.backends.quantized.supported_engines
        engine = a.qengine or next((e for e in ("fbgemm", "onednn", "qnnpack") if e in have), None)
        if engine not in have:
            fail(f"quantized engine {engine} is not in this PyTorch (it has {have})")
        torch.backends.quantized.engine = engine
        model = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)

    lines = read_lines(a.input)
    srcs = []
    for n, line in enumerate(lines, 1):
        ids = tok.encode(line)
        if c["max_src_len"] and len(ids) > c["max_src_len"]:
            print(f"bench_translate_torch.py: warning: {a.input}:{n}: more than data.max_src_len "
                  f"({c['max_src_len']}) tokens, truncated", file=sys.stderr)
            ids = ids[:c["max_src_len"]]
        srcs.append(ids)
    batches = [srcs[i:i + a.batch] for i in range(0, len(srcs), a.batch)]

    dec = Decoder(model, a)
    outs = []
    with torch.inference_mode():
        if batches:
            dec.batch(batches[0])  # warm-up: first-call allocations and kernel setup
        t0 = time.perf_counter()
        for b in batches:
            outs.extend(dec.batch(b))
        seconds = time.perf_counter() - t0

    # Empty input lines give empty output lines (src/translate.c).
    texts = [tok.decode(ids) if src else "" for ids, src in zip(outs, srcs)]
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.writelines(t + "\n" for t in texts)
    summary = {"impl": "torch", "quantized": a.quantize, "engine": engine, "beam": a.beam, "batch": a.batch,
               "threads": threads, "sentences": len(texts), "seconds": round(seconds, 4),
               "sent_per_s": round(len(texts) / seconds, 2) if seconds > 0 else None,
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if a.check_against:
        ref = read_lines(a.check_against)
        same = sum(1 for x, y in zip(texts, ref) if x == y)
        diff = [i + 1 for i in range(max(len(texts), len(ref)))
                if i >= len(texts) or i >= len(ref) or texts[i] != ref[i]]
        print(f"check: {same} of {len(texts)} lines equal {a.check_against} ({len(ref)} lines)"
              + (f"; first differing lines: {diff[:10]}" if diff else ""), file=sys.stderr)
        summary.update(check_equal=same, check_lines=len(ref))
    if a.json:
        print(json.dumps(summary))
    else:
        q = f", int8 dynamic ({engine})" if a.quantize else ""
        print(f"torch: {len(texts)} sentences in {seconds:.2f} s ({summary['sent_per_s']} sentences/s), "
              f"beam {a.beam}, batch {a.batch}, {threads} threads{q}, peak RSS {summary['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
