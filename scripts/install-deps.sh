#!/bin/sh
# Installs the distribution packages nmt needs, only those missing.
# Debian/Ubuntu (apt-get). Runs apt-get through sudo when not root.
# With no argument (`make run`): what building ./nmt and its main job need —
# the compiler, cJSON, stb, libmicrohttpd (nmt serve's HTTP library, linked
# into ./nmt) and gnuplot (scripts/plot-log.sh draws the toy run's curve).
# `install-deps.sh test` (`make test`) adds what only the tests need:
# Criterion; Open MPI (libopenmpi-dev, openmpi-bin: training on several
# processes, which tests/cli-mpi.sh runs; nmt builds and runs without it,
# make MPI=0); curl and (headless) chromium, which the server's tests talk to
# it with; and Node.js with npm, which runs two published LibreTranslate
# client libraries against it (tests/libre-clients/, installed from npm at
# the versions its package-lock.json pins).
# `install-deps.sh fuzz` adds what `make fuzz` needs: clang, its
# libFuzzer and sanitizer runtimes (libclang-rt-dev; clang itself does not pull
# them in) and its OpenMP runtime (libomp-dev), all for Debian's default clang.
# `install-deps.sh bench` adds what `make bench` compares against:
# PyTorch (python3-torch) and OpenBLAS (libopenblas0-pthread). Without
# OpenBLAS, PyTorch's matrix products fall back to the reference BLAS and run
# several times slower, which would make any comparison meaningless.
set -e
PKGS="gcc make libcjson-dev libstb-dev gnuplot-nox libmicrohttpd-dev"
[ "${1:-}" = test ] && PKGS="$PKGS libcriterion-dev libopenmpi-dev openmpi-bin curl chromium"
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-dev libomp-dev"
[ "${1:-}" = bench ] && PKGS="$PKGS python3-torch libopenblas0-pthread"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ "${1:-}" = test ] && ! command -v npm >/dev/null 2>&1 && missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
CLIENTS="$(dirname "$0")/../tests/libre-clients"
if [ "${1:-}" = test ] && [ ! -d "$CLIENTS/node_modules" ]; then
    echo "install-deps: npm ci in tests/libre-clients"
    npm ci --prefix "$CLIENTS" --no-audit --no-fund --silent
fi
