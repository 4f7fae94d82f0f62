// kernels/gemm_bf16_simd.c — the bf16 tile with AVX-512 BF16 (vdpbf16ps) and
// its emulation with AVX2 FMAs. Compiled for those instructions whatever the
// build's -march (function attributes) and called only where the CPU has
// them (gemm_bf16.c chooses). Both give bf16_step's bits.
#include "kernels/gemm_kernel.h"

#if !defined(NMT_DOUBLE) && defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "kernels/bf16.h"

int gemm_bf16_simd_built(void) { return 1; }

// Six rows x 32 columns in twelve registers. vdpbf16ps adds, per column, the
// pair's odd product and then its even one to the sum, each rounded to
// nearest even, with denormal inputs read as zero and denormal results
// flushed: bf16_step twice.
#define DOT_TILE                                                                            \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00; \
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;               \
    _Pragma("GCC unroll 4") for (size_t p = 0; p < np; p++) {                               \
        __m512bh x0 = (__m512bh)_mm512_loadu_si512(b + p * BF16_NR);                        \
        __m512bh x1 = (__m512bh)_mm512_loadu_si512(b + p * BF16_NR + 16), ar;               \
        DOT_ROW(0) DOT_ROW(1) DOT_ROW(2) DOT_ROW(3) DOT_ROW(4) DOT_ROW(5)                   \
    }
#define DOT_ROW(r)                                                        \
    ar = (__m512bh)_mm512_set1_epi32((int)a[p * BF16_MR + r]);            \
    c##r##0 = _mm512_dpbf16_ps(c##r##0, ar, x0);                          \
    c##r##1 = _mm512_dpbf16_ps(c##r##1, ar, x1);

__attribute__((target("avx512f,avx512bf16"))) void
gemm_bf16_tile_avx512(size_t np, const uint32_t *restrict a, const uint32_t *restrict b, float *restrict t) {
    DOT_TILE
#define STORE_ROW(r)                                       \
    _mm512_storeu_ps(t + r * BF16_NR, c##r##0);            \
    _mm512_storeu_ps(t + r * BF16_NR + 16, c##r##1);
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
#undef STORE_ROW
}

__attribute__((target("avx512f,avx512bf16"))) void
gemm_bf16_tile_avx512_c(size_t np, const uint32_t *restrict a, const uint32_t *restrict b, float *restrict c,
                        size_t ldc, const Bf16Epi *e) {
    DOT_TILE
    __m512 va = _mm512_set1_ps(e->alpha), vb = _mm512_set1_ps(e->beta), zero = _mm512_setzero_ps();
    __m512 bias0 = e->bias ? _mm512_loadu_ps(e->bias) : zero, bias1 = e->bias ? _mm512_loadu_ps(e->bias + 16) : zero;
#define STORE_ROW(r)                                                                             \
    {                                                                                            \
        float *cr = c + r * ldc;                                                                 \
        __m512 t0 = _mm512_mul_ps(va, c##r##0), t1 = _mm512_mul_ps(va, c##r##1);                 \
        if (e->bias) {                                                                           \
            t0 = _mm512_add_ps(t0, bias0);                                                       \
            t1 = _mm512_add_ps(t1, bias1);                                                       \
        } else if (e->beta != 0) {                                                               \
            t0 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(cr)), t0);                      \
            t1 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16)), t1);                 \
        }                                                                                        \
        if (e->relu) { /* max(t, 0) is t > 0 ? t : 0, also for NaN and -0 */                    \
            t0 = _mm512_max_ps(t0, zero);                                                        \
            t1 = _mm512_max_ps(t1, zero);                                                        \
        }                                                                                        \
        _mm512_storeu_ps(cr, t0);                                                                \
        _mm512_storeu_ps(cr + 16, t1);                                                           \
    }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
#undef STORE_ROW
}
#undef DOT_ROW
#undef DOT_TILE

// The same sums with FMAs: a bf16 is a float's upper half, so a pair's even
// value is the word shifted left by 16 and its odd one the word with its low
// half cleared. The FMA's exact product and single rounding are the
// instruction's; the control register's flush-to-zero and denormals-are-zero
// modes, on while the tile runs, do its flushing.
__attribute__((target("avx2,fma"))) static void
tile_columns_avx2(size_t np, const uint32_t *restrict a, const uint32_t *restrict b, float *restrict t) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
#define STEP_ROW(r)                                                                \
    {                                                                              \
        __m256i w = _mm256_set1_epi32((int)a[p * BF16_MR + r]);                    \
        c##r = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(w, high)), bo, c##r); \
        c##r = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)), be, c##r);  \
    }
