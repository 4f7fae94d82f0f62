// test_ops.c — the float build's loss kernels against double-precision
// references: the vectorised exponential, the label-smoothed loss and its
// gradient, on row lengths with and without a vector tail.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "common/rng.h"
#include "common/util.h"

// Distance in units in the last place between two positive floats.
static int64_t ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

// With eps = 0, scale = 1 and row statistics (max 0, log-sum 0), xent_backward writes exp(x) to every
// element except the target's and pad's: the exponential itself, checked
// against exp in double over the whole range the loss uses (x <= 0).
Test(ops, exp_accuracy) {
    size_t V = 200003;  // odd: the last elements go through the tail path
    float *x = xcalloc(V, sizeof *x), *d = xcalloc(V, sizeof *d), zero[2] = {0, 0};
    for (size_t j = 0; j < V; j++) x[j] = (float)(-87.0 * (double)j / (double)(V - 1));
    int target = 1;  // pad is 0: elements 0 and 1 are adjusted, skip them
    xent_backward(d, x, zero, &target, 1, V, 0, 0, 1);
    int64_t worst = 0;
    size_t at = 0;
    for (size_t j = 2; j < V; j++) {
        float want = (float)exp((double)x[j]);
        int64_t u = ulps(d[j], want);
        if (u > worst) worst = u, at = j;
    }
    cr_expect(worst <= 2, "exp(%.9g) = %.9g, want %.9g (%lld ulp)", (double)x[at], (double)d[at],
              (double)(float)exp((double)x[at]), (long long)worst);
    // Far below: 0, never garbage from an exponent underflow.
    float lo[10] = {-88, -100, -1000, -1e30f, -INFINITY, -90, -87.5f, -200, -3000, -1e10f};
    float dl[10];
    xent_backward(dl, lo, zero, &target, 1, 10, 0, 0, 1);
    for (int j = 2; j < 10; j++) cr_expect(dl[j] >= 0 && dl[j] < 1e-37f, "exp(%g) gave %g", (double)lo[j], (double)dl[j]);
    free(x);
    free(d);
}

// Loss and gradient of random rows against the same formulas in double.
static void check_xent(size_t V, double spread, double offset) {
    size_t N = 5;
    float *x = xcalloc(N * V, sizeof *x), *d = xcalloc(N * V, sizeof *d);
    float loss[5], nll[5], stats[10];
    int tgt[5];
    uint64_t key = rng_key(42, V, (uint64_t)spread);
    for (size_t i = 0; i < N * V; i++)
        x[i] = (float)(offset + spread * (rng_uniform(key, i) * 2 - 1));
    for (size_t n = 0; n < N; n++) tgt[n] = (int)(1 + n % (V - 1));
    tgt[3] = 0;  // a pad row
    float eps = 0.1f, scale = 0.37f;
    xent_forward(loss, nll, stats, x, tgt, N, V, 0, eps);
    xent_backward(d, x, stats, tgt, N, V, 0, eps, scale);
    double off = (double)eps / (double)(V - 2);
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * V;
        if (tgt[n] == 0) {
            cr_expect(loss[n] == 0 && nll[n] == 0, "pad row has a loss");
            for (size_t j = 0; j < V; j++) cr_expect(d[n * V + j] == 0, "pad row has a gradient");
            continue;
        }
        double mx = r[0], s = 0;
        for (size_t j = 1; j < V; j++) mx = fmax(mx, r[j]);
        for (size_t j = 0; j < V; j++) s += exp((double)r[j] - mx);
        double l = mx + log(s), want_loss = 0;
        for (size_t j = 1; j < V; j++)
            want_loss -= ((int)j == tgt[n] ? 1 - eps : off) * ((double)r[j] - l);
        double want_nll = l - r[tgt[n]];
        cr_expect(fabs(loss[n] - want_loss) <= 2e-6 * fmax(1, fabs(want_loss)),
                  "V=%zu row %zu: loss %.9g, want %.9g", V, n, (double)loss[n], want_loss);
        cr_expect(fabs(nll[n] - want_nll) <= 2e-6 * fmax(1, fabs(want_nll)),
                  "V=%zu row %zu: nll %.9g, want %.9g", V, n, (double)nll[n], want_nll);
        for (size_t j = 0; j < V; j++) {
            double q = j == 0 ? 0 : ((int)j == tgt[n] ? 1 - eps : off);
            double want = scale * (exp((double)r[j] - l) - q);
            // p to 1e-6 relative, plus the rounding of the float result
            double tol = 1e-6 * scale * exp((double)r[j] - l) + 4 * FLT_EPSILON * (fabs(want) + scale * off);
            cr_expect(fabs(d[n * V + j] - want) <= tol,
                      "V=%zu row %zu col %zu: dlogit %.9g, want %.9g", V, n, j, (double)d[n * V + j], want);
        }
    }
    free(x);
    free(d);
}

// A NaN logit makes the loss NaN (training stops on a non-finite loss) rather
// than vanishing in the vectorised exponential; so does one in the gradient.
Test(ops, xent_nan_propagates) {
    size_t V = 19;
    float x[19], d[19], loss, stats[2];
    int tgt = 2;
    for (size_t pos = 0; pos < V; pos += 6) {
        for (size_t j = 0; j < V; j++) x[j] = (float)j / 7;
        x[pos] = NAN;
        xent_forward(&loss, NULL, stats, x, &tgt, 1, V, 0, 0.1f);
        cr_expect(isnan(loss), "NaN logit at %zu gave loss %g", pos, (double)loss);
        float zero[2] = {0, 0};
        xent_backward(d, x, zero, &tgt, 1, V, 0, 0.1f, 1);
        cr_expect(isnan(d[pos]), "NaN logit at %zu gave gradient %g", pos, (double)d[pos]);
    }
}

