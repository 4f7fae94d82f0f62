// kernels/ops.c — forward/backward kernels. See ops.h for the conventions.
// Parallel loops split work so that each output element is computed by one
// thread in a fixed order: results are identical for any thread count.
#include "kernels/ops.h"
#include "kernels/gemm.h"
#include "kernels/par.h"
#include "common/rng.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#ifdef _OPENMP
#include <omp.h>
#endif


// Below this many elements a loop is not worth a parallel region (par.h:
// more on a shared machine).
#define PAR_MIN par_min_elems

// Loops hand out their iterations in small pieces as threads ask (dynamic
// scheduling): on a shared machine a thread the OS has descheduled holds up
// a parallel region only for the piece it is in, while the others take the
// rest. Each iteration is still computed by one thread, in one order, so the
// bits do not depend on who takes what.
#define ELEMS_PIECE 4096
#define ROWS_PIECE(width) ((int)((width) < 4096 ? 4096 / (width) : 1))
#define COLS_PIECE 64   // column blocks of the column sums

// ---------------------------------------------------------------- exponentials
// The loss reads N x V logits twice (forward and backward) and attention
// normalises every score row, so their exponentials are vectorised where the
// float build has AVX2 (exp8). Sums are taken in one fixed order per row,
// whatever the thread count.

#if !defined(NMT_DOUBLE) && defined(__AVX2__) && defined(__FMA__)
#define OPS_AVX2 1
#include <immintrin.h>

// e^x for 8 floats, x <= 88: x = n ln2 + r with |r| <= ln2/2 (ln2 in two
// parts, so n ln2 is exact), e^r by its Taylor polynomial to degree 7
// (truncation error below 1e-8 relative), times 2^n built in the exponent
// bits. Below -87.3, where 2^n would leave the normal range, the result is 0;
// NaN stays NaN.
static inline __m256 exp8(__m256 x) {
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);  // this order keeps a NaN: training stops on it
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, x);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// Lanes j < n of a row tail (n < 8): the mask for maskload/maskstore.
static inline __m256i tail_mask(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Horizontal maximum and sum of 8 floats, and sum of 4 doubles (fixed order).
static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

static inline double hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Adds the 8 floats of v to the double accumulators lo, hi.
static inline void acc8(__m256d *lo, __m256d *hi, __m256 v) {
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
#endif

void softmax_inplace(real *row, size_t n) {
#ifdef OPS_AVX2
    size_t j = 0, tail = n % 8;
    __m256i tm = tail_mask(tail);
    __m256 vmx = _mm256_set1_ps(row[0]);
    for (; j + 8 <= n; j += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(row + j));
    if (tail)
        vmx = _mm256_max_ps(vmx, _mm256_blendv_ps(_mm256_set1_ps(row[0]), _mm256_maskload_ps(row + j, tm),
                                                  _mm256_castsi256_ps(tm)));
    __m256 vm = _mm256_set1_ps(hmax8(vmx)), vs = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
        _mm256_storeu_ps(row + j, e);
        vs = _mm256_add_ps(vs, e);
    }
    if (tail) {
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(row + j, tm), vm)), _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(row + j, tm, e);
        vs = _mm256_add_ps(vs, e);
    }
    __m256 inv = _mm256_set1_ps(1 / hsum8(vs));
    for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv));
    if (tail) _mm256_maskstore_ps(row + j, tm, _mm256_mul_ps(_mm256_maskload_ps(row + j, tm), inv));
#else
    real mx = row[0];
    for (size_t j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    real sum = 0;
    for (size_t j = 0; j < n; j++) {
        row[j] = exp(row[j] - mx);
        sum += row[j];
    }
    real inv = 1 / sum;
    for (size_t j = 0; j < n; j++) row[j] *= inv;
#endif
}

void positions_table(real *pe, size_t maxT, size_t C) {
    for (size_t t = 0; t < maxT; t++)
        for (size_t i = 0; i < C; i += 2) {
            double angle = (double)t / pow(10000.0, (double)i / (double)C);
            pe[t * C + i] = (real)sin(angle);
            if (i + 1 < C) pe[t * C + i + 1] = (real)cos(angle);
        }
}

void embed_forward(real *out, const int *ids, const real *table, const real *pe,
                   size_t B, size_t T, size_t C, size_t t0, real scale) {
    #pragma omp parallel for schedule(dynamic, ROWS_PIECE(C)) if (B * T * C > PAR_MIN)
    for (size_t n = 0; n < B * T; n++) {
        const real *row = table + (size_t)ids[n] * C;
        real *o = out + n * C;
        if (!pe) {
            for (size_t c = 0; c < C; c++) o[c] = row[c] * scale;
            continue;
        }
        const real *pos = pe + (t0 + n % T) * C;
        for (size_t c = 0; c < C; c++) o[c] = row[c] * scale + pos[c];
    }
}

