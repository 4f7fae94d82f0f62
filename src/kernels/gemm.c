// kernels/gemm.c — the one matrix product: packed panels, cache blocking, a
// register-blocked SIMD micro-kernel, OpenMP over output tiles.
//
// Loop nest (the GotoBLAS/BLIS order):
//   jc over N in NC columns     B block (kc x nc) packed once, shared by the threads
//     pc over K in kc steps     a split of K that depends on K only
//       ic over M in MC rows    A block (mc x kc) packed by the thread that owns it (L2)
//         jr over NR, ir over MR: the micro-kernel keeps MR x NR sums in registers
// Small products skip packing where the kernel can read A or B in place.
//
// Determinism: every C element is produced by the same micro-kernel, summing
// k in increasing order inside each K block and adding the blocks to C in
// increasing order. Threads only decide who computes which tile, so the bits
// do not depend on the thread count or on which thread gets which tile.
#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/par.h"

#include <omp.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "common/util.h"

#if !defined(NMT_DOUBLE) && defined(__AVX2__) && defined(__FMA__)
#define GEMM_AVX2 1
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// Stay with AVX2's 16 vector registers even where AVX-512 offers 32: given
// ymm16-31, GCC puts the kernel's broadcasts there, which needs the EVEX
// encoding, and on AMD Zen 4 the kernel then ran 13% slower. (Before the
// include, so that the intrinsics are compiled for the same target.)
#pragma GCC target("no-avx512f")
#endif
#include <immintrin.h>
#endif

// Register tile MR x NR and cache blocks. MC x KC of A stays in L2, a KC x NR
// panel of B in L1; KC x NC of B is shared through L3.
#ifdef GEMM_AVX2
enum { MR = 6, NR = 16, KC = GEMM_KC, MC = 144, NC = 4096 };
#else
enum { MR = 4, NR = 8, KC = GEMM_KC, MC = 128, NC = 2048 };
#endif


// Products smaller than this many multiply-adds run on the calling thread:
// a parallel region costs more than it saves (par.h: more on a shared machine).
#define PAR_MIN_FMAS par_min_fmas

// ---------------------------------------------------------------------------
// Packing buffers: one set per thread, grown when needed and never shrunk, so
// a training step does not allocate. Every set is also linked from a global
// list so that it stays reachable (LeakSanitizer) when its thread ends.

typedef struct PackBuf {
    void *a_raw, *b_raw;
    real *a, *b;
    size_t a_cap, b_cap;  // in elements
    struct PackBuf *next;
} PackBuf;

static _Thread_local PackBuf *tls_buf;
static PackBuf *all_bufs;

static PackBuf *pack_buf(void) {
    if (!tls_buf) {
        PackBuf *p = xcalloc(1, sizeof *p);
#pragma omp critical(gemm_bufs)
        {
            p->next = all_bufs;
            all_bufs = p;
        }
        tls_buf = p;
    }
    return tls_buf;
}

