// kernels/qgemm.c — the int8 matrix product (qgemm.h).
#include "kernels/qgemm.h"
#include "kernels/par.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static size_t round_up(size_t k) { return (k + QGEMM_KSTEP - 1) / QGEMM_KSTEP * QGEMM_KSTEP; }

int8_t quantize_value(real x, real inv_scale) {
    double r = nearbyint((double)(x * inv_scale));  // default rounding: ties to even
    // Clamped before the cast (a float outside int8, or NaN, converted is
    // undefined behaviour); NaN, which no comparison holds for, becomes 0.
    return (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r == r ? r : 0);
}

// A row of k values at stride `stride` with largest magnitude maxabs > 0 (and
// finite) into q. 127 / maxabs overflows to inf for maxabs below about 3.7e-37
// (then 0 * inf is NaN and every other value clamps to +-127): such rows are
// scaled in double, where it is finite.
static void quantize_span(int8_t *q, const real *x, size_t stride, size_t k, real maxabs) {
    real inv = 127 / maxabs;
    if (isfinite(inv)) {
        for (size_t i = 0; i < k; i++) q[i] = quantize_value(x[i * stride], inv);
        return;
    }
    double invd = 127 / (double)maxabs;
    for (size_t i = 0; i < k; i++) {
        double r = nearbyint((double)x[i * stride] * invd);
        q[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
}

static void alloc_matrix(QMatrix *m, size_t n, size_t k) {
    m->n = n;
    m->k = k;
    m->kp = round_up(k);
    m->q = xcalloc(n * m->kp + QGEMM_KSTEP, 1);
    m->scale = xcalloc(n ? n : 1, sizeof(float));
    m->colsum = xcalloc(n ? n : 1, sizeof(int32_t));
}

static int8_t *pack_panels(const QMatrix *m, QgemmKernel k);
static QgemmKernel best(void);

// What every kernel needs beside the values: the row sums and the best
// kernel's panels.
static void finish(QMatrix *m) {
    for (size_t j = 0; j < m->n; j++) {
        int32_t s = 0;
        for (size_t i = 0; i < m->k; i++) s += m->q[j * m->kp + i];
        m->colsum[j] = s;
    }
    m->panels = pack_panels(m, best());
}

int qmatrix_quantize(QMatrix *m, const real *w, size_t n, size_t k, int in_out, size_t *bad) {
    for (size_t i = 0; i < n * k; i++)
        if (!isfinite(w[i])) {
            *bad = i;
            memset(m, 0, sizeof *m);
            return NMT_ERR_INPUT;
        }
    alloc_matrix(m, n, k);
    #pragma omp parallel for schedule(dynamic, 16) if ((double)n * (double)k > par_min_fmas)
    for (size_t j = 0; j < n; j++) {
        real maxabs = 0;
        for (size_t i = 0; i < k; i++) {
            real v = fabs(in_out ? w[i * n + j] : w[j * k + i]);
            if (v > maxabs) maxabs = v;
        }
        m->scale[j] = (float)(maxabs / 127);
        if (maxabs == 0) continue;  // the row stays zero, scale 0
        quantize_span(m->q + j * m->kp, in_out ? w + j : w + j * k, in_out ? n : 1, k, maxabs);
    }
    finish(m);
    return NMT_OK;
}

void qmatrix_from_int8(QMatrix *m, const int8_t *q, const float *scale, size_t n, size_t k) {
    alloc_matrix(m, n, k);
    for (size_t j = 0; j < n; j++) memcpy(m->q + j * m->kp, q + j * k, k);
    if (n) memcpy(m->scale, scale, n * sizeof(float));
    finish(m);
}

void qmatrix_dequantize(const QMatrix *m, real *w, int in_out) {
    for (size_t j = 0; j < m->n; j++)
        for (size_t i = 0; i < m->k; i++) {
            real v = (real)m->q[j * m->kp + i] * (real)m->scale[j];
            if (in_out) w[i * m->n + j] = v;
            else w[j * m->k + i] = v;
        }
}

void qmatrix_free(QMatrix *m) {
    free(m->q);
    free(m->scale);
    free(m->colsum);
    free(m->panels);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- the sums
// The SIMD kernels compute a tile of up to 4 rows x 16 outputs as eight
// vectors of 8 int32 sums, with no horizontal additions: the weights sit in
// panels of 16 outputs where each group of G consecutive inputs of the 16
// outputs lies side by side ([panel][k / G][16][G]), and each row's G inputs
// are broadcast to all lanes. G = 4 bytes for vpdpbusd (VNNI), G = 2 for
// vpmaddwd (AVX2, widened to int16 as they are loaded). The portable kernel
// reads the plain rows.

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define HAVE_VNNI 1
#endif

enum { TILE_ROWS = 8, TILE_COLS = 16 };

// Rows per tile: 8 with VNNI (16 accumulators: AVX-512 has 32 vector
// registers), 6 with AVX2 (12 of its 16).
static int tile_rows(QgemmKernel k) { return k == QGEMM_VNNI ? 8 : k == QGEMM_AVX2 ? 6 : 4; }

static size_t group_of(QgemmKernel k) { return k == QGEMM_VNNI ? 4 : 2; }

static int available(QgemmKernel k) {
    if (k == QGEMM_PORTABLE) return 1;
#ifdef __AVX2__
    if (k == QGEMM_AVX2) return 1;
#endif
#ifdef HAVE_VNNI
    if (k == QGEMM_VNNI) return 1;
#endif
    return 0;
}

static QgemmKernel best(void) {
    return available(QGEMM_VNNI) ? QGEMM_VNNI : available(QGEMM_AVX2) ? QGEMM_AVX2 : QGEMM_PORTABLE;
}

const char *qgemm_kernel_name(void) {
    QgemmKernel k = best();
    return k == QGEMM_VNNI ? "avx512-vnni" : k == QGEMM_AVX2 ? "avx2" : "portable";
}

static int8_t *pack_panels(const QMatrix *m, QgemmKernel k) {
    if (k == QGEMM_PORTABLE) return NULL;
    size_t G = group_of(k), kp = m->kp, np = (m->n + TILE_COLS - 1) / TILE_COLS;
    int8_t *b = xcalloc(np * kp * TILE_COLS + 64, 1);
    for (size_t p = 0; p < np; p++)
        for (size_t g = 0; g < kp / G; g++)
            for (size_t c = 0; c < TILE_COLS; c++) {
                size_t j = p * TILE_COLS + c;
                if (j < m->n) memcpy(b + ((p * (kp / G) + g) * TILE_COLS + c) * G, m->q + j * kp + g * G, G);
            }
    return b;
}

// Bytes per prepared activation: int16 for AVX2, a byte otherwise.
static size_t prepared_size(QgemmKernel k) { return k == QGEMM_AVX2 ? 2 : 1; }

// n int8 activations as the kernel reads them.
static void prepare(void *dst, const int8_t *q, size_t n, QgemmKernel k) {
    if (k == QGEMM_AVX2)
        for (size_t i = 0; i < n; i++) ((int16_t *)dst)[i] = q[i];
    else if (k == QGEMM_VNNI)
        for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)(q[i] + 128);
    else
        memcpy(dst, q, n);
}


// tile[r][c] (r < mr) = prepared rows a (stride kp) . the panel's 16 outputs.
#ifdef __AVX2__
static int32_t load4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define DEFINE_TILE(NAME, ELEM, G, WLOAD, DOT)                                                          \
    static inline __attribute__((always_inline)) void NAME##_rows(int mr, int32_t tile[TILE_ROWS][TILE_COLS], \
                                                                   const ELEM *a, size_t kp, const int8_t *panel) { \
        __m256i s[TILE_ROWS][2];                                                                        \
        for (int r = 0; r < mr; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();                        \
        for (size_t g = 0; g < kp / G; g++) {                                                           \
            __m256i w0, w1;                                                                             \
            WLOAD(panel + g * TILE_COLS * G);                                                           \
            for (int r = 0; r < mr; r++) {                                                              \
                __m256i x = _mm256_set1_epi32(load4(a + r * kp + g * G));                               \
                DOT(s[r][0], x, w0);                                                                    \
                DOT(s[r][1], x, w1);                                                                    \
            }                                                                                           \
        }                                                                                               \
        for (int r = 0; r < mr; r++) {                                                                  \
            _mm256_storeu_si256((__m256i *)tile[r], s[r][0]);                                           \
            _mm256_storeu_si256((__m256i *)(tile[r] + 8), s[r][1]);                                     \
        }                                                                                               \
    }                                                                                                   \
    static void NAME(int mr, int32_t tile[TILE_ROWS][TILE_COLS], const ELEM *a, size_t kp, const int8_t *panel) { \
        switch (mr) {  /* each row count its own unrolled copy */                                       \
        case 8: NAME##_rows(8, tile, a, kp, panel); break;                                              \
        case 7: NAME##_rows(7, tile, a, kp, panel); break;                                              \
        case 6: NAME##_rows(6, tile, a, kp, panel); break;                                              \
        case 5: NAME##_rows(5, tile, a, kp, panel); break;                                              \
        case 4: NAME##_rows(4, tile, a, kp, panel); break;                                              \
        case 3: NAME##_rows(3, tile, a, kp, panel); break;                                              \
        case 2: NAME##_rows(2, tile, a, kp, panel); break;                                              \
        default: NAME##_rows(1, tile, a, kp, panel); break;                                             \
        }                                                                                               \
    }

#define WIDEN_PAIRS(p)                                                   \
    w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)));  \
    w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p) + 1))
