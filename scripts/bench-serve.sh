#!/bin/bash
# bench-serve.sh URL SENTENCES — a bounded load test of a running `nmt serve`
# with the C load generator (scripts/serve-loadgen.c, built by `make loadgen`
# if needed): CLIENTS clients, a thread and a keep-alive connection each,
# send one sentence per request, taken in turn from the file SENTENCES, for
# DURATION seconds (after WARMUP seconds not counted); prints requests/s,
# sentences/s, the p50/p90/p99 latency, the errors (any status but 200) and
# the generator's own CPU time. The clients spread over SOURCES loopback
# addresses (127.0.0.1 up; default: 16 clients an address, within
# --max-per-address). EXTRA: JSON members added to each body ('"beam": 4').
# JSON=1: the figures as one JSON object. Exit status 1 when any request failed.
#   CLIENTS=16 DURATION=30 bash scripts/bench-serve.sh http://127.0.0.1:8080 data/toy/test.src
set -u
URL=${1:?usage: bench-serve.sh URL SENTENCES}
SRC=${2:?usage: bench-serve.sh URL SENTENCES}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-0}
SOURCES=${SOURCES:-$(( (CLIENTS + 15) / 16 ))}
EXTRA=${EXTRA:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -s "$SRC" ] || { echo "bench-serve.sh: $SRC is empty or missing" >&2; exit 2; }
if [ -z "${LOADGEN:-}" ]; then  # the tree's own, built when missing or older than its source
    LOADGEN=$ROOT/build/serve-loadgen
    if [ ! -x "$LOADGEN" ] || [ "$ROOT/scripts/serve-loadgen.c" -nt "$LOADGEN" ]; then
        make -s -C "$ROOT" loadgen >&2 || { echo "bench-serve.sh: cannot build the load generator" >&2; exit 2; }
    fi
fi
args=(-c "$CLIENTS" -d "$DURATION" -w "$WARMUP" -s "$SOURCES")
[ -n "$EXTRA" ] && args+=(-x "$EXTRA")
[ "${JSON:-0}" = 1 ] && args+=(-j)
exec "$LOADGEN" "${args[@]}" "$URL" "$SRC"
