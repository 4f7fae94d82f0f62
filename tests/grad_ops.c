// grad_ops.c — every op's backward against central finite differences.
// Built with -DNMT_DOUBLE: the ops run in double precision, so a step of 1e-5
// leaves truncation and rounding errors near 1e-10. The tolerance, 1e-6
// relative to max(1, |gradient|), is four orders above that noise and far
// below any real mistake (a wrong term is O(1) off). Shapes are odd on purpose.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "common/rng.h"

#define H_STEP 1e-5
#define TOL 1e-6

static void fill(real *x, size_t n, uint64_t seed, double lo, double hi) {
    uint64_t k = rng_key(seed, 7, 7);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(k, i);
}

// Dot product of an op's output with fixed weights: the scalar being differentiated.
static double wsum(const real *out, const real *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += out[i] * w[i];
    return s;
}

typedef double (*LossFn)(void *ctx);

// Compares analytic gradient `g` of loss() wrt array x (n elements) with central differences.
static void check_grad(const char *what, real *x, const real *g, size_t n, LossFn loss, void *ctx) {
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        real keep = x[i];
        x[i] = keep + H_STEP;
        double lp = loss(ctx);
        x[i] = keep - H_STEP;
        double lm = loss(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2 * H_STEP);
        double err = fabs(num - g[i]) / fmax(1.0, fabs(num));
        if (err > worst) {
            worst = err;
            worst_i = i;
        }
    }
    cr_assert(worst < TOL, "%s: gradient mismatch at element %zu: relative error %.3g", what, worst_i, worst);
}

// ------------------------------------------------------------------ embedding + positions
typedef struct { real *out, *table, *pe, *w; int *ids; size_t B, T, C, t0; } EmbCtx;
static double emb_loss(void *p) {
    EmbCtx *c = p;
    embed_forward(c->out, c->ids, c->table, c->pe, c->B, c->T, c->C, c->t0, 1.7);
    return wsum(c->out, c->w, c->B * c->T * c->C);
}
Test(grad, embedding_and_positions) {
    size_t V = 5, B = 2, T = 3, C = 7, t0 = 2;
    real table[35], pe[(3 + 2) * 7 + 1], out[42], w[42], dtable[35] = {0};
    int ids[6] = {4, 1, 1, 0, 3, 1};  // repeated ids must accumulate
    fill(table, V * C, 1, -1, 1);
    fill(w, B * T * C, 2, -1, 1);
    positions_table(pe, T + t0, C);
    EmbCtx c = {out, table, pe, w, ids, B, T, C, t0};
    emb_loss(&c);
    // Positions: out - scale*table[id] is exactly the sinusoid at t0 + t.
    for (size_t n = 0; n < B * T; n++)
        for (size_t j = 0; j < C; j++) {
            double pos = (double)(t0 + n % T) / pow(10000.0, (double)(j & ~1u) / (double)C);
            double want = (j % 2 ? cos(pos) : sin(pos)) + 1.7 * table[(size_t)ids[n] * C + j];
            cr_assert(fabs(out[n * C + j] - want) < 1e-12, "positions wrong at %zu,%zu", n, j);
        }
    embed_backward(dtable, w, ids, B * T, C, 1.7);
    check_grad("embedding table", table, dtable, V * C, emb_loss, &c);
}

// ------------------------------------------------------------------ linear
typedef struct { real *out, *inp, *wt, *b, *w; size_t N, K, M; } LinCtx;
static double lin_loss(void *p) {
    LinCtx *c = p;
    linear_forward(c->out, c->inp, c->wt, c->b, c->N, c->K, c->M, 0);
    return wsum(c->out, c->w, c->N * c->M);
}
Test(grad, linear) {
    size_t N = 5, K = 7, M = 3;
    real inp[35], wt[21], b[3], out[15], w[15], dinp[35] = {0}, dwt[21] = {0}, db[3] = {0};
    fill(inp, N * K, 3, -1, 1);
    fill(wt, K * M, 4, -1, 1);
    fill(b, M, 5, -1, 1);
    fill(w, N * M, 6, -1, 1);
    LinCtx c = {out, inp, wt, b, w, N, K, M};
    linear_backward(dinp, dwt, db, w, inp, wt, N, K, M, 0);
    check_grad("linear input", inp, dinp, N * K, lin_loss, &c);
    check_grad("linear weight", wt, dwt, K * M, lin_loss, &c);
    check_grad("linear bias", b, db, M, lin_loss, &c);
}