void embed_backward(real *dtable, const real *dout, const int *ids, size_t N, size_t C, real scale) {
    // Rows of dtable are shared between tokens: split by columns, so every
    // element is summed in token order by one thread.
    #pragma omp parallel for schedule(dynamic, 1) if (N * C > PAR_MIN)
    for (size_t c0 = 0; c0 < C; c0 += COLS_PIECE) {
        size_t c1 = c0 + COLS_PIECE < C ? c0 + COLS_PIECE : C;
        for (size_t n = 0; n < N; n++) {
            real *d = dtable + (size_t)ids[n] * C;
            const real *g = dout + n * C;
            for (size_t c = c0; c < c1; c++) d[c] += scale * g[c];
        }
    }
}

void linear_forward(real *out, const real *inp, const real *w, const real *b,
                    size_t N, size_t K, size_t M, int bf16) {
    gemm_call(&(GemmCall){0, 0, N, M, K, 1, inp, K, w, M, 0, out, M, b, 0, bf16});
}

void linear_relu_forward(real *out, const real *inp, const real *w, const real *b,
                         size_t N, size_t K, size_t M, int bf16) {
    gemm_call(&(GemmCall){0, 0, N, M, K, 1, inp, K, w, M, 0, out, M, b, 1, bf16});
}

// db (M) += column sums of d (N,M); columns split across threads.
static void column_sums(real *db, const real *d, size_t N, size_t M) {
    #pragma omp parallel for schedule(dynamic, 1) if (N * M > PAR_MIN)
    for (size_t c0 = 0; c0 < M; c0 += COLS_PIECE) {
        size_t c1 = c0 + COLS_PIECE < M ? c0 + COLS_PIECE : M;
        for (size_t n = 0; n < N; n++) {
            const real *row = d + n * M;
            for (size_t c = c0; c < c1; c++) db[c] += row[c];
        }
    }
}

void linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                     const real *w, size_t N, size_t K, size_t M, int bf16) {
    GemmCall gw = {1, 0, K, M, N, 1, inp, K, dout, M, 1, dw, M, NULL, 0, bf16};
    if (dinp) {
        GemmCall gx = {0, 1, N, K, M, 1, dout, M, w, M, 1, dinp, K, NULL, 0, bf16};
        gemm_pair(&gx, &gw);
    } else {
        gemm_call(&gw);
    }
    if (db) column_sums(db, dout, N, M);
}

#define LN_EPS 1e-5

// Row reductions keep eight running sums (independent chains the compiler
// vectorises) and add them up in a fixed order: fast and the same bits for
// any thread count. LANES sums of f(c) over c < C, then their total.
#define LANES 8
#define ROW_SUM(total, C, expr)                                       \
    do {                                                              \
        real acc_[LANES] = {0};                                       \
        size_t c = 0;                                                 \
        for (; c + LANES <= (C); c += LANES)                          \
            for (size_t l_ = 0; l_ < LANES; l_++) {                   \
                size_t cc_ = c + l_;                                  \
                { size_t c = cc_; acc_[l_] += (expr); }               \
            }                                                         \
        real t_ = 0;                                                  \
        for (; c < (C); c++) t_ += (expr);                            \
        for (size_t l_ = 0; l_ < LANES; l_++) t_ += acc_[l_];         \
        (total) = t_;                                                 \
    } while (0)

// A finite row whose sum or sum of squares overflows (deviations beyond
// about 1.8e19 in float): in real, the variance would be inf and rstd 0, so
// the row would silently become the bias (or NaN, from inf - inf). Such a
// row is normalised in double, as the formula says. (A row holding a NaN or
// an infinity stays NaN: the decoder stops on it.)
static void layernorm_row_double(real *o, real *mean, real *rstd, const real *x, const real *w, const real *b,
                                 size_t C) {
    double m = 0, var = 0;
    for (size_t c = 0; c < C; c++) m += x[c];
    m /= (double)C;
    for (size_t c = 0; c < C; c++) var += ((double)x[c] - m) * ((double)x[c] - m);
    var /= (double)C;
    double rs = 1 / sqrt(var + LN_EPS);
    for (size_t c = 0; c < C; c++) o[c] = (real)(((double)x[c] - m) * rs * w[c] + b[c]);
    *mean = (real)m;
    *rstd = (real)rs;
}