// Returns a 64-byte aligned buffer of at least n elements.
static real *grow(void **raw, real **buf, size_t *cap, size_t n) {
    if (n > *cap) {
        free(*raw);
        *raw = xmalloc(n * sizeof(real) + 64);
        *buf = (real *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
        *cap = n;
    }
    return *buf;
}

void *gemm_pack_space(int b_side, size_t bytes) {
    PackBuf *buf = pack_buf();
    size_t n = (bytes + sizeof(real) - 1) / sizeof(real);
    return b_side ? grow(&buf->b_raw, &buf->b, &buf->b_cap, n) : grow(&buf->a_raw, &buf->a, &buf->a_cap, n);
}

// ---------------------------------------------------------------------------
// Packing. A micro-panel holds MR rows of op(A) for kc values of k, stored
// k-major: ap[k*MR + r]. A B micro-panel holds NR columns: bp[k*NR + c].
// Rows/columns past the matrix edge are packed as zeros; the edge kernels
// leave them out of C.

#ifdef GEMM_AVX2
// Transposes the 8x8 block r[0..7] in place: afterwards r[k] holds element k
// of every input row.
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

// Packs rows i0 .. i0+mc-1 of op(A), k0 .. k0+kc-1, into ceil(mc/MR)
// micro-panels, panel s at ap + s*MR*kc.
static void pack_a(real *restrict ap, const real *restrict A, size_t lda, int ta, size_t i0,
                   size_t mc, size_t k0, size_t kc) {
    if (!ta) {  // op(A)(i,k) = A[i*lda + k]: each panel reads MR rows of A
        for (size_t s = 0; s * MR < mc; s++, ap += MR * kc) {
            size_t i = i0 + s * MR, mr = mc - s * MR < MR ? mc - s * MR : MR;
            size_t k = 0;
#ifdef GEMM_AVX2
            // Transposes 8 k at a time and stores 8 floats per k, of which 6
            // belong to k; the extra 2 land on k+1 (or on the next panel),
            // which is written afterwards. The buffer has 2 floats of slack.
            {
                const float *src = A + i * lda + k0;
                for (; k + 8 <= kc; k += 8) {
                    __m256 r[8];
                    for (size_t t = 0; t < 8; t++)
                        r[t] = t < mr ? _mm256_loadu_ps(src + t * lda + k) : _mm256_setzero_ps();
                    transpose8(r);
                    for (int t = 0; t < 8; t++) _mm256_storeu_ps(ap + (k + t) * MR, r[t]);
                }
            }
#endif
            for (; k < kc; k++)
                for (size_t r = 0; r < MR; r++)
                    ap[k * MR + r] = r < mr ? A[(i + r) * lda + k0 + k] : 0;
        }
    } else {    // op(A)(i,k) = A[k*lda + i]: each row of A is read once, for all panels
        for (size_t k = 0; k < kc; k++) {
            const real *src = A + (k0 + k) * lda + i0;
            real *dst = ap + k * MR;
            size_t i = 0;
#ifdef GEMM_AVX2
            for (; i + MR <= mc; i += MR, dst += MR * kc) {
                _mm_storeu_ps(dst, _mm_loadu_ps(src + i));
                _mm_storel_pi((__m64 *)(dst + 4),
                              _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(src + i + 4)));
            }
#endif
            for (; i < mc; i += MR, dst += MR * kc)
                for (size_t r = 0; r < MR; r++) dst[r] = i + r < mc ? src[i + r] : 0;
        }
    }
}

static void pack_b(real *restrict bp, const real *restrict B, size_t ldb, int tb,
                   size_t j0, size_t nr, size_t k0, size_t kc) {
    size_t k = 0;
    if (!tb) {  // op(B)(k,j) = B[k*ldb + j]
#ifdef GEMM_AVX2
        if (nr == NR) {
            for (; k < kc; k++) {
                const float *src = B + (k0 + k) * ldb + j0;
                _mm256_store_ps(bp + k * NR, _mm256_loadu_ps(src));
                _mm256_store_ps(bp + k * NR + 8, _mm256_loadu_ps(src + 8));
            }
        } else {  // masked loads read only the nr columns and give 0 elsewhere
            __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
            for (; k < kc; k++) {
                const float *src = B + (k0 + k) * ldb + j0;
                _mm256_store_ps(bp + k * NR, _mm256_maskload_ps(src, m0));
                _mm256_store_ps(bp + k * NR + 8, _mm256_maskload_ps(src + 8, m1));
            }
        }
#endif
        for (; k < kc; k++)
            for (size_t c = 0; c < NR; c++)
                bp[k * NR + c] = c < nr ? B[(k0 + k) * ldb + j0 + c] : 0;
    } else {    // op(B)(k,j) = B[j*ldb + k]
#ifdef GEMM_AVX2
        {
            const float *src = B + j0 * ldb + k0;
            for (; k + 8 <= kc; k += 8)
                for (size_t h = 0; h < NR; h += 8) {
                    __m256 r[8];
                    for (size_t i = 0; i < 8; i++)
                        r[i] = h + i < nr ? _mm256_loadu_ps(src + (h + i) * ldb + k)
                                          : _mm256_setzero_ps();
                    transpose8(r);
                    for (int i = 0; i < 8; i++) _mm256_store_ps(bp + (k + i) * NR + h, r[i]);
                }
        }
#endif
        for (; k < kc; k++)
            for (size_t c = 0; c < NR; c++)
                bp[k * NR + c] = c < nr ? B[(j0 + c) * ldb + k0 + k] : 0;
    }
}

// ---------------------------------------------------------------------------
// Micro-kernel: C(mr x nr) = alpha * ap·bp + beta * C, where beta == 0 means C
// is not read. Every element goes through the same operations whatever the
// tile size: sum = fma(a_k, b_k, sum) for k in order, t = alpha*sum, then
// C = fma(beta, C, t). So an edge tile rounds exactly like a full one.

