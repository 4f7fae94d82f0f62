#!/usr/bin/python3
"""nmt's model in PyTorch, with its readers and tokenizers: one module that
scripts/bench_torch.py and scripts/bench_translate_torch.py import too. Run
as a script, it loads a model written by `nmt export` (safetensors) and scores
translations with it as `nmt score` does.

The exported file holds fairseq-named float32 tensors (linear weights (out,
in)) and, in its metadata, nmt's config (`nmt.config`, JSON) and tokenizer
(`nmt.tokenizer`). `Transformer` below has exactly those parameter names, so
the weights go in with `load_state_dict`; its forward pass is nmt's
(src/kernels/ops.c, src/model/layer.c, src/model/stacks.c): post- or
pre-norm, sinusoidal or relative positions, local attention windows, tied or
untied output, shared or separate vocabularies; dropout in training mode.

    import sys; sys.path.insert(0, "scripts")
    import torch, nmt_torch
    model, config, tok = nmt_torch.load("model.safetensors")   # an nn.Module in eval mode
    src = [tok.encode("ein Hund läuft .", "src")]                # ids, no EOS
    tgt = [tok.encode("a dog runs .", "tgt")]
    print(nmt_torch.score(model, src, tgt))   # [log p(tgt | src)]: tokens and EOS, natural log
    args, gold = nmt_torch.batch(src, tgt)    # padded ids, lengths; the ids each position predicts
    with torch.no_grad():
        logits = model(*args)                 # (B, T, target vocab)

    # The raw file: name -> tensor (tied tensors are stored once, so
    # decoder.embed_tokens / decoder.output_projection may be absent) and the
    # metadata (json.loads(meta["nmt.config"])["model"]["d_model"], ...).
    tensors, meta = nmt_torch.read_safetensors("model.safetensors")

    # An nmt float checkpoint, in nmt's fused layout (one product for q, k, v),
    # and decoding with a key/value cache: model.encode, then model.step.
    model, config, tok = nmt_torch.load_checkpoint("checkpoints/toy/last.ckpt")

The fused layout (Transformer(..., fused=True)) is nmt's own: self-attention
projects q, k and v with one matrix (qkv_proj, as nmt's wqkv), cross-attention
q with one (q_proj) and k, v with another (kv_proj, as wkv). The benchmarks
use it so that PyTorch runs the products nmt runs.

usage: /usr/bin/python3 scripts/nmt_torch.py --model M.safetensors --src S --tgt T [--normalize] [--batch N]
prints one line per pair: the natural-log probability of line i of T given line i of S,
summed over its tokens and EOS ("%.6f"; --normalize: divided by that number of tokens).
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import zlib

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when libgomp loads (with torch)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PAD, UNK, BOS, EOS, SPECIALS = 0, 1, 2, 3, 4
SPECIAL_NAMES = ["<pad>", "<unk>", "<s>", "</s>"]
LN_EPS = 1e-5  # src/kernels/ops.c


class FormatError(ValueError):
    """A file that is not what it should be (the CLIs exit 2 with the message)."""


# ---------------------------------------------------------------- files

def read_safetensors(path):
    """(name -> float32 tensor, metadata dict) of a safetensors file."""
    with open(path, "rb") as f:
        data = bytearray(f.read())  # writable: torch.frombuffer wants that
    n = struct.unpack_from("<Q", data)[0] if len(data) >= 8 else -1
    if n < 0 or n > len(data) - 8:
        raise FormatError(f"{path}: not a safetensors file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError(f"{path}: not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: not a safetensors file (the header is not a JSON object)")
    meta, body, tensors = header.pop("__metadata__", {}), memoryview(data)[8 + n:], {}
    for name, e in header.items():
        try:
            (b, end), shape = e["data_offsets"], [int(x) for x in e["shape"]]
            ok = e["dtype"] == "F32" and 0 <= b <= end <= len(body) and end - b == 4 * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise FormatError(f"{path}: tensor '{name}': not float32 data of its shape inside the file")
        tensors[name] = torch.frombuffer(body[b:end], dtype=torch.float32).clone().view(shape) if end > b \
            else torch.zeros(shape)
    return tensors, meta


CKPT_NEEDED = ("config", "tokenizer", "tensors", "params")


def read_checkpoint_sections(path):
    """The sections decoding needs (src/io/ckptfile.h), name -> bytes, after the
    header and CRC checks ckpt_open makes (a damaged file should fail here, not
    give a plausible-looking result). Only those sections are read: a training
    checkpoint's optimizer state would double the memory high-water mark."""
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) < 32 or head[:8] != b"NMTCKPT\0":
            raise FormatError(f"{path}: not an nmt checkpoint")
        version, bom, count, hcrc, size = struct.unpack_from("<IIIIQ", head, 8)
        if version != 1:
            raise FormatError(f"{path}: checkpoint format version {version}, this script reads 1")
        if bom != 0x01020304:
            raise FormatError(f"{path}: written on a machine of the other byte order")
        if size != os.fstat(f.fileno()).st_size:
            raise FormatError(f"{path}: truncated or malformed (header says {size} bytes)")
        table = f.read(56 * count)
        header = bytearray(head + table)
        header[20:24] = b"\0\0\0\0"
        if len(table) != 56 * count or zlib.crc32(header) != hcrc:
            raise FormatError(f"{path}: header checksum mismatch")
        entries = {}
        for i in range(count):
            name, off, n, crc, _ = struct.unpack_from("<32sQQII", table, 56 * i)
            entries[name.rstrip(b"\0").decode("ascii")] = (off, n, crc)
        sections = {}
        for name in CKPT_NEEDED:
            if name not in entries:
                what = " (an int8 checkpoint? this script reads float ones)" if "qweights" in entries else ""
                raise FormatError(f"{path}: no '{name}' section{what}")
            off, n, crc = entries[name]
            f.seek(off)
            data = bytearray(n)
            if f.readinto(data) != n or zlib.crc32(data) != crc:
                raise FormatError(f"{path}: section '{name}' is damaged")
            sections[name] = data
    return sections


