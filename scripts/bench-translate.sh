#!/bin/sh
# bench-translate.sh — translation speed and quality: nmt float, nmt int8,
# PyTorch float and PyTorch's own dynamic int8 (scripts/bench_translate_torch.py,
# the same model loaded from the same checkpoint), greedy and beam 4, 1 and 2
# threads, interleaved, repeated; then one table of medians with ratios.
#
# nmt's time is `nmt eval`'s translation time (tokenizing, decoding and
# detokenizing; loading excluded); PyTorch's is its decoding alone (after
# loading, tokenizing and a warm-up batch). BLEU of every output against the
# references (`nmt bleu`).
#
# Environment (all optional):
#   NMT=./nmt  PYTHON=/usr/bin/python3
#   BENCH_CKPT, BENCH_SRC, BENCH_REF   default: checkpoints/multi30k/best.ckpt with
#                             data/multi30k/test_2016_flickr.{de,en} when they exist,
#                             else checkpoints/toy/last.ckpt with data/toy/test.{src,tgt}
#   BENCH_THREADS="1 2"  BENCH_BEAMS="1 4"  BENCH_ROUNDS=3  BENCH_BATCH=32
#   BENCH_NO_TORCH=1          nmt only
#   BENCH_OUT=build/bench     where outputs and JSON lines are kept
set -eu

NMT=${NMT:-./nmt}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${BENCH_THREADS:-1 2}
BEAMS=${BENCH_BEAMS:-1 4}
ROUNDS=${BENCH_ROUNDS:-3}
BATCH=${BENCH_BATCH:-32}
OUT_DIR=${BENCH_OUT:-build/bench}
HERE=$(dirname "$0")

die() { echo "bench-translate.sh: $*" >&2; exit 2; }

if [ -z "${BENCH_CKPT:-}" ]; then
    if [ -f checkpoints/multi30k/best.ckpt ] && [ -f data/multi30k/test_2016_flickr.de ]; then
        BENCH_CKPT=checkpoints/multi30k/best.ckpt
        BENCH_SRC=${BENCH_SRC:-data/multi30k/test_2016_flickr.de}
        BENCH_REF=${BENCH_REF:-data/multi30k/test_2016_flickr.en}
    else
        BENCH_CKPT=checkpoints/toy/last.ckpt
        BENCH_SRC=${BENCH_SRC:-data/toy/test.src}
        BENCH_REF=${BENCH_REF:-data/toy/test.tgt}
    fi
fi
CKPT=$BENCH_CKPT SRC=${BENCH_SRC:-} REF=${BENCH_REF:-}
[ -x "$NMT" ] || die "$NMT not found (run: make)"
[ -f "$CKPT" ] || die "$CKPT not found (train one: make run, or ./nmt train --config configs/multi30k.json)"
[ -f "$SRC" ] && [ -f "$REF" ] || die "source '$SRC' or reference '$REF' not found (BENCH_SRC, BENCH_REF)"
TORCH=1
if [ "${BENCH_NO_TORCH:-0}" = 1 ]; then
    TORCH=0
elif ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "bench-translate.sh: PyTorch not found for $PYTHON (sh scripts/install-deps.sh bench); timing nmt only" >&2
    TORCH=0
fi

# PyTorch with OpenBLAS's fastest correct kernels here (openblas-coretype.sh).
CORETYPE=""
if [ "$TORCH" = 1 ]; then
    CORETYPE=$(sh "$HERE/openblas-coretype.sh" "$PYTHON")
    echo "bench-translate.sh: PyTorch runs with OPENBLAS_CORETYPE=${CORETYPE:-(unset: OpenBLAS chooses)}" >&2
fi

mkdir -p "$OUT_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$OUT_DIR/translate-$STAMP.jsonl"
: >"$RESULTS"
Q8="$OUT_DIR/translate-$STAMP-int8.ckpt"
"$NMT" quantize --checkpoint "$CKPT" --output "$Q8" >/dev/null
N=$(wc -l <"$SRC")