Test(ops, xent_matches_double) {
    size_t lengths[] = {3, 7, 8, 9, 16, 37, 1000, 8003};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        check_xent(lengths[i], 3, 0);
        check_xent(lengths[i], 30, 0);      // most probabilities underflow
        check_xent(lengths[i], 2, 1000);    // the maximum must be subtracted
    }
}

// The decoder's normaliser log(sum exp x) against double precision. Each
// exponential is within a few float roundings, so the result is within 1e-6
// of the exact value; dropping or repeating one of 8,003 equal-sized terms,
// or a wrong maximum, is off by 1e-4 or far more.
Test(ops, log_sum_exp_matches_double) {
    size_t lengths[] = {1, 3, 7, 8, 9, 16, 37, 1000, 8003};
    const double shape[][2] = {{3, 0}, {30, 0}, {2, 1000}, {0.001, -50}};  // spread, offset
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
        for (size_t k = 0; k < 4; k++) {
            size_t V = lengths[i];
            float *x = xcalloc(V, sizeof *x);
            uint64_t key = rng_key(7, V, k);
            for (size_t j = 0; j < V; j++)
                x[j] = (float)(shape[k][1] + shape[k][0] * (rng_uniform(key, j) * 2 - 1));
            double mx = x[0], sum = 0;
            for (size_t j = 1; j < V; j++) mx = fmax(mx, x[j]);
            for (size_t j = 0; j < V; j++) sum += exp((double)x[j] - mx);
            double want = mx + log(sum), got = log_sum_exp(x, V);
            cr_expect(fabs(got - want) <= 1e-6,
                      "V=%zu shape %zu: %.12g, want %.12g", V, k, got, want);
            free(x);
        }
}

// Attention weights and outputs against a double-precision reference: rows
// of 13 keys (one vector and a tail), padding, and the causal mask.
static void check_attention(int causal) {
    enum { B = 2, T = 13, H = 2, D = 4, C = H * D };
    int klen[B] = {13, 7};
    float q[B * T * C], k[B * T * C], v[B * T * C], out[B * T * C], probs[B * H * T * T];
    uint64_t key = rng_key(7, 7, (uint64_t)causal);
    for (size_t i = 0; i < B * T * C; i++) {
        q[i] = 3 * (rng_uniform(key, i) * 2 - 1);
        k[i] = 3 * (rng_uniform(key, i + 1000) * 2 - 1);
        v[i] = rng_uniform(key, i + 2000) * 2 - 1;
    }
    AttnShape s = {.B = B, .Tq = T, .Tk = T, .H = H, .D = D, .ldq = C, .ldk = C, .ldv = C, .klen = klen, .causal = causal};
    attention_forward(out, probs, NULL, q, k, v, &s);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < T; i++) {
                size_t n = (size_t)klen[b] < T ? (size_t)klen[b] : T;
                if (causal && i + 1 < n) n = i + 1;
                double sc[T], mx = -1e300, sum = 0;
                for (size_t j = 0; j < n; j++) {
                    double dot = 0;
                    for (size_t d = 0; d < D; d++) dot += (double)q[(b * T + i) * C + h * D + d] * k[(b * T + j) * C + h * D + d];
                    sc[j] = dot / sqrt((double)D);
                    mx = fmax(mx, sc[j]);
                }
                for (size_t j = 0; j < n; j++) sum += (sc[j] = exp(sc[j] - mx));
                const float *p = probs + ((b * H + h) * T + i) * T;
                for (size_t j = 0; j < T; j++) {
                    double want = j < n ? sc[j] / sum : 0;
                    if (j >= n) cr_expect(p[j] == 0, "masked weight (%zu,%zu,%zu,%zu) is %g", b, h, i, j, (double)p[j]);
                    else cr_expect(fabs(p[j] - want) <= 1e-6 * want + 1e-7, "weight (%zu,%zu,%zu,%zu) %.9g, want %.9g", b, h, i, j, (double)p[j], want);
                }
                for (size_t d = 0; d < D; d++) {
                    double want = 0;
                    for (size_t j = 0; j < n; j++) want += sc[j] / sum * v[(b * T + j) * C + h * D + d];
                    double got = out[(b * T + i) * C + h * D + d];
                    cr_expect(fabs(got - want) <= 1e-5, "output (%zu,%zu,%zu,%zu) %.9g, want %.9g", b, i, h, d, got, want);
                }
            }
}

Test(ops, attention_matches_double) {
    check_attention(0);
    check_attention(1);
}

// LayerNorm of a finite row whose squared deviations overflow float (values
// of 1e30: squares 1e60) is still the normalised row, not the bias (the
// variance inf made rstd 0); a row with a NaN stays NaN.
Test(ops, layernorm_of_huge_finite_values) {
    enum { C = 8 };
    real x[2 * C], w[C], b[C], out[2 * C], mean[2], rstd[2];
    for (int c = 0; c < C; c++) {
        x[c] = (real)(c % 2 ? 1e30 : -1e30);
        x[C + c] = (real)c;
        w[c] = 2;
        b[c] = (real)0.5;
    }
    x[C + 3] = NAN;
    layernorm_forward(out, mean, rstd, x, w, b, 2, C);
    for (int c = 0; c < C; c++) {
        double want = (c % 2 ? 1 : -1) * 2 + 0.5;  // deviations +-1e30, standard deviation 1e30
        cr_assert_float_eq(out[c], want, 1e-5, "element %d: %g, want %g", c, (double)out[c], want);
        cr_assert(isnan(out[C + c]), "NaN row: element %d is %g", c, (double)out[C + c]);
    }
    cr_assert(isfinite(mean[0]) && rstd[0] > 0, "mean %g rstd %g", (double)mean[0], (double)rstd[0]);
}