#ifdef GEMM_AVX2
// mr, masked and direct are constants after inlining. masked: only the
// columns in m0 (0..7) and m1 (8..15) of C are touched. A(r, k) of the tile is
// at a[r*ars + k*aks]: direct = 0 means a packed panel (ars = 1, aks = MR, as
// constants); direct = 1 reads A in place with the strides given. B row k is
// at b + k*bs. (Named accumulators rather than an array: GCC keeps an array
// in memory.)
static inline __attribute__((always_inline)) void
kernel_rows(int mr, int masked, int direct, size_t kc, const float *restrict a, size_t ars,
            size_t aks, const float *restrict b, size_t bs, float *restrict c, size_t ldc,
            float alpha, float beta, const Epi *e, __m256i m0, __m256i m1) {
    size_t rs = direct ? ars : 1, ks = direct ? aks : MR;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int r = 0; r < mr; r++) {  // C is needed only at the end: fetch it meanwhile
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), ar;
#define FMA_ROW(r)                                          \
    if (mr > r) {                                           \
        ar = _mm256_broadcast_ss(a + r * rs + k * ks);      \
        c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);         \
        c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);         \
    }
        FMA_ROW(0) FMA_ROW(1) FMA_ROW(2) FMA_ROW(3) FMA_ROW(4) FMA_ROW(5)
#undef FMA_ROW
        b += bs;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
    __m256 bias0 = zero, bias1 = zero;
    if (e->bias) {
        bias0 = masked ? _mm256_maskload_ps(e->bias, m0) : _mm256_loadu_ps(e->bias);
        bias1 = masked ? _mm256_maskload_ps(e->bias + 8, m1) : _mm256_loadu_ps(e->bias + 8);
    }
#define STORE_ROW(r)                                                                  \
    if (mr > r) {                                                                     \
        float *cr = c + r * ldc;                                                      \
        __m256 t0 = _mm256_mul_ps(va, c##r##0), t1 = _mm256_mul_ps(va, c##r##1);      \
        if (e->bias) {                                                                \
            t0 = _mm256_add_ps(t0, bias0);                                            \
            t1 = _mm256_add_ps(t1, bias1);                                            \
        } else if (beta != 0 && masked) {                                             \
            t0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, m0), t0);                 \
            t1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, m1), t1);             \
        } else if (beta != 0) {                                                       \
            t0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), t0);                        \
            t1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), t1);                    \
        }                                                                             \
        if (e->relu) { /* max(t, 0) is t > 0 ? t : 0, also for NaN and -0 */         \
            t0 = _mm256_max_ps(t0, zero);                                             \
            t1 = _mm256_max_ps(t1, zero);                                             \
        }                                                                             \
        if (masked) {                                                                 \
            _mm256_maskstore_ps(cr, m0, t0);                                          \
            _mm256_maskstore_ps(cr + 8, m1, t1);                                      \
        } else {                                                                      \
            _mm256_storeu_ps(cr, t0);                                                 \
            _mm256_storeu_ps(cr + 8, t1);                                             \
        }                                                                             \
    }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
#undef STORE_ROW
}

// A(r, k) at a[r*ars + k*aks]; (1, MR) is a packed panel.
static void kernel_full(size_t kc, const float *a, size_t ars, size_t aks, const float *b,
                        size_t bs, float *c, size_t ldc, float alpha, float beta, const Epi *e) {
    __m256i none = _mm256_setzero_si256();
    if (ars == 1 && aks == MR)
        kernel_rows(MR, 0, 0, kc, a, 1, MR, b, bs, c, ldc, alpha, beta, e, none, none);
    else
        kernel_rows(MR, 0, 1, kc, a, ars, aks, b, bs, c, ldc, alpha, beta, e, none, none);
}

static void kernel_edge(size_t mr, size_t nr, size_t kc, const float *a, size_t ars,
                        size_t aks, const float *b, size_t bs, float *c, size_t ldc,
                        float alpha, float beta, const Epi *e) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
#define ROWS(n, d) kernel_rows(n, 1, d, kc, a, ars, aks, b, bs, c, ldc, alpha, beta, e, m0, m1); break
    if (!(ars == 1 && aks == MR)) {
        switch (mr) {
        case 1: ROWS(1, 1); case 2: ROWS(2, 1); case 3: ROWS(3, 1);
        case 4: ROWS(4, 1); case 5: ROWS(5, 1); default: ROWS(6, 1);
        }
    } else {
        switch (mr) {
        case 1: ROWS(1, 0); case 2: ROWS(2, 0); case 3: ROWS(3, 0);
        case 4: ROWS(4, 0); case 5: ROWS(5, 0); default: ROWS(6, 0);
        }
    }