#pragma GCC unroll 2
    for (size_t p = 0; p < np; p++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(b + p * BF16_NR));
        __m256 bo = _mm256_castsi256_ps(_mm256_and_si256(x, high));
        __m256 be = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
        STEP_ROW(0) STEP_ROW(1) STEP_ROW(2) STEP_ROW(3) STEP_ROW(4) STEP_ROW(5)
    }
#undef STEP_ROW
    _mm256_storeu_ps(t, c0);
    _mm256_storeu_ps(t + BF16_NR, c1);
    _mm256_storeu_ps(t + 2 * BF16_NR, c2);
    _mm256_storeu_ps(t + 3 * BF16_NR, c3);
    _mm256_storeu_ps(t + 4 * BF16_NR, c4);
    _mm256_storeu_ps(t + 5 * BF16_NR, c5);
}

__attribute__((target("avx2,fma"))) void
gemm_bf16_tile_avx2(size_t np, const uint32_t *a, const uint32_t *b, float *t) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);  // flush to zero (bit 15), denormals are zero (bit 6)
    for (int j = 0; j < BF16_NR; j += 8) tile_columns_avx2(np, a, b + j, t + j);
    _mm_setcsr(csr);
}

// bf16_from_float on 8 lanes: each lane's bf16 in its low 16 bits.
__attribute__((target("avx2"))) static inline __m256i round8(__m256i v) {
    const __m256i expo = _mm256_set1_epi32(0x7f800000), mag = _mm256_set1_epi32(0x7fffffff);
    __m256i hi = _mm256_srli_epi32(v, 16);
    __m256i up = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(v, up), 16);
    __m256i small = _mm256_cmpeq_epi32(_mm256_and_si256(v, expo), _mm256_setzero_si256());
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(v, mag), expo);
    r = _mm256_blendv_epi8(r, _mm256_and_si256(hi, _mm256_set1_epi32(0x8000)), small);
    return _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
}

__attribute__((target("avx2"))) void bf16_round_pairs_avx2(uint32_t *w, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16, w += 8) {
        __m256i a = round8(_mm256_loadu_si256((const __m256i *)(src + i)));
        __m256i b = round8(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        // 16-bit values in order: packus interleaves the 128-bit halves
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)w, p);
    }
    for (; i < n; i += 2, w++) *w = bf16_from_float(src[i]) | (i + 1 < n ? (uint32_t)bf16_from_float(src[i + 1]) << 16 : 0);
}

__attribute__((target("avx2"))) void bf16_round_interleave_avx2(uint32_t *w, const float *lo, const float *hi,
                                                                 size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i a = round8(_mm256_loadu_si256((const __m256i *)(lo + i)));
        __m256i b = hi ? round8(_mm256_loadu_si256((const __m256i *)(hi + i))) : _mm256_setzero_si256();
        _mm256_storeu_si256((__m256i *)(w + i), _mm256_or_si256(a, _mm256_slli_epi32(b, 16)));
    }
    for (; i < n; i++) w[i] = bf16_from_float(lo[i]) | (hi ? (uint32_t)bf16_from_float(hi[i]) << 16 : 0);
}
#else
int gemm_bf16_simd_built(void) { return 0; }
void bf16_round_pairs_avx2(uint32_t *w, const float *src, size_t n) { (void)w, (void)src, (void)n; }
void bf16_round_interleave_avx2(uint32_t *w, const float *lo, const float *hi, size_t n) {
    (void)w, (void)lo, (void)hi, (void)n;
}
void gemm_bf16_tile_avx512(size_t np, const uint32_t *a, const uint32_t *b, float *t) {
    (void)np, (void)a, (void)b, (void)t;
}
void gemm_bf16_tile_avx512_c(size_t np, const uint32_t *a, const uint32_t *b, float *c, size_t ldc,
                             const Bf16Epi *e) {
    (void)np, (void)a, (void)b, (void)c, (void)ldc, (void)e;
}
void gemm_bf16_tile_avx2(size_t np, const uint32_t *a, const uint32_t *b, float *t) {
    (void)np, (void)a, (void)b, (void)t;
}
#endif