def read_checkpoint_tensors(sections):
    """name -> float32 tensor of its (rows, cols) shape, from the tensor table
    and the params payload (offsets count floats). nmt's names and layout:
    linear weights (in, out)."""
    params = torch.frombuffer(sections["params"], dtype=torch.float32)
    out = {}
    for line in bytes(sections["tensors"]).decode().splitlines():
        if not line.strip():
            continue
        name, rows, cols, off, _decay = line.split()
        rows, cols, off = int(rows), int(cols), int(off)
        out[name] = params[off:off + rows * cols].view(rows, cols)
    return out


def read_lines(path):
    """src/data/corpus.c: lines split at LF, one trailing CR dropped; UTF-8 checked."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        raise FormatError(f"{path}: contains a NUL byte (not a text file?)")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append((line[:-1] if line.endswith(b"\r") else line).decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError(f"{path}:{n}: invalid UTF-8") from None
    return out


def model_config(cfg):
    """cfg's "model" object with src/common/config.c's defaults for the keys
    the model reads (a config file may leave them out; `nmt export` writes all)."""
    m = dict(cfg.get("model", {}))
    for k, v in (("d_model", 512), ("heads", 8), ("d_ff", 2048), ("encoder_layers", 6), ("decoder_layers", 6),
                 ("norm", "post"), ("tie_output", True), ("shared_vocab", False), ("dropout", 0.1),
                 ("attention_dropout", 0.0), ("ffn_dropout", 0.0), ("positions", "sinusoidal"),
                 ("max_relative_position", 16), ("attention_window", 0)):
        m.setdefault(k, v)
    return m


def max_positions(cfg):
    """Positions for the longest sentence the config admits (+ BOS/EOS), never
    fewer than 1024 (src/model/shape.c); decoding stops 2 short of it."""
    d = cfg.get("data", {})
    return max(max(d.get("max_src_len", 100), d.get("max_tgt_len", 100)) + 2, 1024)


# ---------------------------------------------------------------- tokenizers

def utf8_replace(raw):
    """bytes -> str the way src/text/bpe.c's decode does it: every byte that does not
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
    """src/text/vocab.c: words are runs of anything but space, tab, CR and LF;
    unknown words are <unk>, which decoding shows; other specials are skipped."""
    SPLIT = re.compile(r"[ \t\r\n]+")

    def __init__(self, src_words, tgt_words):
        self.src = {w: i for i, w in enumerate(src_words)}
        self.tgt_words = tgt_words
        self.tgt = None  # the target side's ids, made when first asked for

    def encode(self, line, side="src"):
        """ids of a source line (side "tgt": of a target line), no EOS."""
        if side == "tgt" and self.tgt is None:
            self.tgt = {w: i for i, w in enumerate(self.tgt_words)}
        ids = self.tgt if side == "tgt" else self.src
        return [ids.get(w, UNK) for w in self.SPLIT.split(line) if w]

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
    """src/text/bpe.c's character classes: runs of one class form a piece."""
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
    """nmt's BPE (src/text/bpe.c), rebuilt from the model text of the tokenizer
    section: ids 0..3 specials, 4..259 bytes, then the learned characters,
    then merge results in merge order (a result spelled like an existing
    learned token reuses its id)."""

    def __init__(self, text):
        lines = text.split("\n")
        if lines[0] != "nmt-bpe 1":
            raise FormatError("tokenizer: not an nmt BPE model")
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
            raise FormatError(f"tokenizer: BPE model defines {len(self.tok)} tokens, declares {size}")
        self.cache = {}

    def vocab_size(self):
        return len(self.tok), len(self.tok)

    def pieces(self, line):
        """src/text/bpe.c pretokenize(): (text, marker, raw) pieces; a dummy space
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
        is left (what src/text/bpe.c's heap does); unlearned characters are bytes."""
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

    def encode(self, line, side="src"):
        """ids of a line, no EOS (both sides share the model)."""
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
    """The tokenizer (WordTokenizer or BpeTokenizer) of a checkpoint's tokenizer
    section or of the metadata `nmt export` writes (the same text)."""
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
    """src/kernels/ops.c: sin and cos interleaved (even and odd columns), in
    double, rounded to float."""
    t = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)
    angle = t / torch.pow(10000.0, i / C)
    pe = torch.zeros(max_len, C, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)[:, :C // 2]
    return pe.float()


class Attention(nn.Module):
    """Multi-head attention, fairseq's names (or nmt's fused layout), nmt's
    arithmetic: scores q.k/sqrt(D); with relative positions (Shaw et al. 2018;
    self-attention only) each score also gains q_i . rel_k[r] / sqrt(D) and each
    output sum_j p_ij rel_v[r], r = clip(j - i, -k, k) + k, the tables shared by
    the heads; a window (self-attention) hides keys farther than W away."""

    def __init__(self, C, H, cross=False, fused=False, rel=0, window=0, p_drop=0.0):
        super().__init__()
        self.H, self.cross, self.fused, self.rel, self.window, self.p_drop = H, cross, fused, rel, window, p_drop
        if not fused:
            self.q_proj, self.k_proj, self.v_proj = (nn.Linear(C, C) for _ in range(3))
        elif cross:
            self.q_proj, self.kv_proj = nn.Linear(C, C), nn.Linear(C, 2 * C)
        else:
            self.qkv_proj = nn.Linear(C, 3 * C)
        self.out_proj = nn.Linear(C, C)
        if rel:
            self.relative_keys = nn.Embedding(2 * rel + 1, C // H)
            self.relative_values = nn.Embedding(2 * rel + 1, C // H)

    def heads(self, x):
        """(B, T, C) -> (B, H, T, D), a view."""
        B, T, C = x.shape
        return x.view(B, T, self.H, C // self.H).transpose(1, 2)

    def project(self, x, mem):
        """q of the queries x, k and v of mem, each (B, H, T, D)."""
        if not self.fused:
            return self.heads(self.q_proj(x)), self.heads(self.k_proj(mem)), self.heads(self.v_proj(mem))
        if self.cross:
            k, v = self.kv_proj(mem).chunk(2, -1)
            return self.heads(self.q_proj(x)), self.heads(k), self.heads(v)
        return tuple(self.heads(u) for u in self.qkv_proj(x).chunk(3, -1))

    def rel_index(self, qpos, kpos):
        """r = clip(j - i, -k, k) + k for queries at qpos, keys at kpos; None without relative positions."""
        return (kpos[None, :] - qpos[:, None]).clamp(-self.rel, self.rel) + self.rel if self.rel else None

    def attend(self, q, k, v, hide, r):
        """q (..., Tq, D), k/v (..., Tk, D); hide broadcastable to the scores
        (True = unseen) or None; r the relative index (Tq, Tk) or None. Plain
        matmul on purpose: it is what a PyTorch user writes. (In decoding this
        PyTorch runs it as one small BLAS product per row and head, a third of
        greedy decoding's time; a broadcast multiply-and-sum was faster for 32
        rows, slower for 128.)"""
        s = q @ k.transpose(-1, -2)
        if r is not None:
            s = s + torch.einsum("bhid,ijd->bhij", q, self.relative_keys.weight[r])
        # The fused layout multiplies by 1/sqrt(D) (nmt's kernels, and the
        # benchmarks always have); fairseq's divides (as this script always has):
        # in float the two can differ in the last bit.
        s = s * (1.0 / math.sqrt(q.shape[-1])) if self.fused else s / math.sqrt(q.shape[-1])
        if hide is not None:
            s = s.masked_fill(hide, float("-inf"))
        p = torch.softmax(s, -1)
        if self.window and hide is not None:
            # A query that sees no key (padding past a window) gets all-zero weights, as in nmt.
            p = p.masked_fill(hide, 0.0)
        if self.training and self.p_drop > 0:
            p = F.dropout(p, self.p_drop, True)
        o = p @ v
        if r is not None:
            o = o + torch.einsum("bhij,ijd->bhid", p, self.relative_values.weight[r])
        return o

    def forward(self, x, mem, hide):
        """x (B, Tq, C) queries, mem (B, Tk, C) keys/values, hide (B, Tq, Tk) True = unseen."""
        (B, Tq, C), Tk = x.shape, mem.shape[1]
        q, k, v = self.project(x, mem)
        o = self.attend(q, k, v, hide[:, None], self.rel_index(torch.arange(Tq), torch.arange(Tk)))
        return self.out_proj(o.transpose(1, 2).reshape(B, Tq, C))

    def step(self, u, cache, t):
        """Self-attention of one new position per row, u (R, C) fed at position
        t: its key and value go into the cache (a (R, H, T, D) pair) at t, and
        it attends over the positions before it and itself (within the window)."""
        R, C = u.shape
        if self.fused:
            q, k, v = self.qkv_proj(u).view(R, 3, self.H, C // self.H).unbind(1)
        else:
            q, k, v = (p(u).view(R, self.H, C // self.H) for p in (self.q_proj, self.k_proj, self.v_proj))
        kc, vc = cache
        kc[:, :, t] = k
        vc[:, :, t] = v
        lo = max(0, t - self.window) if self.window else 0
        r = self.rel_index(torch.tensor([t]), torch.arange(lo, t + 1)) if self.rel else None
        o = self.attend(q.unsqueeze(2), kc[:, :, lo:t + 1], vc[:, :, lo:t + 1], None, r)
        return self.out_proj(o.reshape(R, C))

    def cross_kv(self, mem):
        """Cross-attention's source keys and values, once per batch: (B, H, S, D) each."""
        B, S, C = mem.shape
        if not self.fused:
            return self.heads(self.k_proj(mem)).contiguous(), self.heads(self.v_proj(mem)).contiguous()
        kv = self.kv_proj(mem).view(B, S, 2, self.H, C // self.H).permute(2, 0, 3, 1, 4)
        return kv[0].contiguous(), kv[1].contiguous()

    def cross_step(self, u, kv, hide):
        """Cross-attention of u (R, C), R = B x K rows: the K rows of one
        sentence share its source, so they are the query positions of one
        attention over it, (B, H, K, D) x (B, H, S, D)."""
        R, C = u.shape
        B = kv[0].shape[0]
        q = self.q_proj(u).view(B, R // B, self.H, C // self.H).transpose(1, 2)
        o = self.attend(q, kv[0], kv[1], hide, None)
        return self.out_proj(o.transpose(1, 2).reshape(R, C))


class Layer(nn.Module):
    """One encoder layer (self_attn, fc1/fc2) or decoder layer (+ encoder_attn).
    Every sublayer F: post-norm y = LN(x + drop(F(x))), pre-norm y = x + drop(F(LN(x)))."""

    def __init__(self, c, decoder, fused=False):
        super().__init__()
        C, H, pa = c["d_model"], c["heads"], c["attention_dropout"]
        self.pre_norm, self.p, self.p_ffn = c["norm"] == "pre", c["dropout"], c["ffn_dropout"]
        rel = c["max_relative_position"] if c["positions"] == "relative" else 0
        self.self_attn = Attention(C, H, False, fused, rel, c["attention_window"], pa)
        self.self_attn_layer_norm = nn.LayerNorm(C, eps=LN_EPS)
        if decoder:
            self.encoder_attn = Attention(C, H, True, fused, p_drop=pa)
            self.encoder_attn_layer_norm = nn.LayerNorm(C, eps=LN_EPS)
        self.fc1, self.fc2 = nn.Linear(C, c["d_ff"]), nn.Linear(c["d_ff"], C)
        self.final_layer_norm = nn.LayerNorm(C, eps=LN_EPS)

    def drop(self, x, p):
        return F.dropout(x, p, True) if self.training and p > 0 else x

    def sub(self, x, norm, fn):
        return x + self.drop(fn(norm(x)), self.p) if self.pre_norm else norm(x + self.drop(fn(x), self.p))

    def ffn(self, u):
        return self.fc2(self.drop(F.relu(self.fc1(u)), self.p_ffn))

    def forward(self, x, hide, mem=None, mem_hide=None):
        x = self.sub(x, self.self_attn_layer_norm, lambda u: self.self_attn(u, u, hide))
        if mem is not None:
            x = self.sub(x, self.encoder_attn_layer_norm, lambda u: self.encoder_attn(u, mem, mem_hide))
        return self.sub(x, self.final_layer_norm, self.ffn)

    def step(self, x, cache, t, src_kv, src_hide):
        """A decoder layer for one new position per row (see Attention.step)."""
        x = self.sub(x, self.self_attn_layer_norm, lambda u: self.self_attn.step(u, cache, t))
        x = self.sub(x, self.encoder_attn_layer_norm, lambda u: self.encoder_attn.cross_step(u, src_kv, src_hide))
        return self.sub(x, self.final_layer_norm, self.ffn)


class Stack(nn.Module):
    """One side: embed_tokens, layers, (pre-norm) the final layer_norm, and on
    the decoder output_projection. Transformer fills it in."""

    def __init__(self, embed):
        super().__init__()
        self.embed_tokens = embed


class Transformer(nn.Module):
    """nmt's model with fairseq's parameter names; `c` is the config's "model"
    object (model_config: with nmt's defaults). fused: nmt's fused layout
    (see the module's doc). max_len: rows of the position table kept (longer
    inputs get a table of their own). nmt_init: src/model/model.c's
    initialisation, drawn from torch's generator (embeddings uniform with std
    d^-0.5, then the untied output projection and, once every layer exists,
    the linear weights Glorot-uniform with nmt's fans, biases zero)."""

    def __init__(self, c, src_vocab, tgt_vocab, fused=False, max_len=1024, nmt_init=False):
        super().__init__()
        self.c, self.max_len, C = c, max_len, c["d_model"]
        src = nn.Embedding(src_vocab, C)
        self.encoder = Stack(src)
        self.decoder = Stack(src if c["shared_vocab"] else nn.Embedding(tgt_vocab, C))
        if c["tie_output"]:  # no values of its own: skip_init draws nothing
            self.decoder.output_projection = nn.utils.skip_init(nn.Linear, C, tgt_vocab, bias=False)
            self.decoder.output_projection.weight = self.decoder.embed_tokens.weight
        else:
            self.decoder.output_projection = nn.Linear(C, tgt_vocab, bias=False)
        if nmt_init:
            self.init_embeddings()
        for stack, decoder in ((self.encoder, False), (self.decoder, True)):
            n = c["decoder_layers" if decoder else "encoder_layers"]
            stack.layers = nn.ModuleList(Layer(c, decoder, fused) for _ in range(n))
            if c["norm"] == "pre":
                stack.layer_norm = nn.LayerNorm(C, eps=LN_EPS)
        if nmt_init:
            self.init_linears()
        if c["positions"] == "sinusoidal":
            self.register_buffer("pe", positions_table(max_len, C), persistent=False)

    def init_embeddings(self):
        C, out = self.c["d_model"], self.decoder.output_projection
        for e in dict.fromkeys([self.encoder.embed_tokens, self.decoder.embed_tokens]):  # ordered: same draws
            nn.init.uniform_(e.weight, -math.sqrt(3.0 / C), math.sqrt(3.0 / C))
        if not self.c["tie_output"]:
            b = math.sqrt(6.0 / (C + out.weight.shape[0]))
            nn.init.uniform_(out.weight, -b, b)

    def init_linears(self):
        C = self.c["d_model"]
        for mod in self.modules():
            if isinstance(mod, nn.Linear) and mod is not self.decoder.output_projection:
                fan_in, fan_out = mod.in_features, mod.out_features
                if fan_in == C and fan_out != self.c["d_ff"]:
                    fan_out = C  # qkv_proj, kv_proj and the other (C, k*C): fan_out C
                b = math.sqrt(6.0 / (fan_in + fan_out))
                nn.init.uniform_(mod.weight, -b, b)
                nn.init.zeros_(mod.bias)

    def self_hide(self, length, T, causal):
        """(B, T, T) keys a query may not see: padding, the future, outside the window."""
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        hide = j >= length[:, None, None]
        if causal:
            hide = hide | (j > i)
        W = self.c["attention_window"]
        return hide | ((i - j).abs() > W) if W > 0 else hide

    def embed(self, stack, ids, pos):
        """Embeddings * sqrt(C) (+ the position table's rows pos), dropout in training."""
        C = self.c["d_model"]
        x = stack.embed_tokens(ids) * math.sqrt(C)
        if self.c["positions"] == "sinusoidal":
            T = ids.shape[1] if ids.dim() == 2 else 0  # 0: one position per row (step)
            x = x + (positions_table(T, C) if T > self.max_len else self.pe[pos])
        return F.dropout(x, self.c["dropout"], True) if self.training and self.c["dropout"] > 0 else x

    def run(self, stack, ids, length, causal, mem=None, mem_hide=None):
        x = self.embed(stack, ids, slice(0, ids.shape[1]))
        hide = self.self_hide(length, ids.shape[1], causal)
        for layer in stack.layers:
            x = layer(x, hide, mem, mem_hide)
        return stack.layer_norm(x) if hasattr(stack, "layer_norm") else x

    def forward(self, src, src_len, tgt_in, tgt_len):
        """src (B, S) ids with EOS, PAD-padded; tgt_in (B, T) BOS + target ids;
        lengths (B). Returns the logits (B, T, target vocab)."""
        enc = self.run(self.encoder, src, src_len, False)
        src_hide = (torch.arange(src.shape[1])[None, None, :] >= src_len[:, None, None]).expand(-1, tgt_in.shape[1], -1)
        y = self.run(self.decoder, tgt_in, tgt_len, True, enc, src_hide)
        return self.decoder.output_projection(y)

    def encode(self, src, src_len):
        """For decoding step by step: src (B, S) as forward's. Returns every
        decoder layer's cross keys/values and the key mask (B, 1, 1, S)."""
        B, S = src.shape
        enc = self.run(self.encoder, src, src_len, False)
        hide = (torch.arange(S)[None, :] >= src_len[:, None]).view(B, 1, 1, S)
        return [layer.encoder_attn.cross_kv(enc) for layer in self.decoder.layers], hide

    def step(self, tokens, t, caches, src_kv, src_hide):
        """Logits (R, V) of the position after `tokens` (R), fed at position t;
        caches: a (R, H, T, D) key/value pair per decoder layer."""
        x = self.embed(self.decoder, tokens, t)
        for layer, cache, kv in zip(self.decoder.layers, caches, src_kv):
            x = layer.step(x, cache, t, kv, src_hide)
        if hasattr(self.decoder, "layer_norm"):
            x = self.decoder.layer_norm(x)
        return self.decoder.output_projection(x)


# ---------------------------------------------------------------- loading

# nmt's per-layer tensor names (after "enc.<l>." / "dec.<l>."; the stacks that
# have them: e, d or both) and the fused layout's: 'w' a linear weight, stored
# (in, out), 'v' a vector, 'm' a matrix as stored (src/io/export.c's table).
CKPT_LAYER = (
    ("self_attn.wqkv", "ed", "self_attn.qkv_proj.weight", "w"),
    ("self_attn.bqkv", "ed", "self_attn.qkv_proj.bias", "v"),
    ("self_attn.wo", "ed", "self_attn.out_proj.weight", "w"),
    ("self_attn.bo", "ed", "self_attn.out_proj.bias", "v"),
    ("self_attn.rel_k", "ed", "self_attn.relative_keys.weight", "m"),
    ("self_attn.rel_v", "ed", "self_attn.relative_values.weight", "m"),
    ("cross_attn.wq", "d", "encoder_attn.q_proj.weight", "w"),
    ("cross_attn.bq", "d", "encoder_attn.q_proj.bias", "v"),
    ("cross_attn.wkv", "d", "encoder_attn.kv_proj.weight", "w"),
    ("cross_attn.bkv", "d", "encoder_attn.kv_proj.bias", "v"),
    ("cross_attn.wo", "d", "encoder_attn.out_proj.weight", "w"),
    ("cross_attn.bo", "d", "encoder_attn.out_proj.bias", "v"),
    ("ffn.w1", "ed", "fc1.weight", "w"),
    ("ffn.b1", "ed", "fc1.bias", "v"),
    ("ffn.w2", "ed", "fc2.weight", "w"),
    ("ffn.b2", "ed", "fc2.bias", "v"),
    ("ln1.w", "ed", "self_attn_layer_norm.weight", "v"),
    ("ln1.b", "ed", "self_attn_layer_norm.bias", "v"),
    ("ln2.w", "e", "final_layer_norm.weight", "v"),
    ("ln2.b", "e", "final_layer_norm.bias", "v"),
    ("ln2.w", "d", "encoder_attn_layer_norm.weight", "v"),
    ("ln2.b", "d", "encoder_attn_layer_norm.bias", "v"),
    ("ln3.w", "d", "final_layer_norm.weight", "v"),
    ("ln3.b", "d", "final_layer_norm.bias", "v"),
)
CKPT_WHOLE = (("src_emb", "encoder.embed_tokens.weight"), ("tgt_emb", "decoder.embed_tokens.weight"),
              ("out_proj", "decoder.output_projection.weight"), ("enc.ln_final.w", "encoder.layer_norm.weight"),
              ("enc.ln_final.b", "encoder.layer_norm.bias"), ("dec.ln_final.w", "decoder.layer_norm.weight"),
              ("dec.ln_final.b", "decoder.layer_norm.bias"))


def checkpoint_state(t):
    """nmt's tensors (read_checkpoint_tensors) under the fused layout's names."""
    whole = dict(CKPT_WHOLE)
    layer = {(side, name): (ours, kind) for name, sides, ours, kind in CKPT_LAYER for side in sides}
    state = {}
    for name, x in t.items():
        m = re.fullmatch(r"(enc|dec)\.(\d+)\.(.+)", name)
        if name in whole:
            state[whole[name]] = x.reshape(-1) if ".layer_norm." in whole[name] else x
        elif m and (m.group(1)[0], m.group(3)) in layer:
            ours, kind = layer[m.group(1)[0], m.group(3)]
            key = f"{'encoder' if m.group(1) == 'enc' else 'decoder'}.layers.{m.group(2)}.{ours}"
            state[key] = x.t() if kind == "w" else x.reshape(-1) if kind == "v" else x
        else:
            raise FormatError(f"no name for tensor '{name}'")
    return state


def tie(tensors):
    """Tied tensors are stored once: give the module each name it has."""
    tensors.setdefault("decoder.embed_tokens.weight", tensors["encoder.embed_tokens.weight"])
    tensors.setdefault("decoder.output_projection.weight", tensors["decoder.embed_tokens.weight"])


def load(path):
    """(model in eval mode, the full nmt config dict, tokenizer) of a file `nmt export` wrote."""
    tensors, meta = read_safetensors(path)
    if "nmt.config" not in meta or "nmt.tokenizer" not in meta:
        raise FormatError(f"{path}: no nmt.config and nmt.tokenizer metadata (written by nmt export?)")
    config = json.loads(meta["nmt.config"])
    c, tok = model_config(config), read_tokenizer(meta["nmt.tokenizer"].encode("utf-8"))
    tie(tensors)
    sv, tv = tok.vocab_size()
    if (sv, tv) != (len(tensors["encoder.embed_tokens.weight"]), len(tensors["decoder.output_projection.weight"])):
        raise FormatError(f"{path}: the tokenizer and the embeddings disagree on the vocabulary sizes")
    model = Transformer(c, sv, tv, max_len=max_positions(config))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise FormatError(f"{path}: {e}") from None
    return model.eval(), config, tok


def load_checkpoint(path):
    """(model in eval mode, in the fused layout; the full config dict;
    tokenizer) of an nmt float checkpoint."""
    sections = read_checkpoint_sections(path)
    config = json.loads(bytes(sections["config"]).decode())
    c, tok = model_config(config), read_tokenizer(sections["tokenizer"])
    try:
        state = checkpoint_state(read_checkpoint_tensors(sections))
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None
    tie(state)
    sv, tv = tok.vocab_size()
    if (sv, tv) != (len(state["encoder.embed_tokens.weight"]), len(state["decoder.output_projection.weight"])):
        raise FormatError("tokenizer and tensor table disagree on the vocabulary sizes")
    model = Transformer(c, sv, tv, fused=True, max_len=max_positions(config))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise FormatError(f"{path}: {e}") from None
    return model.eval(), config, tok


# ---------------------------------------------------------------- scoring

def batch(srcs, tgts):
    """A padded batch for Transformer.forward from id lists (no BOS/EOS), and the scored ids (B, T)."""
    S, T = max(len(s) for s in srcs) + 1, max(len(t) for t in tgts) + 1
    src, tgt_in, tgt_out = (torch.full((len(srcs), n), PAD, dtype=torch.long) for n in (S, T, T))
    for r, (s, t) in enumerate(zip(srcs, tgts)):
        src[r, :len(s) + 1] = torch.tensor(s + [EOS])
        tgt_in[r, :len(t) + 1] = torch.tensor([BOS] + t)
        tgt_out[r, :len(t) + 1] = torch.tensor(t + [EOS])
    lens = lambda xs: torch.tensor([len(x) + 1 for x in xs])  # noqa: E731
    return (src, lens(srcs), tgt_in, lens(tgts)), tgt_out


@torch.no_grad()
def score(model, srcs, tgts, batch_size=32):
    """Log-probability of each target (ids, no EOS) given its source: the sum
    over its tokens and EOS, natural log. As `nmt score`."""
    out = []
    for i in range(0, len(srcs), batch_size):
        args, gold = batch(srcs[i:i + batch_size], tgts[i:i + batch_size])
        lp = torch.log_softmax(model(*args).double(), -1).gather(-1, gold[..., None])[..., 0]
        out += [float(lp[r, :n].sum()) for r, n in enumerate(args[3].tolist())]
    return out


def main():
    ap = argparse.ArgumentParser(description="Score translations with a model from `nmt export`, as `nmt score`.")
    ap.add_argument("--model", required=True, help="a .safetensors file written by nmt export")
    ap.add_argument("--src", required=True, help="source sentences")
    ap.add_argument("--tgt", required=True, help="their translations, line for line")
    ap.add_argument("--normalize", action="store_true", help="divide each score by its tokens (EOS included)")
    ap.add_argument("--batch", type=int, default=32, help="pairs scored together (default 32)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    try:
        src, tgt = read_lines(a.src), read_lines(a.tgt)
        if len(src) != len(tgt):
            raise FormatError(f"{a.src} has {len(src)} lines but {a.tgt} has {len(tgt)}")
        model, config, tok = load(a.model)
        max_src, max_len = config["data"]["max_src_len"], max_positions(config)
        srcs, tgts = [], []
        for n, (s, t) in enumerate(zip(src, tgt), 1):
            ids = tok.encode(s, "src")
            if max_src > 0 and len(ids) > max_src:
                print(f"nmt_torch.py: warning: {a.src}:{n}: more than data.max_src_len ({max_src}) tokens, truncated",
                      file=sys.stderr)
                ids = ids[:max_src]
            srcs.append(ids)
            tgts.append(tok.encode(t, "tgt"))
            if config["model"]["positions"] == "sinusoidal" and len(tgts[-1]) + 1 > max_len:
                raise FormatError(f"{a.tgt}:{n}: {len(tgts[-1])} tokens, more than the model's {max_len - 1} positions")
    except (OSError, ValueError, KeyError) as e:  # FormatError and JSON errors are ValueErrors
        msg = e if not isinstance(e, KeyError) else f"{a.model}: no {e} (not a file nmt export wrote?)"
        print(f"nmt_torch.py: {msg}", file=sys.stderr)
        sys.exit(2)
    for lp, t in zip(score(model, srcs, tgts, max(a.batch, 1)), tgts):
        print(f"{lp / (len(t) + 1) if a.normalize else lp:.6f}")


if __name__ == "__main__":
    main()
