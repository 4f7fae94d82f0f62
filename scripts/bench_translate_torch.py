#!/usr/bin/python3
"""A PyTorch reference decoder for nmt checkpoints: the speed yardstick for
`nmt translate`.

Loads an nmt float checkpoint with scripts/nmt_torch.py (its reader, its
tokenizers, and its model in nmt's fused layout: nn.Linear, nn.LayerNorm,
hand-written multi-head attention) and translates with a key/value cache,
greedy (--beam 1) or beam search, batches of --batch sentences in input order,
with nmt's stopping rules, length limit and length penalty
(src/decode/search.c). Greedy output is meant to equal `nmt translate` line for
line; beam search follows nmt's algorithm (the same rows, steps and
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
import os
import resource
import sys
import time

# PyTorch's dynamic int8 Linear always asks for reduce_range, which qnnpack
# ignores with a C++ warning on every call: keep those warnings off stderr
# (c10 lets glog print the lower of the two levels, so both are needed).
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
os.environ.setdefault("GLOG_minloglevel", "2")
try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit("bench_translate_torch.py: PyTorch is not installed (apt-get install -y python3-torch)")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nmt_torch import BOS, EOS, PAD, FormatError, load_checkpoint, read_lines  # noqa: E402

NBEST = 1       # hypotheses nmt translate keeps per sentence by default (--nbest)


def fail(msg):
    print(f"bench_translate_torch.py: {msg}", file=sys.stderr)
    sys.exit(2)


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
        self.limit = model.max_len - 2
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
        caches = [(torch.empty(R, self.H, T, self.D), torch.empty(R, self.H, T, self.D))
                  for _ in self.m.decoder.layers]
        return caches, src_kv, mask, caps

    def greedy(self, srcs):
        """Beam 1 exactly as src/decode/search.c runs it: every row steps until the
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
        """src/decode/search.c's beam search: K rows per sentence, its live hypotheses
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



def options():
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
    return a


def quantize(model, qengine):
    """(the model with every nn.Linear int8 dynamic, the engine's name)."""
    # fbgemm is PyTorch's usual x86 engine, but Debian's 1.13 is built
    # without it; onednn is its x86 successor (and much faster here than
    # qnnpack, which is made for ARM).
    have = torch.backends.quantized.supported_engines
    engine = qengine or next((e for e in ("fbgemm", "onednn", "qnnpack") if e in have), None)
    if engine not in have:
        fail(f"quantized engine {engine} is not in this PyTorch (it has {have})")
    torch.backends.quantized.engine = engine
    return torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True), engine


def sources(path, tok, max_src):
    """The input's lines as source ids, cut at data.max_src_len as nmt does."""
    try:
        lines = read_lines(path)
    except FormatError as e:
        fail(e)
    srcs = []
    for n, line in enumerate(lines, 1):
        ids = tok.encode(line)
        if max_src and len(ids) > max_src:
            print(f"bench_translate_torch.py: warning: {path}:{n}: more than data.max_src_len "
                  f"({max_src}) tokens, truncated", file=sys.stderr)
            ids = ids[:max_src]
        srcs.append(ids)
    return srcs


def check_against(path, texts, summary):
    """--check-against: how many lines equal the file's (stderr, and in the summary)."""
    try:
        ref = read_lines(path)
    except FormatError as e:
        fail(e)
    same = sum(1 for x, y in zip(texts, ref) if x == y)
    diff = [i + 1 for i in range(max(len(texts), len(ref)))
            if i >= len(texts) or i >= len(ref) or texts[i] != ref[i]]
    print(f"check: {same} of {len(texts)} lines equal {path} ({len(ref)} lines)"
          + (f"; first differing lines: {diff[:10]}" if diff else ""), file=sys.stderr)
    summary.update(check_equal=same, check_lines=len(ref))


def main():
    a = options()
    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    torch.set_num_threads(threads)

    try:
        model, cfg, tok = load_checkpoint(a.checkpoint)
    except FormatError as e:
        fail(e)
    _, tv = tok.vocab_size()
    if a.beam > tv - EOS:
        fail(f"--beam {a.beam} exceeds the {tv - EOS} tokens a hypothesis can continue with")
    engine = None
    if a.quantize:
        model, engine = quantize(model, a.qengine)

    srcs = sources(a.input, tok, cfg.get("data", {}).get("max_src_len", 100))
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

    # Empty input lines give empty output lines (src/decode/translate.c).
    texts = [tok.decode(ids) if src else "" for ids, src in zip(outs, srcs)]
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.writelines(t + "\n" for t in texts)
    summary = {"impl": "torch", "quantized": a.quantize, "engine": engine, "beam": a.beam, "batch": a.batch,
               "threads": threads, "sentences": len(texts), "seconds": round(seconds, 4),
               "sent_per_s": round(len(texts) / seconds, 2) if seconds > 0 else None,
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if a.check_against:
        check_against(a.check_against, texts, summary)
    if a.json:
        print(json.dumps(summary))
    else:
        q = f", int8 dynamic ({engine})" if a.quantize else ""
        print(f"torch: {len(texts)} sentences in {seconds:.2f} s ({summary['sent_per_s']} sentences/s), "
              f"beam {a.beam}, batch {a.batch}, {threads} threads{q}, peak RSS {summary['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