void layernorm_forward(real *out, real *mean, real *rstd, const real *inp,
                       const real *w, const real *b, size_t N, size_t C) {
    #pragma omp parallel for schedule(dynamic, ROWS_PIECE(C)) if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const real *x = inp + n * C;
        real m, var;
        ROW_SUM(m, C, x[c]);
        m /= (real)C;
        ROW_SUM(var, C, (x[c] - m) * (x[c] - m));
        var /= (real)C;
        if (!isfinite(var)) {
            layernorm_row_double(out + n * C, &mean[n], &rstd[n], x, w, b, C);
            continue;
        }
        real rs = 1 / sqrt(var + (real)LN_EPS);
        real *o = out + n * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * rs * w[c] + b[c];
        mean[n] = m;
        rstd[n] = rs;
    }
}

void layernorm_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                        const real *w, const real *mean, const real *rstd, size_t N, size_t C) {
    #pragma omp parallel for schedule(dynamic, ROWS_PIECE(C)) if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const real *x = inp + n * C, *g = dout + n * C;
        real m = mean[n], rs = rstd[n];
        // dxhat = g * w;  dx = rs * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        real s1, s2;
        ROW_SUM(s1, C, g[c] * w[c]);
        ROW_SUM(s2, C, g[c] * w[c] * ((x[c] - m) * rs));
        s1 /= (real)C;
        s2 /= (real)C;
        real *d = dinp + n * C;
        for (size_t c = 0; c < C; c++) {
            real xh = (x[c] - m) * rs;
            d[c] += rs * (g[c] * w[c] - s1 - xh * s2);
        }
    }
    // Gains and biases: columns split across threads, rows summed in order.
    #pragma omp parallel for schedule(dynamic, 1) if (N * C > PAR_MIN)
    for (size_t c0 = 0; c0 < C; c0 += COLS_PIECE) {
        size_t c1 = c0 + COLS_PIECE < C ? c0 + COLS_PIECE : C;
        for (size_t n = 0; n < N; n++) {
            const real *x = inp + n * C, *g = dout + n * C;
            real m = mean[n], rs = rstd[n];
            for (size_t c = c0; c < c1; c++) {
                dw[c] += g[c] * (x[c] - m) * rs;
                db[c] += g[c];
            }
        }
    }
}

void relu_forward(real *out, const real *inp, size_t n) {
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0;
}

void relu_backward(real *dinp, const real *dout, const real *out, size_t n) {
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        if (out[i] > 0) dinp[i] += dout[i];
}

void dropout_forward(real *out, const real *inp, size_t n, real p, uint64_t key) {
    if (p <= 0) {
        if (out != inp) memcpy(out, inp, n * sizeof(real));
        return;
    }
    real keep_scale = 1 / (1 - p);
    uint32_t th = rng_threshold((double)p);
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = rng_keep(key, i, th) ? inp[i] * keep_scale : 0;
}

void dropout_backward(real *dinp, const real *dout, size_t n, real p, uint64_t key) {
    if (p <= 0) {
        #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    real keep_scale = 1 / (1 - p);
    uint32_t th = rng_threshold((double)p);
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        if (rng_keep(key, i, th)) dinp[i] += dout[i] * keep_scale;
}

void relu_dropout_backward(real *d, const real *h, size_t n, real p, uint64_t key) {
    real keep_scale = p > 0 ? 1 / (1 - p) : 1;
    uint32_t th = rng_threshold(p > 0 ? (double)p : 0);
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        if (!(h[i] > 0)) d[i] = 0;
        else if (p > 0) d[i] = rng_keep(key, i, th) ? d[i] * keep_scale : 0;
    }
}

void residual_forward(real *out, const real *a, const real *b, size_t n) {
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(real *da, real *db, const real *dout, size_t n) {
    #pragma omp parallel for schedule(dynamic, ELEMS_PIECE) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

// ---------------------------------------------------------------- loss

// Row statistics: returns the row's maximum mx and sets *log_sum to
// log(sum exp(x - mx)) (exponentials in working precision, their sum in
// double) and, if wanted, *row_sum to the row's sum.
static real row_stats(const real *x, size_t V, double *log_sum, double *row_sum) {
#ifdef OPS_AVX2
    size_t j = 0, tail = V % 8;
    __m256i tm = tail_mask(tail);
    __m256 vmx = _mm256_set1_ps(x[0]);
    __m256d s_lo = _mm256_setzero_pd(), s_hi = s_lo;
    for (; j + 8 <= V; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        vmx = _mm256_max_ps(vmx, v);
        acc8(&s_lo, &s_hi, v);
    }
    if (tail) {  // masked lanes read 0; the max uses x[0] there instead
        __m256 v = _mm256_maskload_ps(x + j, tm);
        vmx = _mm256_max_ps(vmx, _mm256_blendv_ps(_mm256_set1_ps(x[0]), v, _mm256_castsi256_ps(tm)));
        acc8(&s_lo, &s_hi, v);
    }
    float mx = hmax8(vmx);
    if (row_sum) *row_sum = hsum4d(_mm256_add_pd(s_lo, s_hi));
    __m256 vm = _mm256_set1_ps(mx);
    __m256d e_lo = _mm256_setzero_pd(), e_hi = e_lo;
    for (j = 0; j + 8 <= V; j += 8) acc8(&e_lo, &e_hi, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm)));
    if (tail) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j, tm), vm));
        acc8(&e_lo, &e_hi, _mm256_and_ps(e, _mm256_castsi256_ps(tm)));
    }
    *log_sum = log(hsum4d(_mm256_add_pd(e_lo, e_hi)));
    return mx;
