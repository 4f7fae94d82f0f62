#!/bin/sh
# openblas-coretype.sh PYTHON — prints the OPENBLAS_CORETYPE the PyTorch side of
# the benchmarks should run with: SkylakeX (OpenBLAS's AVX-512 kernels) when the
# CPU has AVX-512 and PyTorch's float product under it agrees with a float64 one
# (relative error below 1e-4 on a 517 x 300 x 611 product), else what the
# environment sets (machines here set Haswell, a guard for old OpenBLAS
# builds), else nothing. Used by bench.sh and bench-translate.sh; it changes
# no variable of the caller's (they pass it to PyTorch's runs only).
PYTHON=${1:-/usr/bin/python3}
if grep -qw avx512f /proc/cpuinfo 2>/dev/null &&
   OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE "$PYTHON" -c '
import sys, torch
torch.manual_seed(0)
a, b = torch.randn(517, 300), torch.randn(300, 611)
exact = a.double() @ b.double()
err = float(((a @ b).double() - exact).abs().max() / exact.abs().max())
sys.exit(0 if err < 1e-4 else 1)' 2>/dev/null; then
    echo SkylakeX
else
    echo "${OPENBLAS_CORETYPE:-}"
fi
