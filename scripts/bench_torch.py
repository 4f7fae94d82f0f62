#!/usr/bin/python3
"""The PyTorch side of `nmt bench`: the same model, shapes and training step.

Reads the same bench configs as `./nmt bench` (an ordinary nmt config; V =
data.vocab_size, S = data.max_src_len, T = data.max_tgt_len, B =
train.batch_tokens // max(S, T)) and times forward + backward + clipping +
Adam on random full-length batches, written with plain modules (nn.Linear,
nn.LayerNorm, nn.Embedding, a hand-written multi-head attention and nmt's
label-smoothed loss), not nn.Transformer. Prints the same two lines as
`./nmt bench`: a human line and a JSON line per config.

usage: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_torch.py \
           [--config FILE ...] [--steps N] [--warmup W] [--threads N] [--json]
Threads default to OMP_NUM_THREADS (else 1). Needs Debian's python3-torch.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("bench_torch.py: PyTorch is not installed (apt-get install -y python3-torch)")

PAD, UNK, BOS, EOS = 0, 1, 2, 3


def load_config(path):
    """The keys the benchmark uses, with nmt's defaults (src/config.c)."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_torch.py: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    m, d, t = cfg.get("model", {}), cfg.get("data", {}), cfg.get("train", {})
    c = {
        "d_model": m.get("d_model", 512), "heads": m.get("heads", 8), "d_ff": m.get("d_ff", 2048),
        "enc_layers": m.get("encoder_layers", 6), "dec_layers": m.get("decoder_layers", 6),
        "norm": m.get("norm", "post"), "tie_output": m.get("tie_output", True),
        "shared_vocab": m.get("shared_vocab", False), "dropout": m.get("dropout", 0.1),
        "attn_dropout": m.get("attention_dropout", 0.0), "ffn_dropout": m.get("ffn_dropout", 0.0),
        "V": d.get("vocab_size", 0), "S": d.get("max_src_len", 100), "T": d.get("max_tgt_len", 100),
        "batch_tokens": t.get("batch_tokens", 4096), "seed": t.get("seed", 1),
        "label_smoothing": t.get("label_smoothing", 0.1), "lr": t.get("lr", 5e-4),
        "warmup_steps": t.get("warmup_steps", 4000), "beta1": t.get("adam_beta1", 0.9),
        "beta2": t.get("adam_beta2", 0.98), "eps": t.get("adam_eps", 1e-9),
        "clip_norm": t.get("clip_norm", 0.0),
    }
    if c["V"] < 5:
        print(f"bench_torch.py: {path}: data.vocab_size must be at least 5", file=sys.stderr)
        sys.exit(2)
    c["B"] = c["batch_tokens"] // max(c["S"], c["T"])
    if c["B"] < 1:
        print(f"bench_torch.py: {path}: train.batch_tokens must exceed max_src_len and max_tgt_len", file=sys.stderr)
        sys.exit(2)
    name = os.path.basename(path)
    name = name[len("bench-"):] if name.startswith("bench-") else name
    c["name"] = name[:-5] if name.endswith(".json") else name
    return c


def positions(n, d):
    """Sinusoidal positions (the paper's)."""
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    inv = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv)
    return pe


class Attention(nn.Module):
    """Multi-head attention; self-attention projects Q, K, V with one matrix
    (as nmt's wqkv), cross-attention projects Q and K, V separately (wq, wkv)."""

    def __init__(self, d, heads, p_attn, cross):
        super().__init__()
        self.h, self.dh, self.cross, self.p = heads, d // heads, cross, p_attn
        if cross:
            self.q = nn.Linear(d, d)
            self.kv = nn.Linear(d, 2 * d)
        else:
            self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)

    def forward(self, x, mem, mask):
        # x (B,Tq,d), mem (B,Tk,d), mask (B or 1, 1, Tq or 1, Tk): True = may not attend
        B, Tq, d = x.shape
        if self.cross:
            q = self.q(x)
            k, v = self.kv(mem).chunk(2, dim=-1)
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        Tk = k.shape[1]
        q = q.reshape(B, Tq, self.h, self.dh).transpose(1, 2)
        k = k.reshape(B, Tk, self.h, self.dh).transpose(1, 2)
        v = v.reshape(B, Tk, self.h, self.dh).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh))
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        probs = F.dropout(probs, self.p, self.training)
        out = (probs @ v).transpose(1, 2).reshape(B, Tq, d)
        return self.o(out)