#undef ROWS
}
#else
// Portable path: plain loops the compiler may vectorise. Lanes are independent,
// so vectorisation does not change the order of any sum. (Without FMA the
// multiply and the add round separately; still the same for every element.)
static void kernel_edge(size_t mr, size_t nr, size_t kc, const real *restrict a, size_t ars,
                        size_t aks, const real *restrict b, size_t bs, real *restrict c,
                        size_t ldc, real alpha, real beta, const Epi *e) {
    real acc[MR][NR] = {{0}};
    for (size_t k = 0; k < kc; k++) {
        for (size_t r = 0; r < mr; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[r * ars + k * aks] * b[j];
        b += bs;
    }
    for (size_t r = 0; r < mr; r++) {
        real *cr = c + r * ldc;
        for (size_t j = 0; j < nr; j++) {
            real t = alpha * acc[r][j];
            if (e->bias) t = t + e->bias[j];
            else if (beta != 0) t = beta * cr[j] + t;
            cr[j] = e->relu && !(t > 0) ? 0 : t;
        }
    }
}

static void kernel_full(size_t kc, const real *a, size_t ars, size_t aks, const real *b,
                        size_t bs, real *c, size_t ldc, real alpha, real beta, const Epi *e) {
    kernel_edge(MR, NR, kc, a, ars, aks, b, bs, c, ldc, alpha, beta, e);
}
#endif

// ---------------------------------------------------------------------------
// Which kernel runs.

static int kernel_choice = -1;  // a GemmKernel once chosen

const char *gemm_kernel_name(GemmKernel k) {
    return k == GEMM_KERNEL_AVX512 ? "avx512" : k == GEMM_KERNEL_AVX2 ? "avx2" : "portable";
}

int gemm_kernel_by_name(const char *name) {
    for (int k = GEMM_KERNEL_PORTABLE; k <= GEMM_KERNEL_AVX512; k++)
        if (!strcmp(name, gemm_kernel_name((GemmKernel)k))) return k;
    return -1;
}

int gemm_kernel_available(GemmKernel k) {
#ifdef GEMM_AVX2
    if (k == GEMM_KERNEL_AVX2) return 1;
    if (k == GEMM_KERNEL_AVX512) return gemm_avx512_built() && __builtin_cpu_supports("avx512f");
    return 0;
#else
    return k == GEMM_KERNEL_PORTABLE;
#endif
}

int gemm_use_kernel(GemmKernel k) {
    if (!gemm_kernel_available(k))
        return err_set(NMT_ERR_INPUT, "the %s gemm kernel is not available on this CPU or build", gemm_kernel_name(k));
    __atomic_store_n(&kernel_choice, (int)k, __ATOMIC_RELAXED);
    return NMT_OK;
}

#ifdef GEMM_AVX2
#include <cpuid.h>

// The CPU's family (CPUID leaf 1, with the extended family) and whether it is AMD's.
static unsigned cpu_family(int *amd) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __get_cpuid(0, &a, &b, &c, &d);
    *amd = b == 0x68747541;  // "Auth" of "AuthenticAMD"
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xf;
    return family == 0xf ? family + ((a >> 20) & 0xff) : family;
}

