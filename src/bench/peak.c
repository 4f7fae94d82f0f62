// bench/peak.c — the FMA peak of one core at a vector width (bench/peak.h).
#include "bench/peak.h"
#include "common/util.h"

#if defined(__x86_64__)
#include <immintrin.h>

// n rounds of 12 independent FMA chains; returns a value that depends on all
// of them, so that none is optimised away.
#define CHAINS(V, FMA, ADD, SET1, TOSCALAR)                                               \
    /* distinct starting values: equal chains would be merged into one */                \
    V x0 = SET1(1.00f), x1 = SET1(1.01f), x2 = SET1(1.02f), x3 = SET1(1.03f);             \
    V x4 = SET1(1.04f), x5 = SET1(1.05f), x6 = SET1(1.06f), x7 = SET1(1.07f);             \
    V x8 = SET1(1.08f), x9 = SET1(1.09f), x10 = SET1(1.10f), x11 = SET1(1.11f);           \
    V m = SET1(0.999999f), a = SET1(1e-7f);                                               \
    for (long i = 0; i < n; i++) {                                                        \
        x0 = FMA(x0, m, a), x1 = FMA(x1, m, a), x2 = FMA(x2, m, a), x3 = FMA(x3, m, a);   \
        x4 = FMA(x4, m, a), x5 = FMA(x5, m, a), x6 = FMA(x6, m, a), x7 = FMA(x7, m, a);   \
        x8 = FMA(x8, m, a), x9 = FMA(x9, m, a), x10 = FMA(x10, m, a), x11 = FMA(x11, m, a); \
    }                                                                                     \
    V s = ADD(ADD(ADD(x0, x1), ADD(x2, x3)), ADD(ADD(x4, x5), ADD(x6, x7)));              \
    s = ADD(s, ADD(ADD(x8, x9), ADD(x10, x11)));                                          \
    return TOSCALAR(s)

__attribute__((target("avx2,fma"))) static float chains8(long n) {
    CHAINS(__m256, _mm256_fmadd_ps, _mm256_add_ps, _mm256_set1_ps, _mm256_cvtss_f32);
}

__attribute__((target("avx512f,avx2,fma"))) static float chains16(long n) {
    CHAINS(__m512, _mm512_fmadd_ps, _mm512_add_ps, _mm512_set1_ps, _mm512_cvtss_f32);
}

// The same with vdpbf16ps, m and a read as pairs of bf16 (finite values).
__attribute__((target("avx512f,avx512bf16"))) static float chains_bf16(long n) {
#define DPBF16(x, m, a) _mm512_dpbf16_ps(x, (__m512bh)_mm512_castps_si512(m), (__m512bh)_mm512_castps_si512(a))
    CHAINS(__m512, DPBF16, _mm512_add_ps, _mm512_set1_ps, _mm512_cvtss_f32);
#undef DPBF16
}
#undef CHAINS

static volatile float sink;

// GFLOP/s of `chains` with `width` lanes: the best of 5 runs of n rounds.
static double measure(float (*chains)(long), int width) {
    const long n = 4000000;  // 48 M vector FMAs a run: about 5 ms at two a cycle
    double best = 0;
    sink = chains(n / 10);   // wake the units up
    for (int r = 0; r < 5; r++) {
        double t0 = now_seconds();
        sink = chains(n);
        double dt = now_seconds() - t0;
        double g = 12.0 * (double)n * width * 2 / dt / 1e9;
        if (g > best) best = g;
    }
    return best;
}

double bench_peak_gflops(GemmKernel k) {
    static double peak[3];  // per kernel, measured once
    int wide = k == GEMM_KERNEL_AVX512;
    if (!wide && !__builtin_cpu_supports("avx2")) return 0;
    if (wide && !__builtin_cpu_supports("avx512f")) return 0;
    int i = wide ? 2 : 1;
    if (peak[i] == 0) peak[i] = wide ? measure(chains16, 16) : measure(chains8, 8);
    return peak[i];
}

double bench_peak_bf16_gflops(void) {
    static double peak;
    if (!__builtin_cpu_supports("avx512bf16")) return 0;
    if (peak == 0) peak = measure(chains_bf16, 32);
    return peak;
}
#else
double bench_peak_gflops(GemmKernel k) {
    (void)k;
    return 0;
}
double bench_peak_bf16_gflops(void) { return 0; }
#endif