class FFN(nn.Module):
    def __init__(self, d, ff, p):
        super().__init__()
        self.w1, self.w2, self.p = nn.Linear(d, ff), nn.Linear(ff, d), p

    def forward(self, x):
        return self.w2(F.dropout(torch.relu(self.w1(x)), self.p, self.training))


class Sublayer(nn.Module):
    """post: LN(x + dropout(F(x))); pre: x + dropout(F(LN(x)))."""

    def __init__(self, d, p, pre):
        super().__init__()
        self.ln, self.p, self.pre = nn.LayerNorm(d), p, pre

    def forward(self, x, f):
        if self.pre:
            return x + F.dropout(f(self.ln(x)), self.p, self.training)
        return self.ln(x + F.dropout(f(x), self.p, self.training))


class EncoderLayer(nn.Module):
    def __init__(self, c, pre):
        super().__init__()
        d = c["d_model"]
        self.attn = Attention(d, c["heads"], c["attn_dropout"], False)
        self.ffn = FFN(d, c["d_ff"], c["ffn_dropout"])
        self.s1, self.s2 = Sublayer(d, c["dropout"], pre), Sublayer(d, c["dropout"], pre)

    def forward(self, x, src_mask):
        x = self.s1(x, lambda u: self.attn(u, u, src_mask))
        return self.s2(x, self.ffn)


class DecoderLayer(nn.Module):
    def __init__(self, c, pre):
        super().__init__()
        d = c["d_model"]
        self.self_attn = Attention(d, c["heads"], c["attn_dropout"], False)
        self.cross_attn = Attention(d, c["heads"], c["attn_dropout"], True)
        self.ffn = FFN(d, c["d_ff"], c["ffn_dropout"])
        self.s1, self.s2, self.s3 = (Sublayer(d, c["dropout"], pre) for _ in range(3))

    def forward(self, x, mem, self_mask, cross_mask):
        x = self.s1(x, lambda u: self.self_attn(u, u, self_mask))
        x = self.s2(x, lambda u: self.cross_attn(u, mem, cross_mask))
        return self.s3(x, self.ffn)


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, V = c["d_model"], c["V"]
        self.d, self.p, self.pre = d, c["dropout"], c["norm"] == "pre"
        self.src_emb = nn.Embedding(V, d)
        self.tgt_emb = self.src_emb if c["shared_vocab"] else nn.Embedding(V, d)
        self.out_proj = self.tgt_emb if c["tie_output"] else nn.Embedding(V, d)  # (V, d), no bias
        # nmt's initialisation (src/model.c), so the first losses can be compared:
        # embeddings uniform with std d^-0.5, output projection and weights
        # Glorot-uniform with nmt's fans (attention: d + d), biases zero.
        for e in dict.fromkeys([self.src_emb, self.tgt_emb]):  # ordered: same init every run
            nn.init.uniform_(e.weight, -math.sqrt(3.0 / d), math.sqrt(3.0 / d))
        if not c["tie_output"]:
            b = math.sqrt(6.0 / (d + V))
            nn.init.uniform_(self.out_proj.weight, -b, b)
        self.enc = nn.ModuleList(EncoderLayer(c, self.pre) for _ in range(c["enc_layers"]))
        self.dec = nn.ModuleList(DecoderLayer(c, self.pre) for _ in range(c["dec_layers"]))
        if self.pre:
            self.enc_ln, self.dec_ln = nn.LayerNorm(d), nn.LayerNorm(d)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                fan_in, fan_out = mod.in_features, mod.out_features
                if fan_in == d and fan_out != c["d_ff"]:
                    fan_out = d  # wqkv, wkv and wo: (d, k*d) with fan_out d
                b = math.sqrt(6.0 / (fan_in + fan_out))
                nn.init.uniform_(mod.weight, -b, b)
                nn.init.zeros_(mod.bias)
        self.register_buffer("pe", positions(max(c["S"] + 2, c["T"] + 2, 1024), d))  # as nmt

    def embed(self, emb, ids):
        x = emb(ids) * math.sqrt(self.d) + self.pe[: ids.shape[1]]
        return F.dropout(x, self.p, self.training)

    def forward(self, src, src_len, tgt_in, tgt_len):
        S, T = src.shape[1], tgt_in.shape[1]
        src_pad = torch.arange(S).unsqueeze(0) >= src_len.unsqueeze(1)          # (B,S)
        tgt_pad = torch.arange(T).unsqueeze(0) >= tgt_len.unsqueeze(1)          # (B,T)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)                    # (T,T)
        src_mask = src_pad[:, None, None, :]
        self_mask = causal[None, None] | tgt_pad[:, None, None, :]
        x = self.embed(self.src_emb, src)
        for layer in self.enc:
            x = layer(x, src_mask)
        mem = self.enc_ln(x) if self.pre else x
        y = self.embed(self.tgt_emb, tgt_in)
        for layer in self.dec:
            y = layer(y, mem, self_mask, src_mask)
        if self.pre:
            y = self.dec_ln(y)
        return y @ self.out_proj.weight.t()                                     # (B,T,V)


