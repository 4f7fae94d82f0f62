// bench/peak.h — the machine's floating-point peak, measured: what a core's
// fused multiply-adds reach at a kernel's vector width, so that benchmarks
// can say what fraction of the CPU they use.
#ifndef NMT_BENCH_PEAK_H
#define NMT_BENCH_PEAK_H

#include "kernels/gemm.h"

// GFLOP/s of one core (2 per FMA lane) running twelve independent chains of
// FMAs at kernel k's width (8 floats for AVX2, 16 for AVX-512; the portable
// kernel counts as AVX2's when the CPU has it, else 0: not measured). The
// best of a few runs of about 10 ms, measured once per process and kernel.
double bench_peak_gflops(GemmKernel k);
// The same for the AVX-512 BF16 dot product (vdpbf16ps: 32 multiply-adds per
// instruction, 2 flops each); 0 where the CPU lacks it.
double bench_peak_bf16_gflops(void);

#endif
