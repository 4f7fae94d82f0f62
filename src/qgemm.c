// qgemm.c — the int8 matrix product (qgemm.h).
#include "qgemm.h"
#include "par.h"
#include "util.h"

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
    return (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
}

static void alloc_matrix(QMatrix *m, size_t n, size_t k) {
    m->n = n;
    m->k = k;
    m->kp = round_up(k);
    m->q = xcalloc(n * m->kp + QGEMM_KSTEP, 1);
    m->scale = xcalloc(n ? n : 1, sizeof(float));
    m->colsum = xcalloc(n ? n : 1, sizeof(int32_t));
}

static void sum_rows(QMatrix *m) {
    for (size_t j = 0; j < m->n; j++) {
        int32_t s = 0;
        for (size_t i = 0; i < m->k; i++) s += m->q[j * m->kp + i];
        m->colsum[j] = s;
    }
}

void qmatrix_quantize(QMatrix *m, const real *w, size_t n, size_t k, int in_out) {
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
        real inv = 127 / maxabs;
        for (size_t i = 0; i < k; i++)
            m->q[j * m->kp + i] = quantize_value(in_out ? w[i * n + j] : w[j * k + i], inv);
    }
    sum_rows(m);
}

void qmatrix_from_int8(QMatrix *m, const int8_t *q, const float *scale, size_t n, size_t k) {
    alloc_matrix(m, n, k);
    for (size_t j = 0; j < n; j++) memcpy(m->q + j * m->kp, q + j * k, k);
    if (n) memcpy(m->scale, scale, n * sizeof(float));
    sum_rows(m);
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
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- the sums
// Every kernel computes acc[r][c] = a row r . w row c over kp values for a
// block of rows and outputs; blocks of 4 rows x 2 outputs, edges one row or
// one output at a time. The rows come prepared for the kernel (prepare()).

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define HAVE_VNNI 1
#endif

#ifdef __AVX2__
static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define WIDEN(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define MADD(s, x, w) s = _mm256_add_epi32(s, _mm256_madd_epi16(x, w))

// AVX2: a as int16, 16 values per step.
static void block4x2_avx2(int32_t *acc, size_t ld, const int16_t *a, const int8_t *w, size_t kp) {
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
    for (size_t k = 0; k < kp; k += 16) {
        __m256i w0 = WIDEN(w + k), w1 = WIDEN(w + kp + k), x;
        x = LOAD(a + k);          MADD(s00, x, w0); MADD(s01, x, w1);
        x = LOAD(a + kp + k);     MADD(s10, x, w0); MADD(s11, x, w1);
        x = LOAD(a + 2 * kp + k); MADD(s20, x, w0); MADD(s21, x, w1);
        x = LOAD(a + 3 * kp + k); MADD(s30, x, w0); MADD(s31, x, w1);
    }
    acc[0] = hsum(s00), acc[1] = hsum(s01), acc[ld] = hsum(s10), acc[ld + 1] = hsum(s11);
    acc[2 * ld] = hsum(s20), acc[2 * ld + 1] = hsum(s21), acc[3 * ld] = hsum(s30), acc[3 * ld + 1] = hsum(s31);
}

static int32_t dot_avx2(const int16_t *a, const int8_t *w, size_t kp) {
    __m256i s = _mm256_setzero_si256();
    for (size_t k = 0; k < kp; k += 16) MADD(s, LOAD(a + k), WIDEN(w + k));
    return hsum(s);
}
#endif

#ifdef HAVE_VNNI
// VNNI: a as unsigned bytes (value + 128), 32 values per step; the +128 adds
// 128 * colsum to every sum, taken off at the end (exactly: integers).
#define DP(s, x, w) s = _mm256_dpbusd_epi32(s, x, w)
static void block4x2_vnni(int32_t *acc, size_t ld, const uint8_t *a, const int8_t *w, size_t kp, const int32_t *cs) {
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
    for (size_t k = 0; k < kp; k += 32) {
        __m256i w0 = LOAD(w + k), w1 = LOAD(w + kp + k), x;
        x = LOAD(a + k);          DP(s00, x, w0); DP(s01, x, w1);
        x = LOAD(a + kp + k);     DP(s10, x, w0); DP(s11, x, w1);
        x = LOAD(a + 2 * kp + k); DP(s20, x, w0); DP(s21, x, w1);
        x = LOAD(a + 3 * kp + k); DP(s30, x, w0); DP(s31, x, w1);
    }
    int32_t c0 = 128 * cs[0], c1 = 128 * cs[1];
    acc[0] = hsum(s00) - c0, acc[1] = hsum(s01) - c1, acc[ld] = hsum(s10) - c0, acc[ld + 1] = hsum(s11) - c1;
    acc[2 * ld] = hsum(s20) - c0, acc[2 * ld + 1] = hsum(s21) - c1;
    acc[3 * ld] = hsum(s30) - c0, acc[3 * ld + 1] = hsum(s31) - c1;
}

static int32_t dot_vnni(const uint8_t *a, const int8_t *w, size_t kp, int32_t cs) {
    __m256i s = _mm256_setzero_si256();
    for (size_t k = 0; k < kp; k += 32) DP(s, LOAD(a + k), LOAD(w + k));
    return hsum(s) - 128 * cs;
}
#endif

static int32_t dot_portable(const int8_t *a, const int8_t *w, size_t kp) {
    int32_t s = 0;
    for (size_t k = 0; k < kp; k++) s += (int32_t)a[k] * (int32_t)w[k];
    return s;
}

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

// Bytes per prepared value: int16 for AVX2, a byte otherwise.
static size_t prepared_size(QgemmKernel k) { return k == QGEMM_AVX2 ? 2 : 1; }

// n int8 values as the kernel reads them.
static void prepare(void *dst, const int8_t *q, size_t n, QgemmKernel k) {
    if (k == QGEMM_AVX2)
        for (size_t i = 0; i < n; i++) ((int16_t *)dst)[i] = q[i];
    else if (k == QGEMM_VNNI)
        for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)(q[i] + 128);
    else
        memcpy(dst, q, n);
}

// Rows [0, M) of the prepared a against outputs [j0, j1): acc (M, ld) at column j0.
static void sums(int32_t *acc, size_t ld, const void *a, size_t M, const QMatrix *m, size_t j0, size_t j1,
                 QgemmKernel kern) {
    size_t kp = m->kp;
    for (size_t j = j0; j < j1; j += 2) {
        size_t nr = j + 2 <= j1 ? 2 : 1;
        const int8_t *w = m->q + j * kp;
        for (size_t i = 0; i < M; i += 4) {
            size_t mr = i + 4 <= M ? 4 : M - i;
            int32_t *o = acc + i * ld + j;
#ifdef __AVX2__
            if (kern == QGEMM_AVX2) {
                const int16_t *x = (const int16_t *)a + i * kp;
                if (mr == 4 && nr == 2) block4x2_avx2(o, ld, x, w, kp);
                else
                    for (size_t r = 0; r < mr; r++)
                        for (size_t c = 0; c < nr; c++) o[r * ld + c] = dot_avx2(x + r * kp, w + c * kp, kp);
                continue;
            }
#endif
#ifdef HAVE_VNNI
            if (kern == QGEMM_VNNI) {
                const uint8_t *x = (const uint8_t *)a + i * kp;
                if (mr == 4 && nr == 2) block4x2_vnni(o, ld, x, w, kp, m->colsum + j);
                else
                    for (size_t r = 0; r < mr; r++)
                        for (size_t c = 0; c < nr; c++)
                            o[r * ld + c] = dot_vnni(x + r * kp, w + c * kp, kp, m->colsum[j + c]);
                continue;
            }
#endif
            const int8_t *x = (const int8_t *)a + i * kp;
            for (size_t r = 0; r < mr; r++)
                for (size_t c = 0; c < nr; c++) o[r * ld + c] = dot_portable(x + r * kp, w + c * kp, kp);
        }
    }
}

int qgemm_int32(int32_t *acc, const int8_t *a, size_t M, const QMatrix *m, QgemmKernel kernel) {
    if (kernel == QGEMM_BEST) kernel = best();
    if (!available(kernel)) return 0;
    void *x = xmalloc(M * m->kp * prepared_size(kernel) + 64);
    prepare(x, a, M * m->kp, kernel);
    sums(acc, m->n, x, M, m, 0, m->n, kernel);
    free(x);
    return 1;
}

// ---------------------------------------------------------------- qgemm
// The caller's scratch for quantized rows and sums, grown and kept; every
// block stays reachable from `all` (LeakSanitizer) when its thread ends.
typedef struct Scratch {
    int8_t *q;
    void *prepared;
    int32_t *acc;
    float *row_scale;
    size_t q_cap, prepared_cap, acc_cap, rows_cap;
    struct Scratch *next;
} Scratch;
static _Thread_local Scratch *tls_scratch;
static Scratch *all_scratch;

static void *grow(void *p, size_t *cap, size_t want) {
    if (*cap >= want) return p;
    *cap = want;
    return xrealloc(p, want);
}

static Scratch *scratch(size_t values, size_t prepared_bytes, size_t sums, size_t rows) {
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
    s->acc = grow(s->acc, &s->acc_cap, sums * sizeof(int32_t));
    s->row_scale = grow(s->row_scale, &s->rows_cap, rows * sizeof(float));
    return s;
}

// One row of in as int8 (zero after k) and its scale.
static void quantize_row(int8_t *q, float *scale, const real *x, size_t k, size_t kp) {
    real maxabs = 0;
    for (size_t i = 0; i < k; i++)
        if (fabs(x[i]) > maxabs) maxabs = fabs(x[i]);
    *scale = (float)(maxabs / 127);
    real inv = maxabs > 0 ? 127 / maxabs : 0;
    for (size_t i = 0; i < k; i++) q[i] = quantize_value(x[i], inv);
    memset(q + k, 0, kp - k);
}

enum { COLS_PIECE = 32 };  // outputs per work item

void qgemm(real *out, size_t ldo, const real *in, size_t ldi, size_t M, const QMatrix *m,
           const real *bias, int relu) {
    size_t n = m->n, kp = m->kp;
    if (M == 0 || n == 0) return;
    QgemmKernel kern = best();
    Scratch *s = scratch(M * kp, M * kp * prepared_size(kern) + 64, M * n, M);
    for (size_t i = 0; i < M; i++) quantize_row(s->q + i * kp, &s->row_scale[i], in + i * ldi, m->k, kp);
    prepare(s->prepared, s->q, M * kp, kern);
    int32_t *acc = s->acc;
    const void *a = s->prepared;
    const float *rs = s->row_scale;
    size_t pieces = (n + COLS_PIECE - 1) / COLS_PIECE;
    #pragma omp parallel for schedule(dynamic, 1) if ((double)M * (double)n * (double)kp > par_min_fmas)
    for (size_t p = 0; p < pieces; p++) {
        size_t j0 = p * COLS_PIECE, j1 = j0 + COLS_PIECE < n ? j0 + COLS_PIECE : n;
        sums(acc, n, a, M, m, j0, j1, kern);
        for (size_t i = 0; i < M; i++)
            for (size_t j = j0; j < j1; j++) {
                real v = (real)((float)acc[i * n + j] * (rs[i] * m->scale[j]));
                if (bias) v += bias[j];
                out[i * ldo + j] = relu && !(v > 0) ? 0 : v;
            }
    }
}
