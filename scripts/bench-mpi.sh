#!/bin/sh
# bench-mpi.sh — training throughput on 2 processes (mpirun, 1 thread each)
# against one process with 2 threads and train.accum_steps 2: the same work per
# step (2 micro-batches of the shape). Interleaved rounds; medians and ratios.
#   NMT=./nmt SHAPE=small ROUNDS=5 STEPS=5 sh scripts/bench-mpi.sh
# Not a test: the numbers move with the machine's load (printed first).
set -eu
NMT=${NMT:-./nmt}
SHAPE=${SHAPE:-small}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-5}
CFG=configs/bench-$SHAPE.json
command -v mpirun >/dev/null 2>&1 || { echo "bench-mpi: mpirun not found (scripts/install-deps.sh)"; exit 2; }
"$NMT" --version | grep -q ", Open MPI)" || { echo "bench-mpi: $NMT was built without Open MPI"; exit 2; }
MPIRUN="mpirun -np 2 --bind-to none --mca btl self,vader -x OMP_NUM_THREADS=1"
[ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
T=$(mktemp -d /tmp/nmt-bench-mpi-XXXXXX)
trap 'rm -rf "$T"' EXIT
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "bench-mpi: $SHAPE, $ROUNDS rounds of $STEPS steps; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    OMP_NUM_THREADS=2 "$NMT" bench --config "$CFG" --steps "$STEPS" --warmup 1 --accum 2 --json >>"$T/one"
    $MPIRUN "$NMT" bench --config "$CFG" --steps "$STEPS" --warmup 1 --json >>"$T/two"
    $MPIRUN "$NMT" bench --config "$CFG" --steps "$STEPS" --warmup 1 --no-overlap --json >>"$T/two_seq"
done
one=$(field ms_median <"$T/one" | median)
two=$(field ms_median <"$T/two" | median)
seq=$(field ms_median <"$T/two_seq" | median)
red=$(field ms_reduce <"$T/two" | median)
red_seq=$(field ms_reduce <"$T/two_seq" | median)
mb=$(field mb_reduced <"$T/two" | median)
echo "| run | ms/step (median) | sum over processes ms | throughput vs one process |"
echo "|---|---:|---:|---:|"
echo "| 1 process, 2 threads, accum_steps 2 | $one | – | 1.00 |"
awk -v a="$one" -v b="$two" -v r="$red" 'BEGIN { printf "| mpirun -np 2, 1 thread each, overlapped | %s | %s | %.3f |\n", b, r, a / b }'
awk -v a="$one" -v b="$seq" -v r="$red_seq" 'BEGIN { printf "| mpirun -np 2, 1 thread each, --no-overlap | %s | %s | %.3f |\n", b, r, a / b }'
echo "bench-mpi: $mb MB sent per process per step; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