# One measurement: appends {"impl", "threads", "beam", "round", "sent_per_s", "bleu"} to $RESULTS.
run() {  # impl threads beam round
    out="$OUT_DIR/translate-$STAMP-$1-t$2-b$3.txt"
    case $1 in
    nmt-float | nmt-int8)
        ck=$CKPT; [ "$1" = nmt-int8 ] && ck=$Q8
        line=$(OMP_NUM_THREADS=$2 "$NMT" eval --checkpoint "$ck" --src "$SRC" --ref "$REF" --beam "$3" \
                   --batch "$BATCH" --output "$out" | grep "sentences/s")
        sps=$(echo "$line" | sed -E 's/.*\(([0-9.]+) sentences\/s.*/\1/') ;;
    torch-float | torch-int8)
        q=""; [ "$1" = torch-int8 ] && q=--quantize
        sps=$(env ${CORETYPE:+OPENBLAS_CORETYPE=$CORETYPE} OMP_NUM_THREADS=$2 OMP_WAIT_POLICY=PASSIVE \
                  "$PYTHON" "$HERE/bench_translate_torch.py" \
                  --checkpoint "$CKPT" --input "$SRC" --output "$out" --beam "$3" --batch "$BATCH" \
                  --threads "$2" $q --json | sed -E 's/.*"sent_per_s": ([0-9.]+).*/\1/') ;;
    esac
    bleu=$("$NMT" bleu "$REF" <"$out" | sed -E 's/^BLEU = ([0-9.]+).*/\1/')
    printf '{"impl": "%s", "threads": %s, "beam": %s, "round": %s, "sent_per_s": %s, "bleu": %s, "load": %s}\n' \
        "$1" "$2" "$3" "$4" "$sps" "$bleu" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
    printf '%-12s %s thr beam %s round %s: %8.1f sentences/s  BLEU %s\n' "$1" "$2" "$3" "$4" "$sps" "$bleu"
}

IMPLS="nmt-float nmt-int8"
[ "$TORCH" = 1 ] && IMPLS="$IMPLS torch-float torch-int8"
echo "bench-translate.sh: $CKPT on $SRC ($N sentences), batch $BATCH; threads [$THREADS], beams [$BEAMS], $ROUNDS round(s); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
START=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
        for b in $BEAMS; do
            for impl in $IMPLS; do run "$impl" "$t" "$b" "$r"; done
        done
    done
done
echo "bench-translate.sh: $(($(date +%s) - START)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg); JSON lines in $RESULTS"
rm -f "$Q8"

"$PYTHON" - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(impl, t, b, key):
    v = [r[key] for r in rows if r["impl"] == impl and r["threads"] == t and r["beam"] == b]
    return statistics.median(v) if v else None
keys = sorted({(r["threads"], r["beam"]) for r in rows})
impls = [i for i in ("nmt-float", "nmt-int8", "torch-float", "torch-int8") if any(r["impl"] == i for r in rows)]
def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"
print()
print("| threads | beam | " + " | ".join(i + " sent/s" for i in impls) +
      " | int8/float nmt | nmt/torch float | nmt/torch int8 | " + " | ".join(i + " BLEU" for i in impls) + " |")
print("|---|---|" + "---:|" * (2 * len(impls) + 3))
for t, b in keys:
    s = {i: med(i, t, b, "sent_per_s") for i in impls}
    q = {i: med(i, t, b, "bleu") for i in impls}
    cells = ["%.1f" % s[i] for i in impls]
    cells += [ratio(s.get("nmt-int8"), s.get("nmt-float")), ratio(s.get("nmt-float"), s.get("torch-float")),
              ratio(s.get("nmt-int8"), s.get("torch-int8"))]
    cells += ["%.2f" % q[i] for i in impls]
    print("| %d | %d | " % (t, b) + " | ".join(cells) + " |")
print()
print("sent/s: median over rounds of sentences per second; BLEU: `nmt bleu` of each output against the references.")
PY
