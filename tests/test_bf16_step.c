// test_bf16_step.c — a training step with bf16 products (Model.precision)
// against the float step: the loss and every tensor's gradient within the
// tolerance bf16's rounding allows; really different from float (the products
// are bf16); the same bits with 1 and 2 threads; and the float step's bits
// unchanged once a bf16 step has run.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "common/rng.h"

enum { B = 8, S = 14, T = 12, V = 40 };

typedef struct {
    Model m;
    Acts *a;
    Batch b;
    int src[B * S], src_len[B], tin[B * T], tout[B * T], tgt_len[B];
} Case;

// A model of width 64 (products with K of 16 to 128) and a batch with padding.
static void make_case(Case *c, int relative) {
    ModelShape s = {.d_model = 64, .heads = 4, .d_ff = 128, .enc_layers = 2, .dec_layers = 2, .src_vocab = V,
                    .tgt_vocab = V, .max_len = 32, .relative = relative, .max_rel = 4, .dropout = 0.1,
                    .attn_dropout = 0.1, .ffn_dropout = 0.1};
    cr_assert_eq(model_create(&c->m, &s), 0);
    model_init_params(&c->m, 7);
    memset(c->src, 0, sizeof c->src);
    memset(c->tin, 0, sizeof c->tin);
    memset(c->tout, 0, sizeof c->tout);
    for (int i = 0; i < B; i++) {
        c->src_len[i] = S - i % 5;
        c->tgt_len[i] = T - i % 4;
        for (int t = 0; t < c->src_len[i]; t++) c->src[i * S + t] = 4 + (int)(rng_uniform(rng_key(1, i, t), 0) * (V - 4));
        c->tin[i * T] = 2;
        for (int t = 0; t < c->tgt_len[i]; t++) {
            int w = t + 1 < c->tgt_len[i] ? 4 + (int)(rng_uniform(rng_key(2, i, t), 0) * (V - 4)) : 3;
            c->tout[i * T + t] = w;
            if (t + 1 < c->tgt_len[i]) c->tin[i * T + t + 1] = w;
        }
    }
    c->b = (Batch){B, S, T, c->src, c->src_len, c->tin, c->tout, c->tgt_len, 0};
    for (int i = 0; i < B; i++) c->b.ntok += (size_t)c->tgt_len[i];
    c->a = acts_create(&c->m, B * S, S, T, 1);
}

static void free_case(Case *c) {
    acts_free(c->a);
    model_free(&c->m);
}

// One step's loss and gradients (a fresh buffer) in precision p.
static double step(Case *c, Precision p, real *grads) {
    c->m.precision = p;
    memset(grads, 0, c->m.nparams * sizeof(real));
    GradSink sink = {grads, NULL, NULL};
    double nll;
    double loss = model_forward_backward(&c->m, c->a, &c->b, (real)0.1, rng_key(5, 0, 0), 1, &sink, &nll, NULL);
    c->m.precision = PRECISION_FP32;
    return loss;
}

// The tolerance. bf16 keeps 8 significant bits: rounding a value errs by at
// most 2^-9 of it, so a product of rounded inputs errs by at most about
// 2^-8 of sum |a b| (both inputs rounded; the float sums add far less). A
// step chains such products through 2 + 2 layers and back; with errors of
// random sign the loss moves by well under 1%, and a tensor's gradient, as a
// whole (its norm of differences over its norm), by a few percent. Bounds of
// 1% and 10% leave room for that and fail on any real error, which is of the
// order of the gradient itself.
#define LOSS_TOL 0.01
#define GRAD_TOL 0.10

static void compare(int relative) {
    Case c;
    make_case(&c, relative);
    real *g32 = malloc(c.m.nparams * sizeof(real)), *g16 = malloc(c.m.nparams * sizeof(real));
    cr_assert(g32 && g16);
    double l32 = step(&c, PRECISION_FP32, g32), l16 = step(&c, PRECISION_BF16, g16);
    cr_assert(fabs(l16 - l32) <= LOSS_TOL * fabs(l32), "loss: bf16 %.6f, float %.6f", l16, l32);
    cr_assert(l16 != l32, "the bf16 step gave the float step's loss: its products are not bf16");
    double worst = 0;
    for (int i = 0; i < (int)arrlen(c.m.tensors); i++) {
        const Tensor *t = &c.m.tensors[i];
        double d2 = 0, n2 = 0;
        for (size_t j = 0; j < t->rows * t->cols; j++) {
            double d = (double)g16[t->offset + j] - g32[t->offset + j];
            d2 += d * d;
            n2 += (double)g32[t->offset + j] * g32[t->offset + j];
        }
        if (n2 == 0) continue;  // (positions a batch never reaches)
        double rel = sqrt(d2 / n2);
        if (rel > worst) worst = rel;
        cr_assert(rel <= GRAD_TOL, "%s: bf16 gradient off by %.4f of its norm", t->name, rel);
    }
    cr_log_info("relative %d: loss %.6f vs %.6f (%.2e), worst tensor gradient %.4f", relative, l16, l32,
                fabs(l16 - l32) / fabs(l32), worst);
    // The float step afterwards has its bits.
    real *again = malloc(c.m.nparams * sizeof(real));
    cr_assert(again);
    cr_assert(step(&c, PRECISION_FP32, again) == l32);
    cr_assert(memcmp(again, g32, c.m.nparams * sizeof(real)) == 0, "the float step changed after a bf16 step");
    free(again);
    free(g32);
    free(g16);
    free_case(&c);
}

Test(bf16_step, loss_and_gradients_near_float) { compare(0); }
Test(bf16_step, relative_positions_near_float) { compare(1); }

Test(bf16_step, same_bits_with_one_and_two_threads) {
    Case c;
    make_case(&c, 1);
    real *g1 = malloc(c.m.nparams * sizeof(real)), *g2 = malloc(c.m.nparams * sizeof(real));
    cr_assert(g1 && g2);
    omp_set_num_threads(1);
    double l1 = step(&c, PRECISION_BF16, g1);
    omp_set_num_threads(2);
    double l2 = step(&c, PRECISION_BF16, g2);
    cr_assert(l1 == l2, "loss %.17g vs %.17g", l1, l2);
    cr_assert(memcmp(g1, g2, c.m.nparams * sizeof(real)) == 0, "gradients differ with 1 and 2 threads");
    free(g1);
    free(g2);
    free_case(&c);
}