// Seconds for reps products of a 6 x 32 x 256 tile by the AVX2 kernel (two
// tiles of 16 columns) or the AVX-512 one; the best of 5 tries.
static double time_tile(int wide, const float *a, const float *b, float *c, int reps) {
    Epi e = {NULL, 0};
    double best = 1e30;
    for (int t = 0; t < 5; t++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) {
            if (wide) gemm_kernel_avx512(256, a, 1, MR, b, b + NR * 256, NR, c, 32, 1, 0, &e);
            else {
                kernel_full(256, a, 1, MR, b, NR, c, 32, 1, 0, &e);
                kernel_full(256, a, 1, MR, b + NR * 256, NR, c + NR, 32, 1, 0, &e);
            }
        }
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

// Whether the AVX-512 tile beats two AVX2 tiles here by at least 10%, timed
// (a few milliseconds).
static int avx512_faster_timed(void) {
    float *buf = xcalloc(6 * 256 + 2 * 16 * 256 + 6 * 32, sizeof(float));
    for (size_t i = 0; i < 6 * 256 + 2 * 16 * 256; i++) buf[i] = (float)(i % 7) * 0.125f;
    float *a = buf, *b = a + 6 * 256, *c = b + 2 * 16 * 256;
    double t2 = 0, t5 = 0;
    for (int round = 0; round < 2; round++) {  // the first round warms the units up
        t2 = time_tile(0, a, b, c, 200);
        t5 = time_tile(1, a, b, c, 200);
    }
    free(buf);
    return t5 < 0.9 * t2;
}

// Whether 512-bit operations run at full width here: by the family where it
// says (AMD's Zen 5, family 1Ah, and later do; Zen 4, 19h, splits them), else
// by timing the two tiles, once.
static int avx512_pays(void) {
    int amd;
    unsigned family = cpu_family(&amd);
    return (amd && family >= 0x1a) || avx512_faster_timed();
}
#endif

GemmKernel gemm_kernel_by_timing(void) {
#ifdef GEMM_AVX2
    return gemm_kernel_available(GEMM_KERNEL_AVX512) && avx512_faster_timed() ? GEMM_KERNEL_AVX512 : GEMM_KERNEL_AVX2;
#else
    return GEMM_KERNEL_PORTABLE;
#endif
}

// Chosen once; a race between threads chooses twice, harmlessly (the same
// bits either way).
GemmKernel gemm_kernel(void) {
    int k = __atomic_load_n(&kernel_choice, __ATOMIC_RELAXED);
    if (k >= 0) return (GemmKernel)k;
#ifdef GEMM_AVX2
    k = gemm_kernel_available(GEMM_KERNEL_AVX512) && avx512_pays() ? GEMM_KERNEL_AVX512 : GEMM_KERNEL_AVX2;
#else
    k = GEMM_KERNEL_PORTABLE;
#endif
    __atomic_store_n(&kernel_choice, k, __ATOMIC_RELAXED);
    return (GemmKernel)k;
}

// ---------------------------------------------------------------------------
// The blocked product.

typedef struct {
    int ta, tb;
    size_t M, N, K;
    real alpha, beta;
    const real *A, *B;
    size_t lda, ldb, ldc;
    real *C;
    size_t nkb;   // number of K blocks
    size_t mc;    // rows per A block: at most MC, a multiple of MR
    size_t njp;   // parts each NC block of columns is cut into (work items)
    int direct_a;  // the kernel reads A in place
    int direct_b;  // the kernel reads full panels of B in place
    real *bpack;  // shared packed B block
    const real *bias;  // added to every row of C, or NULL
    int relu;
} Gemm;

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// Where B micro-panel t of the block at (j, k0) is read from: its packed
// copy, or B itself when the kernel reads full panels in place.
static const real *b_panel(const Gemm *g, size_t t, size_t j, size_t nr, size_t k0, size_t kc, size_t *bs) {
    if (g->direct_b && nr == NR) {
        *bs = g->ldb;
        return g->B + k0 * g->ldb + j;
    }
    *bs = NR;
    return g->bpack + t * NR * kc;
}

// Where row panel s of A (rows from i) is read from, and its strides.
static const real *a_panel(const Gemm *g, const real *apack, size_t s, size_t i, size_t k0, size_t kc,
                           size_t *ars, size_t *aks) {
    *ars = 1, *aks = MR;  // a packed panel
    if (g->direct_a && !g->ta) {
        *ars = g->lda, *aks = 1;
        return g->A + i * g->lda + k0;
    }
    if (g->direct_a) {
        *ars = 1, *aks = g->lda;
        return g->A + k0 * g->lda + i;
    }
    return apack + s * MR * kc;
}

// Rows [i0, i0+mc) x B micro-panel t, or with wide the two full panels t and
// t+1 side by side (the AVX-512 kernel's 32 columns; edge rows still run
// the AVX2 kernels, panel by panel).
static void compute_panels(const Gemm *g, const real *apack, size_t i0, size_t mc, size_t jc, size_t t,
                           int wide, size_t k0, size_t kc, real beta, int first, int last) {
    size_t j = jc + t * NR, nr = min_sz(NR, g->N - j), bs;
    const real *bp = b_panel(g, t, j, nr, k0, kc, &bs), *bp1 = NULL;
    if (wide) bp1 = b_panel(g, t + 1, j + NR, NR, k0, kc, &bs);
    Epi e = {first && g->bias ? g->bias + j : NULL, last && g->relu};
    Epi e1 = {e.bias ? e.bias + NR : NULL, e.relu};
    for (size_t s = 0, nmp = ceil_div(mc, MR); s < nmp; s++) {
        size_t i = i0 + s * MR, mr = min_sz(MR, g->M - i), ars, aks;
        const real *ap = a_panel(g, apack, s, i, k0, kc, &ars, &aks);
        real *c = g->C + i * g->ldc + j;
#ifdef GEMM_AVX2
        if (wide && mr == MR) {
            gemm_kernel_avx512(kc, ap, ars, aks, bp, bp1, bs, c, g->ldc, g->alpha, beta, &e);
            continue;
        }
#endif
        if (mr == MR && nr == NR) kernel_full(kc, ap, ars, aks, bp, bs, c, g->ldc, g->alpha, beta, &e);
        else kernel_edge(mr, nr, kc, ap, ars, aks, bp, bs, c, g->ldc, g->alpha, beta, &e);
        if (!wide) continue;
        if (mr == MR) kernel_full(kc, ap, ars, aks, bp1, bs, c + NR, g->ldc, g->alpha, beta, &e1);
        else kernel_edge(mr, NR, kc, ap, ars, aks, bp1, bs, c + NR, g->ldc, g->alpha, beta, &e1);
    }
}

// One work item: rows [i0, i0+mc) x micro-panels [t0, t1) of the current
// B block, for k in [k0, k0+kc). With the AVX-512 kernel, full panels go in
// pairs. (Which kernel computes a tile changes no bits: every kernel sums
// each element the same way.)
static void compute_item(const Gemm *g, const real *apack, size_t i0, size_t mc, size_t jc,
                         size_t t0, size_t t1, size_t k0, size_t kc, real beta, int first, int last) {
    int avx512 = gemm_kernel() == GEMM_KERNEL_AVX512;
    for (size_t t = t0; t < t1; t++) {
        int wide = avx512 && t + 1 < t1 && g->N - (jc + t * NR) >= 2 * NR;
        compute_panels(g, apack, i0, mc, jc, t, wide, k0, kc, beta, first, last);
        t += (size_t)wide;
    }
}

// Packs B micro-panel t of the block at (jc, k0) unless the kernel reads it
// in place.
static void pack_b_panel(const Gemm *g, size_t jc, size_t k0, size_t kc, size_t t) {
    size_t j = jc + t * NR, nr = min_sz(NR, g->N - j);
    if (!(g->direct_b && nr == NR))
        pack_b(g->bpack + t * NR * kc, g->B, g->ldb, g->tb, j, nr, k0, kc);
}

static void run(const Gemm *g, int par) {
    size_t nic = ceil_div(g->M, g->mc);
    size_t kc_max = ceil_div(g->K, g->nkb);
    PackBuf *buf = pack_buf();
    real *apack = grow(&buf->a_raw, &buf->a, &buf->a_cap,
                       ceil_div(g->mc, MR) * MR * kc_max + 2 * NR);
    for (size_t jc = 0; jc < g->N; jc += NC) {
        size_t nc = min_sz(NC, g->N - jc);
        size_t np = ceil_div(nc, NR);
        size_t njp = min_sz(g->njp, np);
        size_t nitems = nic * njp;
        for (size_t p = 0; p < g->nkb; p++) {
            size_t k0 = g->K * p / g->nkb;
            size_t kc = g->K * (p + 1) / g->nkb - k0;
            real beta = p == 0 ? g->beta : 1;  // later K blocks add to C
            if (par) {
#pragma omp for schedule(dynamic, 1)
                for (size_t t = 0; t < np; t++) pack_b_panel(g, jc, k0, kc, t);
            } else {
                for (size_t t = 0; t < np; t++) pack_b_panel(g, jc, k0, kc, t);
            }
            size_t packed = SIZE_MAX;  // which row block apack holds
#define ITEM(w)                                                                     \
    do {                                                                            \
        size_t ib = (w) / njp, jp = (w) % njp;                                      \
        size_t i0 = ib * g->mc, mc = min_sz(g->mc, g->M - i0);                      \
        if (packed != ib && !g->direct_a) {                                         \
            pack_a(apack, g->A, g->lda, g->ta, i0, mc, k0, kc);                     \
            packed = ib;                                                            \
        }                                                                           \
        compute_item(g, apack, i0, mc, jc, jp * np / njp, (jp + 1) * np / njp, k0,  \
                     kc, beta, p == 0, p + 1 == g->nkb);                            \
    } while (0)
            if (par) {
#pragma omp for schedule(dynamic, 1)
                for (size_t w = 0; w < nitems; w++) ITEM(w);
            } else {
                for (size_t w = 0; w < nitems; w++) ITEM(w);
            }
#undef ITEM
        }
    }
}

// One row of A (M = 1) without bias or clamp, as at every step of decoding
// (a query against its cached keys, its weights against the cached values):
// the blocked path would pack B for a single row. The same sums as the
// kernels make: the same K blocks, each element summed in k order from zero
// with the same operation per term (an FMA where the kernel has one), then
// alpha * sum, and beta * C added as the kernel adds it. So the same bits.
#define TERM(acc, a, b) gemm_term(acc, a, b)
#ifdef GEMM_AVX2
#define PLUS_BETA_C(beta, c, t) fmaf(beta, c, t)
#else
#define PLUS_BETA_C(beta, c, t) ((beta) * (c) + (t))
#endif
// acc[j] (j < nj) = TERM-sum over k in [k0, k1) of a(k) B[k ldb + j], a(k) = A[k as].
static void row_sums_nn(real *acc, size_t nj, size_t k0, size_t k1, const real *A, size_t as, const real *B,
                        size_t ldb) {
    size_t j = 0;
#ifdef GEMM_AVX2
    // Four vectors of 8 sums side by side, the last ones masked: lanes are
    // independent (the same FMA per term), and four chains hide the latency.
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (; j < nj; j += 32) {
        int left = (int)(nj - j < 32 ? nj - j : 32);
        __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
        __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
        __m256i m2 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 16), lane);
        __m256i m3 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 24), lane);
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t k = k0; k < k1; k++) {
            __m256 a = _mm256_set1_ps(A[k * as]);
            const real *b = B + k * ldb + j;
            s0 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b, m0), s0);
            s1 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 8, m1), s1);
            s2 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 16, m2), s2);
            s3 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 24, m3), s3);
        }
        _mm256_maskstore_ps(acc + j, m0, s0);
        _mm256_maskstore_ps(acc + j + 8, m1, s1);
        _mm256_maskstore_ps(acc + j + 16, m2, s2);
        _mm256_maskstore_ps(acc + j + 24, m3, s3);
    }