def step_flops(c):
    """6 x the multiply-adds of the matrix products, as src/bench.c counts them."""
    d, ff, ne, nd = c["d_model"], c["d_ff"], c["enc_layers"], c["dec_layers"]
    B, S, T, V = c["B"], c["S"], c["T"], c["V"]
    mac = (ne * (4 * d * d + 2 * d * ff) * B * S + nd * (6 * d * d + 2 * d * ff) * B * T
           + nd * 2 * d * d * B * S + d * V * B * T + 2 * B * d * (ne * S * S + nd * (T * T + S * T)))
    return 6.0 * mac


def smoothed_loss(logits, gold, eps):
    """Label smoothing as nmt defines it (README): 1-eps on the gold token, eps
    spread over the V-2 tokens that are neither gold nor padding; pad targets
    contribute nothing. Summed over tokens. (F.cross_entropy's label_smoothing
    spreads eps over all V tokens instead; the cost is the same.)"""
    V = logits.shape[-1]
    logp = F.log_softmax(logits, dim=-1)
    lp_gold = logp.gather(1, gold.unsqueeze(1)).squeeze(1)
    rest = logp.sum(dim=-1) - lp_gold - logp[:, PAD]
    per_tok = -(1 - eps) * lp_gold - eps / (V - 2) * rest
    return per_tok.masked_fill(gold == PAD, 0.0).sum()


def make_batch(c, gen):
    """Random full-length sentences: ids 4..V-1, source ends with EOS, target
    input starts with BOS, target output ends with EOS."""
    B, S, T, V = c["B"], c["S"], c["T"], c["V"]
    src = torch.randint(4, V, (B, S), generator=gen)
    src[:, -1] = EOS
    tgt = torch.randint(4, V, (B, T), generator=gen)
    tgt_out = tgt.clone()
    tgt_out[:, -1] = EOS
    tgt_in = torch.cat([torch.full((B, 1), BOS, dtype=torch.long), tgt_out[:, :-1]], dim=1)
    return src, torch.full((B,), S), tgt_in, tgt_out, torch.full((B,), T)


