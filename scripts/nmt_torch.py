#!/usr/bin/python3
"""Load a model written by `nmt export` (safetensors) into PyTorch, and score
translations with it as `nmt score` does.

The file holds fairseq-named float32 tensors (linear weights (out, in)) and,
in its metadata, nmt's config (`nmt.config`, JSON) and tokenizer
(`nmt.tokenizer`). `Transformer` below has exactly those parameter names, so
the weights go in with `load_state_dict`; its forward pass is nmt's
(src/ops.c, src/layer.c, src/stack.c): post- or pre-norm, sinusoidal or
relative positions, local attention windows, dropout off.

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

usage: /usr/bin/python3 scripts/nmt_torch.py --model M.safetensors --src S --tgt T [--normalize] [--batch N]
prints one line per pair: the natural-log probability of line i of T given line i of S,
summed over its tokens and EOS ("%.6f"; --normalize: divided by that number of tokens).
"""
import argparse
import json
import math
import os
import struct
import sys

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when libgomp loads (with torch)
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_translate_torch import (BOS, EOS, LN_EPS, PAD, UNK, WordTokenizer,  # noqa: E402
                                   positions_table, read_tokenizer)


class FormatError(ValueError):
    """A file that is not what it should be (the CLI exits 2 with the message)."""


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