#define MADD(s, x, w) s = _mm256_add_epi32(s, _mm256_madd_epi16(x, w))
DEFINE_TILE(tile_avx2_edge, int16_t, 2, WIDEN_PAIRS, MADD)

// The full 6-row tile, accumulators named (see tile_vnni).
#define ROW_MADD(r)                                                        \
    x = _mm256_set1_epi32(load4(a + (r) * kp + g * 2));                    \
    MADD(s##r##0, x, w0);                                                  \
    MADD(s##r##1, x, w1)
#define ROW_STORE(r)                                                       \
    _mm256_storeu_si256((__m256i *)tile[r], s##r##0);                      \
    _mm256_storeu_si256((__m256i *)(tile[r] + 8), s##r##1)
static void tile_avx2(int mr, int32_t tile[TILE_ROWS][TILE_COLS], const int16_t *a, size_t kp, const int8_t *panel) {
    if (mr != 6) {
        tile_avx2_edge(mr, tile, a, kp, panel);
        return;
    }
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00,
            s31 = s00, s40 = s00, s41 = s00, s50 = s00, s51 = s00;
    for (size_t g = 0; g < kp / 2; g++) {
        __m256i w0, w1, x;
        WIDEN_PAIRS(panel + g * 32);
        ROW_MADD(0); ROW_MADD(1); ROW_MADD(2); ROW_MADD(3); ROW_MADD(4); ROW_MADD(5);
    }
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
}

#ifdef HAVE_VNNI
#define LOAD_QUADS(p)                                   \
    w0 = _mm256_loadu_si256((const __m256i *)(p));      \
    w1 = _mm256_loadu_si256((const __m256i *)(p) + 1)
#define DPBUSD(s, x, w) s = _mm256_dpbusd_epi32(s, x, w)
DEFINE_TILE(tile_vnni_edge, uint8_t, 4, LOAD_QUADS, DPBUSD)

// The full 8-row tile with its 16 accumulators named one by one: GCC keeps
// them in registers then (with an array it moved and spilled them).
#define ROW_DP(r)                                                          \
    x = _mm256_set1_epi32(load4(a + (r) * kp + g * 4));                    \
    s##r##0 = _mm256_dpbusd_epi32(s##r##0, x, w0);                         \
    s##r##1 = _mm256_dpbusd_epi32(s##r##1, x, w1)
static void tile_vnni(int mr, int32_t tile[TILE_ROWS][TILE_COLS], const uint8_t *a, size_t kp, const int8_t *panel) {
    if (mr != 8) {
        tile_vnni_edge(mr, tile, a, kp, panel);
        return;
    }
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00,
            s31 = s00, s40 = s00, s41 = s00, s50 = s00, s51 = s00, s60 = s00, s61 = s00, s70 = s00, s71 = s00;
    for (size_t g = 0; g < kp / 4; g++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(panel + g * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(panel + g * 64 + 32)), x;
        ROW_DP(0); ROW_DP(1); ROW_DP(2); ROW_DP(3); ROW_DP(4); ROW_DP(5); ROW_DP(6); ROW_DP(7);
    }
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7);
}
#endif
#endif

static void tile_portable(int mr, int32_t tile[TILE_ROWS][TILE_COLS], const int8_t *a, size_t kp,
                          const QMatrix *m, size_t j0, size_t nc) {
    for (int r = 0; r < mr; r++)
        for (size_t c = 0; c < nc; c++) {
            int32_t s = 0;
            const int8_t *w = m->q + (j0 + c) * kp;
            for (size_t k = 0; k < kp; k++) s += (int32_t)a[r * kp + k] * (int32_t)w[k];
            tile[r][c] = s;
        }
}

// The exact sums of rows [i, i + mr) against outputs [j0, j0 + nc) of panel
// j0 / 16, by kernel kern over the prepared rows a; panels as pack_panels(kern).
static void tile_sums(int32_t tile[TILE_ROWS][TILE_COLS], const void *a, size_t i, int mr, const QMatrix *m,
                      const int8_t *panels, size_t j0, size_t nc, QgemmKernel kern) {
    size_t kp = m->kp;
    const int8_t *panel = panels ? panels + (j0 / TILE_COLS) * kp * TILE_COLS : NULL;
#ifdef __AVX2__
    if (kern == QGEMM_AVX2) {
        tile_avx2(mr, tile, (const int16_t *)a + i * kp, kp, panel);
        return;
    }
#ifdef HAVE_VNNI
    if (kern == QGEMM_VNNI) {
        tile_vnni(mr, tile, (const uint8_t *)a + i * kp, kp, panel);
        for (int r = 0; r < mr; r++)  // the +128 shift's share
            for (size_t c = 0; c < nc; c++) tile[r][c] -= 128 * m->colsum[j0 + c];
        return;
    }
#endif
#else
    (void)kern, (void)panel;  // a build without AVX2 has the portable tile only
#endif
    tile_portable(mr, tile, (const int8_t *)a + i * kp, kp, m, j0, nc);
}

int qgemm_int32(int32_t *acc, const int8_t *a, size_t M, const QMatrix *m, QgemmKernel kernel) {
    if (kernel == QGEMM_BEST) kernel = best();
    if (!available(kernel)) return 0;
    void *x = xmalloc(M * m->kp * prepared_size(kernel) + 64);
    prepare(x, a, M * m->kp, kernel);
    int8_t *panels = pack_panels(m, kernel);
    int32_t tile[TILE_ROWS][TILE_COLS];
    size_t tr = (size_t)tile_rows(kernel);
    for (size_t j0 = 0; j0 < m->n; j0 += TILE_COLS)
        for (size_t i = 0; i < M; i += tr) {
            int mr = M - i < tr ? (int)(M - i) : (int)tr;
            size_t nc = m->n - j0 < TILE_COLS ? m->n - j0 : TILE_COLS;
            tile_sums(tile, x, i, mr, m, panels, j0, nc, kernel);
            for (int r = 0; r < mr; r++) memcpy(acc + (i + (size_t)r) * m->n + j0, tile[r], nc * sizeof(int32_t));
        }
    free(panels);
    free(x);
    return 1;
}

// ---------------------------------------------------------------- qgemm
// The caller's scratch for its quantized rows, grown and kept; every block
// stays reachable from `all_scratch` (LeakSanitizer) when its thread ends.
typedef struct Scratch {
    int8_t *q;
    void *prepared;
    float *row_scale;
    size_t q_cap, prepared_cap, rows_cap;
    struct Scratch *next;
} Scratch;
static _Thread_local Scratch *tls_scratch;
static Scratch *all_scratch;

static void *grow(void *p, size_t *cap, size_t want) {
    if (*cap >= want) return p;
    *cap = want;
    return xrealloc(p, want);
}

static Scratch *scratch(size_t values, size_t prepared_bytes, size_t rows) {
    Scratch *s = tls_scratch;
    if (!s) {
        s = tls_scratch = xcalloc(1, sizeof *s);
#pragma omp critical(qgemm_scratch)
        {
            s->next = all_scratch;
            all_scratch = s;
        }
    }
    s->q = grow(s->q, &s->q_cap, values);
    s->prepared = grow(s->prepared, &s->prepared_cap, prepared_bytes);
    s->row_scale = grow(s->row_scale, &s->rows_cap, rows * sizeof(float));
    return s;
}

// One row of in as int8 (zero after k) and its scale.
// A row holding a NaN or an infinity gets the scale NaN: its outputs are NaN,
// as the float product's would be (the decoder then stops on them), and its
// values, never converted, are 0.
static void quantize_row(int8_t *q, float *scale, const real *x, size_t k, size_t kp) {
    real maxabs = 0;
    int finite = 1;
    for (size_t i = 0; i < k; i++) {
        if (fabs(x[i]) > maxabs) maxabs = fabs(x[i]);
        finite &= isfinite(x[i]) != 0;
    }
    memset(q + k, 0, kp - k);
    if (!finite || maxabs == 0) {
        memset(q, 0, k);
        *scale = finite ? 0 : NAN;
        return;
    }
    *scale = (float)(maxabs / 127);
    quantize_span(q, x, 1, k, maxabs);
}

// out rows [i, i + mr), outputs [j0, j0 + nc) from their sums: the same
// operations in the same order for every kernel, so the same bits.
static void store_tile(real *out, size_t ldo, int32_t tile[TILE_ROWS][TILE_COLS], size_t i, int mr, size_t j0,
                       size_t nc, const float *rs, const QMatrix *m, const real *bias, int relu) {
    for (int r = 0; r < mr; r++) {
        real *o = out + (i + (size_t)r) * ldo + j0;
        size_t c = 0;
#if defined(__AVX2__) && !defined(NMT_DOUBLE)
        __m256 row = _mm256_set1_ps(rs[i + (size_t)r]), zero = _mm256_setzero_ps();
        for (; c + 8 <= nc; c += 8) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(tile[r] + c)));
            v = _mm256_mul_ps(v, _mm256_mul_ps(row, _mm256_loadu_ps(m->scale + j0 + c)));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j0 + c));
            if (relu) v = _mm256_max_ps(v, zero);  // max(-0, +0) is +0, as below
            _mm256_storeu_ps(o + c, v);
        }