// ------------------------------------------------------------------ layernorm
typedef struct { real *out, *mean, *rstd, *inp, *g, *b, *w; size_t N, C; } LnCtx;
static double ln_loss(void *p) {
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->g, c->b, c->N, c->C);
    return wsum(c->out, c->w, c->N * c->C);
}
Test(grad, layernorm) {
    size_t N = 5, C = 7;
    real inp[35], g[7], b[7], out[35], w[35], mean[5], rstd[5], dinp[35] = {0}, dg[7] = {0}, db[7] = {0};
    fill(inp, N * C, 7, -2, 3);
    fill(g, C, 8, 0.5, 1.5);
    fill(b, C, 9, -1, 1);
    fill(w, N * C, 10, -1, 1);
    LnCtx c = {out, mean, rstd, inp, g, b, w, N, C};
    ln_loss(&c);
    layernorm_backward(dinp, dg, db, w, inp, g, mean, rstd, N, C);
    check_grad("layernorm input", inp, dinp, N * C, ln_loss, &c);
    check_grad("layernorm gain", g, dg, C, ln_loss, &c);
    check_grad("layernorm bias", b, db, C, ln_loss, &c);
}

// ------------------------------------------------------------------ relu, dropout, residual
typedef struct { real *out, *inp, *w, *a2; size_t n; real p; uint64_t key; int which; } EwCtx;
static double ew_loss(void *p) {
    EwCtx *c = p;
    if (c->which == 0) relu_forward(c->out, c->inp, c->n);
    else if (c->which == 1) dropout_forward(c->out, c->inp, c->n, c->p, c->key);
    else residual_forward(c->out, c->inp, c->a2, c->n);
    return wsum(c->out, c->w, c->n);
}
Test(grad, relu) {
    size_t n = 13;
    real inp[13], out[13], w[13], d[13] = {0};
    fill(inp, n, 11, -1, 1);
    for (size_t i = 0; i < n; i++)  // keep away from the kink at 0
        if (fabs(inp[i]) < 0.05) inp[i] = 0.3;
    fill(w, n, 12, -1, 1);
    EwCtx c = {out, inp, w, NULL, n, 0, 0, 0};
    ew_loss(&c);
    relu_backward(d, w, out, n);
    check_grad("relu", inp, d, n, ew_loss, &c);
}
Test(grad, dropout) {
    size_t n = 101;
    real inp[101], out[101], w[101], d[101] = {0};
    fill(inp, n, 13, -1, 1);
    fill(w, n, 14, -1, 1);
    EwCtx c = {out, inp, w, NULL, n, 0.3, rng_key(5, 6, 7), 1};
    ew_loss(&c);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += out[i] == 0;
    cr_assert(zeros > 10 && zeros < 60, "dropout 0.3 dropped %zu of 101", zeros);
    dropout_backward(d, w, n, 0.3, c.key);
    check_grad("dropout", inp, d, n, ew_loss, &c);
}
// dropout(relu(x)), the FFN hidden layer, through relu_dropout_backward.
typedef struct { real *h, *out, *inp, *w; size_t n; real p; uint64_t key; } RdCtx;
static double rd_loss(void *p) {
    RdCtx *c = p;
    relu_forward(c->h, c->inp, c->n);
    dropout_forward(c->out, c->h, c->n, c->p, c->key);
    return wsum(c->out, c->w, c->n);
}
Test(grad, relu_dropout) {
    for (int with_dropout = 0; with_dropout < 2; with_dropout++) {
        size_t n = 101;
        real inp[101], h[101], out[101], w[101], d[101];
        fill(inp, n, 18, -1, 1);
        for (size_t i = 0; i < n; i++)  // keep away from the kink at 0
            if (fabs(inp[i]) < 0.05) inp[i] = -0.3;
        fill(w, n, 19, -1, 1);
        RdCtx c = {h, out, inp, w, n, with_dropout ? 0.3 : 0, rng_key(5, 6, 8)};
        rd_loss(&c);
        memcpy(d, w, sizeof d);
        relu_dropout_backward(d, h, n, c.p, c.key);
        check_grad(with_dropout ? "relu+dropout" : "relu+dropout(p=0)", inp, d, n, rd_loss, &c);
    }
}

