// kernels/gemm_avx512.c — gemm's micro-kernel for AVX-512: 6 x 32 sums in
// twelve 512-bit registers, twice the AVX2 kernel's width per instruction.
// Compiled for AVX-512 whatever the build's -march (a function attribute),
// and called only when the CPU running nmt has it (gemm.c chooses).
#include "kernels/gemm_kernel.h"

#if !defined(NMT_DOUBLE) && defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

int gemm_avx512_built(void) { return 1; }

// Rows r = 0..5 of the tile: c<r>0 columns 0..15, c<r>1 columns 16..31.
__attribute__((target("avx512f,avx2,fma"))) void
gemm_kernel_avx512(size_t kc, const float *restrict a, size_t ars, size_t aks, const float *restrict b0,
                   const float *restrict b1, size_t bs, float *restrict c, size_t ldc, float alpha, float beta,
                   const Epi *e) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int r = 0; r < 6; r++) {  // C is needed only at the end: fetch it meanwhile
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }
#define FMA_ROW(r)                                                   \
    ar = _mm512_set1_ps(a[r * ars + k * aks]);                       \
    c##r##0 = _mm512_fmadd_ps(ar, x0, c##r##0);                      \
    c##r##1 = _mm512_fmadd_ps(ar, x1, c##r##1);
    if (ars == 1 && aks == 6) {  // a packed panel: constant strides
#pragma GCC unroll 4
        for (size_t k = 0; k < kc; k++) {
            __m512 x0 = _mm512_loadu_ps(b0 + k * bs), x1 = _mm512_loadu_ps(b1 + k * bs), ar;
            const size_t ars = 1, aks = 6;
            FMA_ROW(0) FMA_ROW(1) FMA_ROW(2) FMA_ROW(3) FMA_ROW(4) FMA_ROW(5)
        }
    } else {
#pragma GCC unroll 4
        for (size_t k = 0; k < kc; k++) {
            __m512 x0 = _mm512_loadu_ps(b0 + k * bs), x1 = _mm512_loadu_ps(b1 + k * bs), ar;
            FMA_ROW(0) FMA_ROW(1) FMA_ROW(2) FMA_ROW(3) FMA_ROW(4) FMA_ROW(5)
        }
    }
#undef FMA_ROW
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
    __m512 bias0 = zero, bias1 = zero;
    if (e->bias) {
        bias0 = _mm512_loadu_ps(e->bias);
        bias1 = _mm512_loadu_ps(e->bias + 16);
    }
    // The AVX2 kernel's epilogue, lane for lane: t = alpha * sum; then t +
    // bias, or fma(beta, C, t); then max(t, 0) (t > 0 ? t : 0, also for NaN).
#define STORE_ROW(r)                                                              \
    {                                                                             \
        float *cr = c + r * ldc;                                                  \
        __m512 t0 = _mm512_mul_ps(va, c##r##0), t1 = _mm512_mul_ps(va, c##r##1);  \
        if (e->bias) {                                                            \
            t0 = _mm512_add_ps(t0, bias0);                                        \
            t1 = _mm512_add_ps(t1, bias1);                                        \
        } else if (beta != 0) {                                                   \
            t0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), t0);                    \
            t1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), t1);               \
        }                                                                         \
        if (e->relu) {                                                            \
            t0 = _mm512_max_ps(t0, zero);                                         \
            t1 = _mm512_max_ps(t1, zero);                                         \
        }                                                                         \
        _mm512_storeu_ps(cr, t0);                                                 \
        _mm512_storeu_ps(cr + 16, t1);                                            \
    }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
#undef STORE_ROW
}
#else
int gemm_avx512_built(void) { return 0; }

void gemm_kernel_avx512(size_t kc, const float *a, size_t ars, size_t aks, const float *b0, const float *b1,
                        size_t bs, float *c, size_t ldc, float alpha, float beta, const Epi *e) {
    (void)kc, (void)a, (void)ars, (void)aks, (void)b0, (void)b1, (void)bs, (void)c, (void)ldc;
    (void)alpha, (void)beta, (void)e;
}
#endif