#endif
        for (; c < nc; c++) {
            real v = (real)((float)tile[r][c] * (rs[i + (size_t)r] * m->scale[j0 + c]));
            if (bias) v += bias[j0 + c];
            o[c] = relu && !(v > 0) ? 0 : v;
        }
    }
}

void qgemm(real *out, size_t ldo, const real *in, size_t ldi, size_t M, const QMatrix *m,
           const real *bias, int relu) {
    size_t n = m->n, kp = m->kp;
    if (M == 0 || n == 0) return;
    QgemmKernel kern = best();
    Scratch *s = scratch(M * kp, M * kp * prepared_size(kern) + 64, M);
    #pragma omp parallel for schedule(dynamic, 8) if (M * kp > par_min_elems)
    for (size_t i = 0; i < M; i++) {
        quantize_row(s->q + i * kp, &s->row_scale[i], in + i * ldi, m->k, kp);
        prepare((char *)s->prepared + i * kp * prepared_size(kern), s->q + i * kp, kp, kern);
    }
    const void *a = s->prepared;
    const float *rs = s->row_scale;
    size_t panels = (n + TILE_COLS - 1) / TILE_COLS;
    // Work items: one panel of outputs for every row, so a thread reads its
    // weights once; rows are read by all.
    #pragma omp parallel for schedule(dynamic, 1) if ((double)M * (double)n * (double)kp > par_min_fmas)
    for (size_t p = 0; p < panels; p++) {
        int32_t tile[TILE_ROWS][TILE_COLS];
        size_t j0 = p * TILE_COLS, nc = n - j0 < TILE_COLS ? n - j0 : TILE_COLS, tr = (size_t)tile_rows(kern);
        for (size_t i = 0; i < M; i += tr) {
            int mr = M - i < tr ? (int)(M - i) : (int)tr;
            tile_sums(tile, a, i, mr, m, m->panels, j0, nc, kern);
            store_tile(out, ldo, tile, i, mr, j0, nc, rs, m, bias, relu);
        }
    }
}