#endif
    for (; j < nj; j++) {
        real t = 0;
        for (size_t k = k0; k < k1; k++) t = TERM(t, A[k * as], B[k * ldb + j]);
        acc[j] = t;
    }
}

static void row_product(const GemmCall *g) {
    size_t N = g->N, K = g->K, nkb = ceil_div(K, KC);
    const real *A = g->A, *B = g->B;
    real *C = g->C;
    for (size_t p = 0; p < nkb; p++) {
        size_t k0 = K * p / nkb, k1 = K * (p + 1) / nkb;
        real beta = p == 0 ? g->beta : 1;
        for (size_t j0 = 0; j0 < N; j0 += 64) {
            size_t nj = N - j0 < 64 ? N - j0 : 64;
            real acc[64] = {0};
            if (g->trans_b) {  // B(k, j) = B[j ldb + k]: 8 sums side by side (independent chains)
                for (size_t j = 0; j < nj; j += 8) {
                    size_t m = nj - j < 8 ? nj - j : 8;
                    const real *b = B + (j0 + j) * g->ldb;
                    real s8[8] = {0};
                    for (size_t k = k0; k < k1; k++) {
                        real a = g->trans_a ? A[k * g->lda] : A[k];
                        for (size_t i = 0; i < m; i++) s8[i] = TERM(s8[i], a, b[i * g->ldb + k]);
                    }
                    memcpy(acc + j, s8, m * sizeof(real));
                }
            } else {           // B(k, j) = B[k ldb + j]: along rows of B
                row_sums_nn(acc, nj, k0, k1, A, g->trans_a ? g->lda : 1, B + j0, g->ldb);
            }
            for (size_t j = 0; j < nj; j++) {
                real t = g->alpha * acc[j];
                C[j0 + j] = beta != 0 ? PLUS_BETA_C(beta, C[j0 + j], t) : t;
            }
        }
    }
}

