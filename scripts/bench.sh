#!/bin/sh
# bench.sh — nmt beside PyTorch: the same training step at the same shapes,
# run interleaved (nmt tiny, torch tiny, nmt small, torch small, ...) with 1
# and 2 threads, then one table: medians, nmt/PyTorch ratios, thread scaling.
#
# Environment (all optional):
#   NMT=./nmt                 the binary (must know `nmt bench`)
#   PYTHON=/usr/bin/python3   Debian's python with python3-torch
#   BENCH_SHAPES="tiny small base"   configs/bench-<shape>.json each
#   BENCH_THREADS="1 2"       thread counts
#   BENCH_PRECISION=fp32      the products' precision(s), e.g. "fp32 bf16": nmt
#                             bench --precision P beside bench_torch.py --precision P
#                             (bf16: its forward pass under torch.autocast), each
#                             interleaved with the others; two give a bf16 table
#   BENCH_NEIGHBOURS="0 1"    busy neighbours: for each count N, every measurement
#                             runs beside N shell loops spinning on the CPU (a
#                             shared machine), started before it and killed after
#   BENCH_STEPS, BENCH_WARMUP  timed / untimed steps for every shape
#                             (default per shape: tiny 50/5, small 20/3, base 5/1)
#   BENCH_ROUNDS=1            repeat the whole interleaved sequence; the table
#                             then shows the median over rounds
#   BENCH_OUT=build/bench     where the JSON lines are kept
#   BENCH_NO_TORCH=1          nmt only
#   BENCH_WAIT_POLICY         OMP_WAIT_POLICY for both programs. Unset: nmt keeps
#                             its own default (a short spin, GOMP_SPINCOUNT=20000,
#                             see src/cli/main.c) and PyTorch runs with PASSIVE.
set -eu

NMT=${NMT:-./nmt}
PYTHON=${PYTHON:-/usr/bin/python3}
SHAPES=${BENCH_SHAPES:-tiny small base}
THREADS=${BENCH_THREADS:-1 2}
PRECISIONS=${BENCH_PRECISION:-fp32}
NEIGHBOURS=${BENCH_NEIGHBOURS:-0 1}
ROUNDS=${BENCH_ROUNDS:-1}
OUT_DIR=${BENCH_OUT:-build/bench}
WAIT=${BENCH_WAIT_POLICY:-}
HERE=$(dirname "$0")

die() { echo "bench.sh: $*" >&2; exit 2; }

[ -x "$NMT" ] || die "$NMT not found (run: make)"
"$NMT" bench --help >/dev/null 2>&1 || die "$NMT does not know 'bench' (src/cli/main.c must dispatch it to cli_bench)"
for s in $SHAPES; do
    [ -f "configs/bench-$s.json" ] || die "configs/bench-$s.json not found (BENCH_SHAPES=\"$SHAPES\")"
done
for p in $PRECISIONS; do
    case $p in fp32 | bf16) ;; *) die "BENCH_PRECISION: '$p' is not fp32 or bf16" ;; esac
done
TORCH=1
if [ "${BENCH_NO_TORCH:-0}" = 1 ]; then
    TORCH=0
elif ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "bench.sh: PyTorch not found for $PYTHON (apt-get install -y python3-torch); timing nmt only" >&2
    TORCH=0