def status_mib(field):
    """A field of /proc/self/status in MiB ("VmHWM:" peak, "VmRSS:" now), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mib():
    mib = status_mib("VmHWM:")
    return mib if mib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bench(c, steps, warmup, threads, json_only):
    per_config = reset_peak_rss()
    rss_before = status_mib("VmRSS:") or -1.0  # the interpreter and torch, before the model exists
    torch.manual_seed(c["seed"])
    gen = torch.Generator().manual_seed(c["seed"])
    model = Transformer(c)
    model.train()
    params = [p for p in model.parameters()]
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"])
    w = c["warmup_steps"]
    ms, losses, phases = [], [], {"forward": [], "backward": [], "clip": [], "adam": []}
    for i in range(warmup + steps):
        src, src_len, tgt_in, tgt_out, tgt_len = make_batch(c, gen)  # outside the timed region
        t0 = time.perf_counter()
        s = i + 1
        for g in opt.param_groups:  # inverse_sqrt, as nmt's lr_at (the value does not change the cost)
            g["lr"] = c["lr"] * min(s / w, math.sqrt(w / s))
        logits = model(src, src_len, tgt_in, tgt_len)
        ntok = int((tgt_out != PAD).sum())
        loss = smoothed_loss(logits.reshape(-1, c["V"]), tgt_out.reshape(-1), c["label_smoothing"])
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=False)  # nmt zeroes one gradient buffer too (counted as backward)
        (loss / ntok).backward()
        t2 = time.perf_counter()
        # nmt computes the norm even when it does not clip
        torch.nn.utils.clip_grad_norm_(params, c["clip_norm"] if c["clip_norm"] > 0 else float("inf"))
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        lv = loss.item() / ntok
        if not math.isfinite(lv):
            sys.exit(f"bench_torch.py: {c['name']}: step {i + 1}: loss is not finite")
        losses.append(lv)
        if i >= warmup:
            ms.append((t4 - t0) * 1e3)
            for k, a, b in (("forward", t0, t1), ("backward", t1, t2), ("clip", t2, t3), ("adam", t3, t4)):
                phases[k].append((b - a) * 1e3)
    med = statistics.median(ms)
    ntok = c["B"] * c["T"]
    gflop = step_flops(c) / 1e9
    r = {
        "impl": "torch", "shape": c["name"], "threads": threads, "B": c["B"], "S": c["S"], "T": c["T"],
        "V": c["V"], "d_model": c["d_model"], "heads": c["heads"], "d_ff": c["d_ff"],
        "enc_layers": c["enc_layers"], "dec_layers": c["dec_layers"], "params": nparams,
        "steps": steps, "warmup": warmup, "ms_median": round(med, 3), "ms_min": round(min(ms), 3),
        "ms_max": round(max(ms), 3), "tokens_per_s": round(ntok / (med / 1e3), 1),
        "gflop_per_step": round(gflop, 4), "gflops": round(gflop / (med / 1e3), 3),
        "peak_rss_mib": round(peak_rss_mib(), 1), "rss_scope": "config" if per_config else "process", "rss_before_mib": round(rss_before, 1),
        "loss_first": round(losses[0], 6), "loss_last": round(losses[-1], 6),
        **{f"ms_{k}": round(statistics.median(v), 3) for k, v in phases.items()}, "torch": torch.__version__,
    }
    if not json_only:
        print(f"torch {c['name']:<6} {threads} thr | B {c['B']} S {c['S']} T {c['T']} V {c['V']} | "
              f"{med:.2f} ms/step (median of {steps}) | {r['tokens_per_s']:.0f} tok/s | "
              f"{r['gflops']:.2f} GFLOP/s | peak RSS {r['peak_rss_mib']:.1f} MiB | "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f} | fwd {r['ms_forward']:.1f} bwd {r['ms_backward']:.1f} "
              f"clip {r['ms_clip']:.1f} adam {r['ms_adam']:.1f} ms")
    print(json.dumps(r), flush=True)


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of nmt bench")
    ap.add_argument("--config", action="append", help="bench config (repeatable)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--json", action="store_true", help="print only the JSON lines")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("--steps >= 1, --warmup >= 0, --threads >= 1")
    torch.set_num_threads(a.threads)
    configs = [load_config(p) for p in (a.config or ["configs/bench-small.json"])]
    for c in configs:
        bench(c, a.steps, a.warmup, a.threads, a.json)


if __name__ == "__main__":
    main()
