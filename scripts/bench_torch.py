#!/usr/bin/python3
"""The PyTorch side of `nmt bench`: the same model, shapes and training step.

Reads the same bench configs as `./nmt bench` (an ordinary nmt config; V =
data.vocab_size, S = data.max_src_len, T = data.max_tgt_len, B =
train.batch_tokens // max(S, T)) and times forward + backward + clipping +
Adam on random full-length batches, written with plain modules (nn.Linear,
nn.LayerNorm, nn.Embedding, a hand-written multi-head attention and nmt's
label-smoothed loss), not nn.Transformer: scripts/nmt_torch.py's model in
nmt's fused layout, with nmt's initialisation. Prints the same two lines as
`./nmt bench`: a human line and a JSON line per config.

Precision (--precision, else the config's train.precision, else fp32): bf16
runs the forward pass under torch.autocast("cpu", dtype=torch.bfloat16), so
its matrix products take bfloat16 inputs (their outputs are bfloat16 too),
and computes the loss from the logits in float; the weights, gradients and
Adam stay float. The JSON line's "logits_dtype" is what the forward pass
gave.

usage: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_torch.py \
           [--config FILE ...] [--steps N] [--warmup W] [--threads N] [--precision P] [--json]
Threads default to OMP_NUM_THREADS (else 1). Needs Debian's python3-torch.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("bench_torch.py: PyTorch is not installed (apt-get install -y python3-torch)")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nmt_torch  # noqa: E402
from nmt_torch import BOS, EOS, PAD  # noqa: E402


PRECISIONS = ("fp32", "bf16")


def load_config(path):
    """The keys the benchmark uses, with nmt's defaults (src/common/config.c)."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_torch.py: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    m, d, t = nmt_torch.model_config(cfg), cfg.get("data", {}), cfg.get("train", {})
    c = {
        "model": m, "d_model": m["d_model"], "heads": m["heads"], "d_ff": m["d_ff"],
        "enc_layers": m["encoder_layers"], "dec_layers": m["decoder_layers"],
        "V": d.get("vocab_size", 0), "S": d.get("max_src_len", 100), "T": d.get("max_tgt_len", 100),
        "batch_tokens": t.get("batch_tokens", 4096), "seed": t.get("seed", 1),
        "label_smoothing": t.get("label_smoothing", 0.1), "lr": t.get("lr", 5e-4),
        "warmup_steps": t.get("warmup_steps", 4000), "beta1": t.get("adam_beta1", 0.9),
        "beta2": t.get("adam_beta2", 0.98), "eps": t.get("adam_eps", 1e-9),
        "clip_norm": t.get("clip_norm", 0.0), "precision": t.get("precision", "fp32"),
    }
    if c["precision"] not in PRECISIONS:
        print(f"bench_torch.py: {path}: train.precision must be one of {', '.join(PRECISIONS)}", file=sys.stderr)
        sys.exit(2)
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


def paper_positions(n, d):
    """This script's sinusoidal table: the paper's formula in float32. nmt's
    (nmt_torch.positions_table, in double) differs by up to 6e-5; this one is
    kept so that the losses stay what this script has always printed."""
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    inv = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv)
    return pe


def step_flops(c):
    """6 x the multiply-adds of the matrix products, as src/bench/steps.c counts them."""
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
    # nmt's layout and initialisation, so the first losses can be compared with nmt's.
    model = nmt_torch.Transformer(c["model"], c["V"], c["V"], fused=True, max_len=max(c["S"] + 2, c["T"] + 2, 1024),
                                  nmt_init=True)
    if c["model"]["positions"] == "sinusoidal":
        model.pe.copy_(paper_positions(*model.pe.shape))
    model.train()
    params = [p for p in model.parameters()]
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"])
    w = c["warmup_steps"]
    ms, losses, phases = [], [], {"forward": [], "backward": [], "clip": [], "adam": []}
    bf16 = c["precision"] == "bf16"
    for i in range(warmup + steps):
        src, src_len, tgt_in, tgt_out, tgt_len = make_batch(c, gen)  # outside the timed region
        t0 = time.perf_counter()
        s = i + 1
        for g in opt.param_groups:  # inverse_sqrt, as nmt's lr_at (the value does not change the cost)
            g["lr"] = c["lr"] * min(s / w, math.sqrt(w / s))
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            logits = model(src, src_len, tgt_in, tgt_len)
        logits_dtype = str(logits.dtype).replace("torch.", "")
        ntok = int((tgt_out != PAD).sum())
        # .float(): the loss in float under bf16 (the same tensor, no copy, in fp32)
        loss = smoothed_loss(logits.float().reshape(-1, c["V"]), tgt_out.reshape(-1), c["label_smoothing"])
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
        "impl": "torch", "shape": c["name"], "threads": threads, "precision": c["precision"], "B": c["B"], "S": c["S"], "T": c["T"],
        "V": c["V"], "d_model": c["d_model"], "heads": c["heads"], "d_ff": c["d_ff"],
        "enc_layers": c["enc_layers"], "dec_layers": c["dec_layers"], "params": nparams,
        "steps": steps, "warmup": warmup, "ms_median": round(med, 3), "ms_min": round(min(ms), 3),
        "ms_max": round(max(ms), 3), "tokens_per_s": round(ntok / (med / 1e3), 1),
        "gflop_per_step": round(gflop, 4), "gflops": round(gflop / (med / 1e3), 3),
        "peak_rss_mib": round(peak_rss_mib(), 1), "rss_scope": "config" if per_config else "process", "rss_before_mib": round(rss_before, 1),
        "loss_first": round(losses[0], 6), "loss_last": round(losses[-1], 6),
        **{f"ms_{k}": round(statistics.median(v), 3) for k, v in phases.items()}, "torch": torch.__version__,
        "logits_dtype": logits_dtype,
    }
    if not json_only:
        print(f"torch {c['name']:<6} {threads} thr {c['precision']} | B {c['B']} S {c['S']} T {c['T']} V {c['V']} | "
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
    ap.add_argument("--precision", choices=PRECISIONS,
                    help="bf16: the forward pass under torch.autocast (default: each config's train.precision)")
    ap.add_argument("--json", action="store_true", help="print only the JSON lines")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("--steps >= 1, --warmup >= 0, --threads >= 1")
    torch.set_num_threads(a.threads)
    configs = [load_config(p) for p in (a.config or ["configs/bench-small.json"])]
    for c in configs:
        c["precision"] = a.precision or c["precision"]
    for c in configs:
        bench(c, a.steps, a.warmup, a.threads, a.json)


if __name__ == "__main__":
    main()