#else
    real mx = x[0];
    for (size_t j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double sum = 0;
    for (size_t j = 0; j < V; j++) sum += (double)exp(x[j] - mx);
    if (row_sum) {
        double s = 0;
        for (size_t j = 0; j < V; j++) s += (double)x[j];
        *row_sum = s;
    }
    *log_sum = log(sum);
    return mx;
#endif
}

double log_sum_exp(const real *x, size_t n) {
    double log_sum;
    real mx = row_stats(x, n, &log_sum, NULL);
    return (double)mx + log_sum;
}

// d[j] = scale * (exp(x[j] - mx - ls) - off) for a whole row. (The maximum
// and the log-sum stay apart: their sum, rounded, would cost precision when
// the logits are large.)
static void row_softmax_minus(real *d, const real *x, size_t V, real mx, real ls, real scale, real off) {
    size_t j = 0;
#ifdef OPS_AVX2
    __m256 vm = _mm256_set1_ps(mx), vl = _mm256_set1_ps(ls), vs = _mm256_set1_ps(scale), vo = _mm256_set1_ps(off);
    for (; j + 8 <= V; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm), vl));
        _mm256_storeu_ps(d + j, _mm256_mul_ps(vs, _mm256_sub_ps(e, vo)));
    }
    if (j < V) {
        __m256i tm = tail_mask(V - j);
        __m256 e = exp8(_mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, tm), vm), vl));
        _mm256_maskstore_ps(d + j, tm, _mm256_mul_ps(vs, _mm256_sub_ps(e, vo)));
    }
#else
    for (; j < V; j++) d[j] = scale * (exp(x[j] - mx - ls) - off);
#endif
}

void xent_forward(real *loss, real *nll, real *stats, const real *logits, const int *targets,
                  size_t N, size_t V, int pad, real eps) {
    double off = V > 2 ? (double)eps / (double)(V - 2) : 0;
    #pragma omp parallel for schedule(dynamic, ROWS_PIECE(V)) if (N * V > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const real *x = logits + n * V;
        int t = targets[n];
        if (t == pad) {
            if (loss) loss[n] = 0;
            if (nll) nll[n] = 0;
            if (stats) stats[2 * n] = stats[2 * n + 1] = 0;
            continue;
        }
        double sum, log_sum;
        real mx = row_stats(x, V, &log_sum, &sum);
        if (stats) {
            stats[2 * n] = mx;
            stats[2 * n + 1] = (real)log_sum;
        }
        double lse = (double)mx + log_sum;
        double lp_gold = (double)x[t] - lse;
        double sum_other = sum - (double)x[t] - (double)x[pad] - (double)(V - 2) * lse;
        if (loss) loss[n] = (real)(-(1 - (double)eps) * lp_gold - off * sum_other);
        if (nll) nll[n] = (real)(-lp_gold);
    }
}

void xent_backward(real *dlogits, const real *logits, const real *stats, const int *targets,
                   size_t N, size_t V, int pad, real eps, real scale) {
    real off = V > 2 ? eps / (real)(V - 2) : 0;
    #pragma omp parallel for schedule(dynamic, ROWS_PIECE(V)) if (N * V > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const real *x = logits + n * V;
        real *d = dlogits + n * V;
        int t = targets[n];
        if (t == pad) {
            memset(d, 0, V * sizeof(real));
            continue;
        }
        real mx, ls;
        if (stats) {
            mx = stats[2 * n];
            ls = stats[2 * n + 1];
        } else {
            double log_sum;
            mx = row_stats(x, V, &log_sum, NULL);
            ls = (real)log_sum;
        }
        row_softmax_minus(d, x, V, mx, ls, scale, off);
        d[t] -= scale * (1 - eps - off);
        d[pad] += scale * off;  // pad gets no smoothing mass
    }
}