class Attention(nn.Module):
    """Multi-head attention, fairseq's names, nmt's arithmetic: scores q.k/sqrt(D);
    with relative positions (Shaw et al. 2018; self-attention only) each score
    also gains q_i . rel_k[r] / sqrt(D) and each output sum_j p_ij rel_v[r],
    r = clip(j - i, -k, k) + k, the tables shared by the heads."""

    def __init__(self, C, H, rel=0):
        super().__init__()
        self.H, self.rel = H, rel
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(C, C) for _ in range(4))
        if rel:
            self.relative_keys = nn.Embedding(2 * rel + 1, C // H)
            self.relative_values = nn.Embedding(2 * rel + 1, C // H)

    def forward(self, x, mem, hide):
        """x (B, Tq, C) queries, mem (B, Tk, C) keys/values, hide (B, Tq, Tk) True = unseen."""
        (B, Tq, C), Tk, H = x.shape, mem.shape[1], self.H
        q = self.q_proj(x).view(B, Tq, H, C // H).transpose(1, 2)
        k = self.k_proj(mem).view(B, Tk, H, C // H).transpose(1, 2)
        v = self.v_proj(mem).view(B, Tk, H, C // H).transpose(1, 2)
        s = q @ k.transpose(-1, -2)
        if self.rel:
            r = (torch.arange(Tk)[None, :] - torch.arange(Tq)[:, None]).clamp(-self.rel, self.rel) + self.rel
            s = s + torch.einsum("bhid,ijd->bhij", q, self.relative_keys.weight[r])
        hide = hide[:, None]
        # A query that sees no key (a padding row) gets all-zero weights, as in nmt.
        p = torch.softmax((s / math.sqrt(C // H)).masked_fill(hide, float("-inf")), -1).masked_fill(hide, 0.0)
        o = p @ v
        if self.rel:
            o = o + torch.einsum("bhij,ijd->bhid", p, self.relative_values.weight[r])
        return self.out_proj(o.transpose(1, 2).reshape(B, Tq, C))


class Layer(nn.Module):
    """One encoder layer (self_attn, fc1/fc2) or decoder layer (+ encoder_attn).
    Every sublayer F: post-norm y = LN(x + F(x)), pre-norm y = x + F(LN(x))."""

    def __init__(self, c, decoder):
        super().__init__()
        C, H = c["d_model"], c["heads"]
        self.pre_norm = c["norm"] == "pre"
        self.self_attn = Attention(C, H, c["max_relative_position"] if c["positions"] == "relative" else 0)
        self.self_attn_layer_norm = nn.LayerNorm(C, eps=LN_EPS)
        if decoder:
            self.encoder_attn = Attention(C, H)
            self.encoder_attn_layer_norm = nn.LayerNorm(C, eps=LN_EPS)
        self.fc1, self.fc2 = nn.Linear(C, c["d_ff"]), nn.Linear(c["d_ff"], C)
        self.final_layer_norm = nn.LayerNorm(C, eps=LN_EPS)

    def sub(self, x, norm, fn):
        return x + fn(norm(x)) if self.pre_norm else norm(x + fn(x))

    def forward(self, x, hide, mem=None, mem_hide=None):
        x = self.sub(x, self.self_attn_layer_norm, lambda u: self.self_attn(u, u, hide))
        if mem is not None:
            x = self.sub(x, self.encoder_attn_layer_norm, lambda u: self.encoder_attn(u, mem, mem_hide))
        return self.sub(x, self.final_layer_norm, lambda u: self.fc2(F.relu(self.fc1(u))))


class Stack(nn.Module):
    """embed_tokens, layers and (pre-norm) the final layer_norm of one side."""

    def __init__(self, c, vocab, decoder, embed=None):
        super().__init__()
        self.embed_tokens = embed if embed is not None else nn.Embedding(vocab, c["d_model"])
        n = c["decoder_layers" if decoder else "encoder_layers"]
        self.layers = nn.ModuleList(Layer(c, decoder) for _ in range(n))
        if c["norm"] == "pre":
            self.layer_norm = nn.LayerNorm(c["d_model"], eps=LN_EPS)


class Transformer(nn.Module):
    """nmt's model with fairseq's parameter names; `c` is nmt.config's "model" object."""

    def __init__(self, c, src_vocab, tgt_vocab):
        super().__init__()
        self.c = c
        self.encoder = Stack(c, src_vocab, False)
        self.decoder = Stack(c, tgt_vocab, True, self.encoder.embed_tokens if c["shared_vocab"] else None)
        self.decoder.output_projection = nn.Linear(c["d_model"], tgt_vocab, bias=False)
        if c["tie_output"]:
            self.decoder.output_projection.weight = self.decoder.embed_tokens.weight

    def self_hide(self, length, T, causal):
        """(B, T, T) keys a query may not see: padding, the future, outside the window."""
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        hide = j >= length[:, None, None]
        if causal:
            hide = hide | (j > i)
        W = self.c["attention_window"]
        return hide | ((i - j).abs() > W) if W > 0 else hide

    def run(self, stack, ids, length, causal, mem=None, mem_hide=None):
        C, T = self.c["d_model"], ids.shape[1]
        x = stack.embed_tokens(ids) * math.sqrt(C)
        if self.c["positions"] == "sinusoidal":
            x = x + positions_table(T, C)
        hide = self.self_hide(length, T, causal)
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


class Tokenizer:
    """The metadata's tokenizer (bench_translate_torch's word or BPE classes), both sides."""

    def __init__(self, text):
        self.tok = read_tokenizer(text.encode("utf-8"))
        word = isinstance(self.tok, WordTokenizer)
        self.tgt = {w: i for i, w in enumerate(self.tok.tgt_words)} if word else None

    def encode(self, line, side="src"):
        if side == "tgt" and self.tgt is not None:
            return [self.tgt.get(w, UNK) for w in WordTokenizer.SPLIT.split(line) if w]
        return self.tok.encode(line)

    def decode(self, ids):
        return self.tok.decode(ids)

    def vocab_size(self):
        return self.tok.vocab_size()


def load(path):
    """(model in eval mode, the full nmt config dict, Tokenizer) of an exported file."""
    tensors, meta = read_safetensors(path)
    if "nmt.config" not in meta or "nmt.tokenizer" not in meta:
        raise FormatError(f"{path}: no nmt.config and nmt.tokenizer metadata (written by nmt export?)")
    config = json.loads(meta["nmt.config"])
    c, tok = config["model"], Tokenizer(meta["nmt.tokenizer"])
    # Tied tensors are stored once: give the module each name it has.
    tensors.setdefault("decoder.embed_tokens.weight", tensors["encoder.embed_tokens.weight"])
    tensors.setdefault("decoder.output_projection.weight", tensors["decoder.embed_tokens.weight"])
    sv, tv = tok.vocab_size()
    if (sv, tv) != (len(tensors["encoder.embed_tokens.weight"]), len(tensors["decoder.output_projection.weight"])):
        raise FormatError(f"{path}: the tokenizer and the embeddings disagree on the vocabulary sizes")
    model = Transformer(c, sv, tv)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise FormatError(f"{path}: {e}") from None
    return model.eval(), config, tok


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


def read_lines(path):
    """src/data.c: lines split at LF, one trailing CR dropped; UTF-8 checked."""
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
        d, c = config["data"], config["model"]
        max_src, max_len = d["max_src_len"], max(max(d["max_src_len"], d["max_tgt_len"]) + 2, 1024)
        srcs, tgts = [], []
        for n, (s, t) in enumerate(zip(src, tgt), 1):
            ids = tok.encode(s, "src")
            if max_src > 0 and len(ids) > max_src:
                print(f"nmt_torch.py: warning: {a.src}:{n}: more than data.max_src_len ({max_src}) tokens, truncated",
                      file=sys.stderr)
                ids = ids[:max_src]
            srcs.append(ids)
            tgts.append(tok.encode(t, "tgt"))
            if c["positions"] == "sinusoidal" and len(tgts[-1]) + 1 > max_len:
                raise FormatError(f"{a.tgt}:{n}: {len(tgts[-1])} tokens, more than the model's {max_len - 1} positions")
    except (OSError, ValueError, KeyError) as e:  # FormatError and JSON errors are ValueErrors
        msg = e if not isinstance(e, KeyError) else f"{a.model}: no {e} (not a file nmt export wrote?)"
        print(f"nmt_torch.py: {msg}", file=sys.stderr)
        sys.exit(2)
    for lp, t in zip(score(model, srcs, tgts, max(a.batch, 1)), tgts):
        print(f"{lp / (len(t) + 1) if a.normalize else lp:.6f}")


if __name__ == "__main__":
    main()