fi
if [ "$TORCH" = 1 ] && ! ls /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/*/libopenblas.so.0 >/dev/null 2>&1; then
    echo "bench.sh: warning: OpenBLAS is not installed, so PyTorch's products use the slow reference BLAS (sh scripts/install-deps.sh bench)" >&2
fi

# PyTorch with OpenBLAS's fastest correct kernels here (openblas-coretype.sh).
CORETYPE=""
if [ "$TORCH" = 1 ]; then
    CORETYPE=$(sh "$HERE/openblas-coretype.sh" "$PYTHON")
    echo "bench.sh: PyTorch runs with OPENBLAS_CORETYPE=${CORETYPE:-(unset: OpenBLAS chooses)}; nmt's gemm kernel is in its rows (\"kernel\")" >&2
fi

steps_for() {
    case $1 in tiny) echo 50 ;; small) echo 20 ;; base) echo 5 ;; *) echo 10 ;; esac
}
warmup_for() {
    case $1 in tiny) echo 5 ;; small) echo 3 ;; base) echo 1 ;; *) echo 2 ;; esac
}

mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
: >"$RESULTS"

# N busy loops in the background (their pids in $busy); stop_neighbours kills them.
busy=""
start_neighbours() {
    i=0
    while [ "$i" -lt "$1" ]; do
        sh -c 'while :; do :; done' &
        busy="$busy $!"
        i=$((i + 1))
    done
}
stop_neighbours() {
    if [ -n "$busy" ]; then
        kill $busy 2>/dev/null || true
        wait $busy 2>/dev/null || true
    fi
    busy=""
}
trap 'stop_neighbours' EXIT INT TERM

# Runs one benchmark (products in precision $7) beside $6 busy neighbours:
# prints its human line, keeps its JSON line.
run() {
    impl=$1 shape=$2 t=$3 steps=$4 warm=$5 nb=$6 prec=$7
    cfg="configs/bench-$shape.json"
    start_neighbours "$nb"
    if [ "$impl" = nmt ]; then
        if [ -n "$WAIT" ]; then
            out=$(OMP_NUM_THREADS=$t OMP_WAIT_POLICY=$WAIT "$NMT" bench --config "$cfg" --steps "$steps" --warmup "$warm" \
                --precision "$prec")
        else
            out=$(OMP_NUM_THREADS=$t "$NMT" bench --config "$cfg" --steps "$steps" --warmup "$warm" --precision "$prec")
        fi || die "nmt bench failed for $cfg"
    else
        # OpenBLAS (Debian's BLAS for torch) keeps its own thread pool: give it the same count.
        out=$(env ${CORETYPE:+OPENBLAS_CORETYPE=$CORETYPE} OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_WAIT_POLICY=${WAIT:-PASSIVE} \
            "$PYTHON" "$HERE/bench_torch.py" --config "$cfg" --steps "$steps" --warmup "$warm" --threads "$t" \
            --precision "$prec") ||
            die "bench_torch.py failed for $cfg"
    fi
    stop_neighbours
    echo "$out" | grep -v '^{' | sed "s/\$/ | $nb neighbours/" || true
    echo "$out" | grep '^{' | sed "s/}\$/, \"neighbours\": $nb}/" >>"$RESULTS"
}

echo "bench.sh: shapes [$SHAPES], threads [$THREADS], precisions [$PRECISIONS], neighbours [$NEIGHBOURS], $ROUNDS round(s), OMP_WAIT_POLICY nmt=${WAIT:-default} torch=${WAIT:-PASSIVE}; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then
    echo "bench.sh: warning: the machine is busy (1-minute load $(cut -d' ' -f1 /proc/loadavg)); the figures will be noisy" >&2
fi
start=$(date +%s)
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for s in $SHAPES; do
        steps=${BENCH_STEPS:-$(steps_for "$s")}
        warm=${BENCH_WARMUP:-$(warmup_for "$s")}
        for nb in $NEIGHBOURS; do
            for t in $THREADS; do
                for p in $PRECISIONS; do
                    run nmt "$s" "$t" "$steps" "$warm" "$nb" "$p"
                    if [ "$TORCH" = 1 ]; then run torch "$s" "$t" "$steps" "$warm" "$nb" "$p"; fi
                done
            done
        done
    done
    r=$((r + 1))
done
echo "bench.sh: $(($(date +%s) - start)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg); JSON lines in $RESULTS"
echo

"$PYTHON" - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
shapes = list(dict.fromkeys(r["shape"] for r in rows))
threads = sorted({r["threads"] for r in rows})
for r in rows:
    r.setdefault("neighbours", 0)
    r.setdefault("precision", "fp32")  # results from before train.precision
nbs = sorted({r["neighbours"] for r in rows})
precs = [p for p in ("fp32", "bf16") if any(r["precision"] == p for r in rows)]
PHASES = ("forward", "backward", "clip", "adam")

def pick(impl, shape, t, nb=0, prec="fp32"):
    rs = [r for r in rows if r["impl"] == impl and r["shape"] == shape and r["threads"] == t and r["neighbours"] == nb
          and r["precision"] == prec]
    if not rs:
        return None
    ms = statistics.median(r["ms_median"] for r in rs)
    r0 = rs[0]
    out = {"ms": ms, "tok": r0["B"] * r0["T"] / (ms / 1e3), "gflops": r0["gflop_per_step"] / (ms / 1e3),
           "rss": max(r["peak_rss_mib"] for r in rs), "n": len(rs)}
    for k in PHASES:
        out[k] = statistics.median(r["ms_" + k] for r in rs)
    return out

def f(x, fmt):
    return format(x, fmt) if x is not None else "-"

hdr = ("shape", "thr", "nb", "prec", "nmt ms/step", "torch ms/step", "nmt tok/s", "torch tok/s", "speed nmt/torch",
       "nmt GFLOP/s", "torch GFLOP/s", "nmt RSS MiB", "torch RSS MiB", "RSS nmt/torch")
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---" if i < 4 else "---:" for i in range(len(hdr))) + "|")
for s in shapes:
  for nb in nbs:
    for t in threads:
      for p in precs:
        a, b = pick("nmt", s, t, nb, p), pick("torch", s, t, nb, p)
        if a is None and b is None:
            continue
        g = lambda x, k: x[k] if x else None
        ratio = a["tok"] / b["tok"] if a and b else None
        rss = a["rss"] / b["rss"] if a and b else None
        print("| " + " | ".join([s, str(t), str(nb), p, f(g(a, "ms"), ".1f"), f(g(b, "ms"), ".1f"), f(g(a, "tok"), ".0f"),
                                 f(g(b, "tok"), ".0f"), f(ratio, ".2f") + ("x" if ratio else ""),
                                 f(g(a, "gflops"), ".1f"), f(g(b, "gflops"), ".1f"), f(g(a, "rss"), ".1f"),
                                 f(g(b, "rss"), ".1f"), f(rss, ".2f")]) + " |")
if len(precs) > 1:
    print()
    print("bf16 against fp32: fp32 step time / bf16 step time (above 1: bf16 is faster), same threads and neighbours.")
    print()
    print("| shape | thr | nb | nmt fp32/bf16 | torch fp32/bf16 |")
    print("|---|---|---|---:|---:|")
    for s in shapes:
        for nb in nbs:
            for t in threads:
                cells = []
                for impl in ("nmt", "torch"):
                    a, b = pick(impl, s, t, nb, "fp32"), pick(impl, s, t, nb, "bf16")
                    cells.append(f"{a['ms'] / b['ms']:.2f}x" if a and b else "-")
                print(f"| {s} | {t} | {nb} | {cells[0]} | {cells[1]} |")
if len(threads) > 1:
    lo, hi = threads[0], threads[-1]
    print()
    print(f"| shape | prec | nmt speed-up {hi} vs {lo} threads | torch speed-up {hi} vs {lo} threads |")
    print("|---|---|---:|---:|")
    for s in shapes:
        for p in precs:
            cells = []
            for impl in ("nmt", "torch"):
                a, b = pick(impl, s, lo, 0, p), pick(impl, s, hi, 0, p)
                cells.append(f"{a['ms'] / b['ms']:.2f}x" if a and b else "-")
            print(f"| {s} | {p} | {cells[0]} | {cells[1]} |")
if len(nbs) > 1:
    print()
    print("Busy neighbours: step time beside N busy processes / idle step time (same threads), and")
    print(f"nmt's {threads[-1]}-thread step time against its {threads[0]}-thread one beside the same neighbours.")
    print()
    print("| shape | nb | prec | " + " | ".join(f"nmt {t} thr" for t in threads) + " | " +
          " | ".join(f"torch {t} thr" for t in threads) + f" | nmt {threads[-1]} thr / {threads[0]} thr |")
    print("|---|---|---|" + "---:|" * (2 * len(threads) + 1))
    for s in shapes:
        for nb in nbs[1:]:
            for p in precs:
                cells = []
                for impl in ("nmt", "torch"):
                    for t in threads:
                        a, b = pick(impl, s, t, 0, p), pick(impl, s, t, nb, p)
                        cells.append(f"{b['ms'] / a['ms']:.2f}x" if a and b else "-")
                a, b = pick("nmt", s, threads[0], nb, p), pick("nmt", s, threads[-1], nb, p)
                cells.append(f"{b['ms'] / a['ms']:.2f}" if a and b else "-")
                print(f"| {s} | {nb} | {p} | " + " | ".join(cells) + " |")
print()
print("| shape | thr | prec | " + " | ".join(f"{k} ms nmt / torch" for k in PHASES) + " |")
print("|---|---|---|" + "---:|" * len(PHASES))
for s in shapes:
    for t in threads:
        for p in precs:
            a, b = pick("nmt", s, t, 0, p), pick("torch", s, t, 0, p)
            if a is None and b is None:
                continue
            cells = [f"{f(a and a[k], '.1f')} / {f(b and b[k], '.1f')}" for k in PHASES]
            print(f"| {s} | {t} | {p} | " + " | ".join(cells) + " |")
print()
print("ms/step: median over timed steps (median over rounds when BENCH_ROUNDS > 1); tok/s: target tokens;")
print("GFLOP/s: 6 x multiply-adds of the matrix products per step / median step time; RSS: peak resident set.")
print("Phases: medians of each part of a step (zeroing the gradients counts as backward; nmt computes")
print("the output layer's forward and backward chunk by chunk and counts each part where it belongs).")
print("prec: the products' precision (nmt bench --precision; PyTorch's bf16: its forward pass under")
print("torch.autocast(\"cpu\", dtype=torch.bfloat16)).")
EOF