GemmSplit gemm_split(size_t M, size_t npan, double fmas, size_t mr, size_t mc_max) {
    GemmSplit sp = {1, 0, 1};
    if (!omp_in_parallel() && fmas >= PAR_MIN_FMAS) sp.nt = omp_get_max_threads();
    size_t nic = ceil_div(M, mc_max), nt = (size_t)sp.nt;
    if (nt > 1) nic = ceil_div(nic, nt) * nt;
    sp.mc = ceil_div(ceil_div(M, nic), mr) * mr;
    nic = ceil_div(M, sp.mc);
    while (nt > 1 && nic * sp.njp < 4 * nt && sp.njp < npan) sp.njp++;
    return sp;
}

void gemm_call(const GemmCall *call) {
    size_t M = call->M, N = call->N, K = call->K, ldc = call->ldc;
    real beta = call->beta, *C = call->C;
    const real *bias = call->bias;
    int relu = call->relu, trans_b = call->trans_b;
    if (M == 0 || N == 0) return;
    if (K == 0) {  // C = beta * C or the bias, then the clamp
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                real t = bias ? bias[j] : beta != 0 ? beta * C[i * ldc + j] : 0;
                C[i * ldc + j] = relu && !(t > 0) ? 0 : t;
            }
        return;
    }
    if (call->bf16) {
        gemm_bf16_call(call);
        return;
    }
    if (M == 1 && !bias && !relu) {
        row_product(call);
        return;
    }
    Gemm g = {.ta = call->trans_a, .tb = trans_b, .M = M, .N = N, .K = K,
              .alpha = call->alpha, .beta = bias ? 0 : beta, .A = call->A, .B = call->B,
              .lda = call->lda, .ldb = call->ldb, .ldc = ldc, .C = C, .bias = bias, .relu = relu};
    g.nkb = ceil_div(K, KC);
    size_t kc_max = ceil_div(K, g.nkb);
    size_t nc_max = min_sz(NC, N);
    size_t np_max = ceil_div(nc_max, NR);

    GemmSplit sp = gemm_split(M, np_max, (double)M * (double)N * (double)K, MR, MC);
    int nt = sp.nt;
    g.mc = sp.mc;
    g.njp = sp.njp;
    size_t nic = ceil_div(M, g.mc);

    // With a single row block each B panel is used by one work item only, so
    // packing it does not pay when B's rows already hold its NR values side by
    // side (op(B) = B): the kernel then reads B in place. (Where the kernel
    // reads its values from changes no arithmetic.)
    g.direct_b = !trans_b && nic == 1;
    // Likewise for A when at most four B panels use each A panel: small
    // products such as the attention heads and the weight gradients of narrow
    // layers then skip packing A. The kernel reads op(A) = A along rows, and
    // op(A) = A^T six contiguous values per k.
    g.direct_a = N <= 4 * NR;

    PackBuf *buf = pack_buf();
    g.bpack = grow(&buf->b_raw, &buf->b, &buf->b_cap, np_max * NR * kc_max);
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        run(&g, 1);
    } else {
        run(&g, 0);
    }
}

void gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K,
          real alpha, const real *A, size_t lda, const real *B, size_t ldb,
          real beta, real *C, size_t ldc) {
    gemm_call(&(GemmCall){trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, 0});
}

// Below this many multiply-adds each, the two products of a pair go side by
// side (tiny and small layers); above it each one is split over all threads.
#define PAIR_MAX_FMAS 5.4e8

void gemm_pair(const GemmCall *a, const GemmCall *b) {
    double fa = (double)a->M * (double)a->N * (double)a->K;
    double fb = (double)b->M * (double)b->N * (double)b->K;
    if (omp_in_parallel() || omp_get_max_threads() < 2 || fb > PAIR_MAX_FMAS ||
        fa > PAIR_MAX_FMAS || fa + fb < PAR_MIN_FMAS) {
        gemm_call(a);
        gemm_call(b);
        return;
    }
    // Whichever thread comes first takes the first product: a thread the OS
    // has descheduled does not hold the other one's product back.
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
    for (int i = 0; i < 2; i++) gemm_call(i == 0 ? a : b);
}

void gemm_reference(int trans_a, int trans_b, size_t M, size_t N, size_t K,
                    real alpha, const real *A, size_t lda, const real *B, size_t ldb,
                    real beta, real *C, size_t ldc) {
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            real sum = 0;
            for (size_t k = 0; k < K; k++) {
                real a = trans_a ? A[k * lda + i] : A[i * lda + k];
                real b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                sum += a * b;
            }
            real t = alpha * sum;
            C[i * ldc + j] = beta != 0 ? beta * C[i * ldc + j] + t : t;
        }
    }
}