Test(grad, residual) {
    size_t n = 9;
    real a[9], b[9], out[9], w[9], da[9] = {0}, db[9] = {0};
    fill(a, n, 15, -1, 1);
    fill(b, n, 16, -1, 1);
    fill(w, n, 17, -1, 1);
    EwCtx c = {out, a, w, b, n, 0, 0, 2};
    residual_backward(da, db, w, n);
    check_grad("residual a", a, da, n, ew_loss, &c);
    check_grad("residual b", b, db, n, ew_loss, &c);
}

// ------------------------------------------------------------------ attention
typedef struct { real *out, *probs, *scratch, *q, *k, *v, *w; AttnShape s; } AttCtx;
static double att_loss(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->probs, c->scratch, c->q, c->k, c->v, &c->s);
    return wsum(c->out, c->w, c->s.B * c->s.Tq * c->s.H * c->s.D);
}
// window > 0: local attention; rel_max > 0: relative position embeddings
// (checked as parameters too).
static void attention_case_ext(int causal, real p_drop, size_t Tq, size_t Tk, size_t window, size_t rel_max) {
    size_t B = 2, H = 3, D = 2, C = H * D, R = 2 * rel_max + 1;
    // q, k, v packed in one buffer of width 3C like the model's fused projection.
    size_t Tmax = Tq > Tk ? Tq : Tk;
    real *qkv = calloc(B * Tmax * 3 * C, sizeof(real)), *dqkv = calloc(B * Tmax * 3 * C, sizeof(real));
    real *out = calloc(B * Tq * C, sizeof(real)), *w = calloc(B * Tq * C, sizeof(real));
    real *probs = calloc(B * H * Tq * Tk, sizeof(real)), *scratch = calloc(B * H * Tq * Tk, sizeof(real));
    int klen[2] = {(int)Tk, (int)Tk - 2};  // second sequence has two padding keys
    fill(qkv, B * Tmax * 3 * C, 18, -1.5, 1.5);
    fill(w, B * Tq * C, 19, -1, 1);
    AttnShape s = {.B = B, .Tq = Tq, .Tk = Tk, .H = H, .D = D, .ldq = 3 * C, .ldk = 3 * C, .ldv = 3 * C, .klen = klen,
                   .causal = causal, .p_drop = p_drop, .drop_key = rng_key(1, 2, 3), .window = window};
    real *rel = calloc(2 * R * D, sizeof(real)), *drel = calloc(2 * R * D, sizeof(real));
    real *rel_scratch = calloc(ATTN_REL_PARTS * 2 * R * D, sizeof(real));
    if (rel_max) {
        fill(rel, 2 * R * D, 20, -1, 1);
        s.rel_max = rel_max, s.rel_k = rel, s.rel_v = rel + R * D;
        s.drel_k = drel, s.drel_v = drel + R * D, s.rel_scratch = rel_scratch;
    }
    AttCtx c = {out, probs, scratch, qkv, qkv + C, qkv + 2 * C, w, s};
    att_loss(&c);
    // Masked weights are exactly zero; every row sums to one (a padding
    // query whose window holds no real key: zero). With a band, slot c
    // holds key i - window + c.
    size_t cols = attn_cols(&s);
    cr_assert(window == 0 || cols == (causal ? window + 1 : 2 * window + 1) || cols == Tk);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < Tq; i++) {
                const real *row = probs + ((b * H + h) * Tq + i) * cols;
                double sum = 0;
                int any = 0;
                for (size_t c = 0; c < cols; c++) {
                    long j = cols < Tk ? (long)i - (long)window + (long)c : (long)c;
                    int masked = j < 0 || j >= klen[b] || (causal && j > (long)i) ||
                                 (window && labs(j - (long)i) > (long)window);
                    if (masked) cr_assert(row[c] == 0, "masked weight not zero (b%zu h%zu i%zu j%ld)", b, h, i, j);
                    any |= !masked;
                    sum += row[c];
                }
                cr_assert(fabs(sum - any) < 1e-12, "row sum %g", sum);
            }
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, scratch, w, probs, qkv, qkv + C, qkv + 2 * C, &s);
    check_grad("attention q/k/v", qkv, dqkv, B * Tmax * 3 * C, att_loss, &c);
    if (rel_max) check_grad("attention rel_k/rel_v", rel, drel, 2 * R * D, att_loss, &c);
    // Padding keys get exactly zero gradient.
    for (size_t j = (size_t)klen[1]; j < Tk; j++)
        for (size_t x = C; x < 3 * C; x++) cr_assert(dqkv[(1 * Tmax + j) * 3 * C + x] == 0);
    free(qkv); free(dqkv); free(out); free(w); free(probs); free(scratch);
    free(rel); free(drel); free(rel_scratch);
}
static void attention_case(int causal, real p_drop, size_t Tq, size_t Tk) {
    attention_case_ext(causal, p_drop, Tq, Tk, 0, 0);
}
Test(grad, attention_padding) { attention_case(0, 0, 5, 5); }
Test(grad, attention_causal_padding) { attention_case(1, 0, 5, 5); }
Test(grad, attention_cross_shape_dropout) { attention_case(0, 0.25, 4, 6); }
Test(grad, attention_causal_dropout) { attention_case(1, 0.25, 5, 5); }
// Distances beyond rel_max 2 share the edge embeddings; windows of 1 and 2.
Test(grad, attention_relative_padding) { attention_case_ext(0, 0, 6, 6, 0, 2); }
Test(grad, attention_relative_causal_dropout) { attention_case_ext(1, 0.25, 6, 6, 0, 2); }
Test(grad, attention_window_padding) { attention_case_ext(0, 0, 6, 6, 1, 0); }
Test(grad, attention_window_causal_relative) { attention_case_ext(1, 0.25, 7, 7, 2, 3); }
// Bands over several blocks of queries (BAND_ROWS 32), with dropout.
Test(grad, attention_band_blocks) { attention_case_ext(0, 0.25, 70, 70, 3, 2); }
Test(grad, attention_band_blocks_causal) { attention_case_ext(1, 0.25, 70, 70, 5, 0); }
// A window as wide as the keys: the full computation.
Test(grad, attention_window_wider_than_keys) { attention_case_ext(0, 0.25, 5, 5, 4, 1); }

