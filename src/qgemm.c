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
}

void qmatrix_from_int8(QMatrix *m, const int8_t *q, const float *scale, size_t n, size_t k) {
    alloc_matrix(m, n, k);
    for (size_t j = 0; j < n; j++) memcpy(m->q + j * m->kp, q + j * k, k);
    if (n) memcpy(m->scale, scale, n * sizeof(float));
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
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- the sums
// acc[r][c] (r < mr, c < nr) = a row r . w row c over kp values. Called with
// constant mr, nr so that each use compiles to its own register block.
#ifdef __AVX2__
static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline __attribute__((always_inline)) void block_avx2(int mr, int nr, int32_t *acc, size_t ldacc,
                                                             const int16_t *a, const int8_t *w, size_t kp) {
    __m256i s[4][2];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) s[r][c] = _mm256_setzero_si256();
    for (size_t k = 0; k < kp; k += 16) {
        __m256i wv[2];
        for (int c = 0; c < nr; c++)
            wv[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + c * kp + k)));
        for (int r = 0; r < mr; r++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + r * kp + k));
            for (int c = 0; c < nr; c++) s[r][c] = _mm256_add_epi32(s[r][c], _mm256_madd_epi16(x, wv[c]));
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) acc[r * ldacc + c] = hsum(s[r][c]);
}
#endif

static void block_portable(int mr, int nr, int32_t *acc, size_t ldacc, const int16_t *a, const int8_t *w,
                           size_t kp) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) {
            int32_t s = 0;
            for (size_t k = 0; k < kp; k++) s += (int32_t)a[r * kp + k] * (int32_t)w[c * kp + k];
            acc[r * ldacc + c] = s;
        }
}

// Rows [0, M) against outputs [j0, j1): acc (M, ldacc) at column j0.
static void sums(int32_t *acc, size_t ldacc, const int16_t *a, size_t M, const QMatrix *m, size_t j0,
                 size_t j1, int portable) {
    size_t kp = m->kp;
    for (size_t j = j0; j < j1; j += 2) {
        int nr = j + 2 <= j1 ? 2 : 1;
        const int8_t *w = m->q + j * kp;
        for (size_t i = 0; i < M; i += 4) {
            int mr = i + 4 <= M ? 4 : (int)(M - i);
            int32_t *o = acc + i * ldacc + j;
            const int16_t *x = a + i * kp;
            if (portable) {
                block_portable(mr, nr, o, ldacc, x, w, kp);
                continue;
            }
#ifdef __AVX2__
            if (mr == 4 && nr == 2) block_avx2(4, 2, o, ldacc, x, w, kp);
            else if (nr == 2) for (int r = 0; r < mr; r++) block_avx2(1, 2, o + r * ldacc, ldacc, x + r * kp, w, kp);
            else for (int r = 0; r < mr; r++) block_avx2(1, 1, o + r * ldacc, ldacc, x + r * kp, w, kp);
#else
            block_portable(mr, nr, o, ldacc, x, w, kp);
#endif
        }
    }
}

void qgemm_int32(int32_t *acc, const int16_t *a, size_t M, const QMatrix *m, int portable) {
    sums(acc, m->n, a, M, m, 0, m->n, portable);
}

// ---------------------------------------------------------------- qgemm
// The caller's scratch for quantized rows and sums, grown and kept; every
// block stays reachable from `all` (LeakSanitizer) when its thread ends.
typedef struct Scratch {
    int16_t *a;
    int32_t *acc;
    float *row_scale;
    size_t a_cap, acc_cap, rows_cap;
    struct Scratch *next;
} Scratch;
static _Thread_local Scratch *tls_scratch;
static Scratch *all_scratch;

static Scratch *scratch(size_t a_n, size_t acc_n, size_t rows) {
    Scratch *s = tls_scratch;
    if (!s) {
        s = tls_scratch = xcalloc(1, sizeof *s);
#pragma omp critical(qgemm_scratch)
        {
            s->next = all_scratch;
            all_scratch = s;
        }
    }
    if (s->a_cap < a_n) s->a = xrealloc(s->a, (s->a_cap = a_n) * sizeof *s->a);
    if (s->acc_cap < acc_n) s->acc = xrealloc(s->acc, (s->acc_cap = acc_n) * sizeof *s->acc);
    if (s->rows_cap < rows) s->row_scale = xrealloc(s->row_scale, (s->rows_cap = rows) * sizeof *s->row_scale);
    return s;
}

// Row i of in as int16 in -127..127 (zero after k) and its scale.
static void quantize_row(int16_t *q, float *scale, const real *x, size_t k, size_t kp) {
    real maxabs = 0;
    for (size_t i = 0; i < k; i++)
        if (fabs(x[i]) > maxabs) maxabs = fabs(x[i]);
    *scale = (float)(maxabs / 127);
    real inv = maxabs > 0 ? 127 / maxabs : 0;
    for (size_t i = 0; i < k; i++) q[i] = quantize_value(x[i], inv);
    for (size_t i = k; i < kp; i++) q[i] = 0;
}

enum { COLS_PIECE = 32 };  // outputs per work item

void qgemm(real *out, size_t ldo, const real *in, size_t ldi, size_t M, const QMatrix *m,
           const real *bias, int relu) {
    size_t n = m->n, kp = m->kp;
    if (M == 0 || n == 0) return;
    Scratch *s = scratch(M * kp + QGEMM_KSTEP, M * n, M);
    for (size_t i = 0; i < M; i++) quantize_row(s->a + i * kp, &s->row_scale[i], in + i * ldi, m->k, kp);
    int32_t *acc = s->acc;
    const int16_t *a = s->a;
    const float *rs = s->row_scale;
    size_t pieces = (n + COLS_PIECE - 1) / COLS_PIECE;
    #pragma omp parallel for schedule(dynamic, 1) if ((double)M * (double)n * (double)kp > par_min_fmas)
    for (size_t p = 0; p < pieces; p++) {
        size_t j0 = p * COLS_PIECE, j1 = j0 + COLS_PIECE < n ? j0 + COLS_PIECE : n;
        sums(acc, n, a, M, m, j0, j1, 0);
        for (size_t i = 0; i < M; i++)
            for (size_t j = j0; j < j1; j++) {
                real v = (real)((float)acc[i * n + j] * (rs[i] * m->scale[j]));
                if (bias) v += bias[j];
                out[i * ldo + j] = relu && !(v > 0) ? 0 : v;
            }
    }
}