// ------------------------------------------------------------------ label-smoothed cross entropy
typedef struct { real *loss, *logits; int *tgt; size_t N, V; real eps; } XeCtx;
static double xe_loss(void *p) {
    XeCtx *c = p;
    xent_forward(c->loss, NULL, NULL, c->logits, c->tgt, c->N, c->V, 0, c->eps);
    double s = 0;
    for (size_t i = 0; i < c->N; i++) s += c->loss[i];
    return s * 0.37;
}
Test(grad, label_smoothed_xent) {
    size_t N = 5, V = 7;
    real logits[35], d[35], loss[5];
    int tgt[5] = {3, 0, 6, 1, 0};  // two padding rows
    fill(logits, N * V, 20, -3, 3);
    XeCtx c = {loss, logits, tgt, N, V, 0.1};
    xent_backward(d, logits, NULL, tgt, N, V, 0, 0.1, 0.37);
    check_grad("xent logits", logits, d, N * V, xe_loss, &c);
    xe_loss(&c);
    cr_assert(loss[1] == 0 && loss[4] == 0, "pad rows must contribute nothing");
    for (size_t j = 0; j < V; j++) cr_assert(d[V + j] == 0);
    // Against the definition: -sum_j q_j log p_j with q = 0.9 gold, 0.1/5 others, 0 pad.
    double mx = -1e9, se = 0;
    for (size_t j = 0; j < V; j++) mx = fmax(mx, logits[j]);
    for (size_t j = 0; j < V; j++) se += exp(logits[j] - mx);
    double want = 0;
    for (size_t j = 1; j < V; j++) {
        double q = j == 3 ? 0.9 : 0.1 / 5;
        want -= q * (logits[j] - mx - log(se));
    }
    cr_assert(fabs(loss[0] - want) < 1e-12, "smoothed loss %.15g, want %.15g", loss[0], want);
}
Test(grad, xent_in_place) {
    size_t N = 3, V = 5;
    real a[15], b[15];
    int tgt[3] = {2, 4, 0};
    fill(a, N * V, 21, -2, 2);
    memcpy(b, a, sizeof a);
    real d[15];
    xent_backward(d, a, NULL, tgt, N, V, 0, 0.2, 1);
    xent_backward(b, b, NULL, tgt, N, V, 0, 0.2, 1);
    cr_assert(memcmp(b, d, sizeof d) == 0, "in-place xent backward differs");
}
