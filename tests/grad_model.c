// grad_model.c — a whole tiny encoder-decoder: every parameter tensor's
// gradient against central finite differences (double precision build),
// with padding in the batch, dropout on everywhere, post- and pre-norm,
// untied, tied and shared vocabularies; and gradients accumulated over
// micro-batches; and the gradient sink (destination and announcements).
#include <criterion/criterion.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "model/model.h"
#include "common/rng.h"
#include "train/step.h"

#define H_STEP 1e-5
#define TOL 1e-6   // see grad_ops.c: double-precision noise is ~1e-10

// Three pairs of different lengths: the batch has padding on both sides.
static int SRC[3][5] = {{5, 6, 4, 3, 0}, {4, 3, 0, 0, 0}, {6, 6, 5, 4, 3}};
static int SRC_LEN[3] = {4, 2, 5};
static int TIN[3][4] = {{2, 7, 5, 8}, {2, 4, 0, 0}, {2, 8, 0, 0}};
static int TOUT[3][4] = {{7, 5, 8, 3}, {4, 3, 0, 0}, {8, 3, 0, 0}};
static int TGT_LEN[3] = {4, 2, 2};

// out_rows: the output layer's chunk of positions (12 target positions here:
// 12 = one chunk, 5 = chunks of 5, 5 and 2).
// relative: relative positions clipped at 2 (the sequences are longer);
// window: self-attention within that distance.
static void tiny_case_ext(int pre_norm, int tie, int shared, size_t out_rows, int relative, int window) {
    ModelShape s = {.d_model = 6, .heads = 3, .d_ff = 5, .enc_layers = 2, .dec_layers = 2,
                    .pre_norm = pre_norm, .tie_output = tie, .shared_vocab = shared,
                    .src_vocab = shared ? 9 : 7, .tgt_vocab = 9, .max_len = 8,
                    .relative = relative, .max_rel = 2, .window = window,
                    .dropout = 0.2, .attn_dropout = 0.15, .ffn_dropout = 0.25};
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 42);
    // Non-trivial LayerNorm gains/biases so their gradients are generic.
    for (int i = 0; i < (int)arrlen(m.tensors); i++) {
        Tensor *t = &m.tensors[i];
        if (t->init_bound <= 0)
            for (size_t j = 0; j < t->rows * t->cols; j++)
                m.params[t->offset + j] += (real)(0.3 * (2 * rng_uniform(rng_key(9, (uint64_t)i, 1), j) - 1));
    }
    Batch b = {3, 5, 4, &SRC[0][0], SRC_LEN, &TIN[0][0], &TOUT[0][0], TGT_LEN, 8};
    Acts *a = acts_create(&m, 15, 5, 4, 1);
    acts_set_output_rows(a, out_rows);
    uint64_t key = rng_key(7, 100, 0);  // a fixed dropout mask
    real ls = 0.1;
    memset(m.grads, 0, m.nparams * sizeof(real));
    double nll_fb, nll_f;
    GradSink sink = {m.grads, NULL, NULL};
    double loss_fb = model_forward_backward(&m, a, &b, ls, key, 1, &sink, &nll_fb, NULL);
    double loss_f = model_forward(&m, a, &b, ls, 1, key, &nll_f);
    cr_assert(loss_fb == loss_f && nll_fb == nll_f, "the training step's loss differs from model_forward's");
    for (int i = 0; i < (int)arrlen(m.tensors); i++) {
        const Tensor *t = &m.tensors[i];
        double worst = 0;
        size_t worst_j = 0;
        double gmax = 0;
        for (size_t j = 0; j < t->rows * t->cols; j++) {
            real *p = m.params + t->offset + j;
            real keep = *p;
            *p = keep + H_STEP;
            double lp = model_forward(&m, a, &b, ls, 1, key, NULL);
            *p = keep - H_STEP;
            double lm = model_forward(&m, a, &b, ls, 1, key, NULL);
            *p = keep;
            double num = (lp - lm) / (2 * H_STEP), ana = m.grads[t->offset + j];
            double err = fabs(num - ana) / fmax(1.0, fabs(num));
            gmax = fmax(gmax, fabs(ana));
            if (err > worst) {
                worst = err;
                worst_j = j;
            }
        }
        cr_assert(worst < TOL, "%s (pre_norm=%d tie=%d shared=%d): element %zu relative error %.3g",
                  t->name, pre_norm, tie, shared, worst_j, worst);
        // Every tensor takes part in the loss (the pad embedding row aside).
        cr_assert(gmax > 1e-8, "%s: gradient is identically zero", t->name);
    }
    // The padding token's embedding rows get exactly zero gradient (unless the
    // target embedding doubles as the output projection, where pad is a class).
    for (size_t c = 0; c < 6 && !tie; c++) {
        cr_assert(m.grads[m.src_emb + c] == 0, "pad source embedding got gradient");
        cr_assert(m.grads[m.tgt_emb + c] == 0, "pad target embedding got gradient");
    }
    acts_free(a);
    model_free(&m);
}

static void tiny_case(int pre_norm, int tie, int shared, size_t out_rows) {
    tiny_case_ext(pre_norm, tie, shared, out_rows, 0, 0);
}

Test(grad_model, post_norm_untied) { tiny_case(0, 0, 0, 12); }
Test(grad_model, relative_positions) { tiny_case_ext(0, 1, 0, 5, 1, 0); }
Test(grad_model, relative_positions_window_pre_norm) { tiny_case_ext(1, 0, 0, 12, 1, 1); }
Test(grad_model, window) { tiny_case_ext(0, 0, 0, 12, 0, 2); }
Test(grad_model, post_norm_tied_output) { tiny_case(0, 1, 0, 5); }
Test(grad_model, pre_norm_shared_vocab) { tiny_case(1, 1, 1, 12); }
Test(grad_model, pre_norm_untied) { tiny_case(1, 0, 0, 5); }

// Gradient accumulation: two micro-batches (pairs 0-1, then pair 2) summed by
// step_micro are the gradient of their summed loss over the step's target
// tokens, each micro-batch with its own dropout key.
Test(grad_model, accumulated_micro_batches) {
    ModelShape s = {.d_model = 6, .heads = 3, .d_ff = 5, .enc_layers = 1, .dec_layers = 1, .src_vocab = 7,
                    .tgt_vocab = 9, .max_len = 8, .dropout = 0.2, .attn_dropout = 0.15, .ffn_dropout = 0.25};
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 43);
    Batch mb[2] = {{2, 5, 4, &SRC[0][0], SRC_LEN, &TIN[0][0], &TOUT[0][0], TGT_LEN, 6},
                   {1, 5, 4, &SRC[2][0], SRC_LEN + 2, &TIN[2][0], &TOUT[2][0], TGT_LEN + 2, 2}};
    Acts *a = acts_create(&m, 15, 5, 4, 1);
    Config c;
    config_defaults(&c);
    c.label_smoothing = 0.1;
    const long step = 3;
    StepAccum u = {0};
    step_begin(&u, step, 8, 0, 2, NULL);
    for (int j = 0; j < 2; j++) step_micro(&u, &m, a, &mb[j], &c);
    cr_assert_neq(step_dropout_key(&c, step, 0), step_dropout_key(&c, step, 1));
    double worst = 0;
    for (size_t i = 0; i < m.nparams; i++) {
        real keep = m.params[i];
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            m.params[i] = keep + (sgn ? -H_STEP : H_STEP);
            l[sgn] = 0;
            for (int j = 0; j < 2; j++)
                l[sgn] += model_forward(&m, a, &mb[j], 0.1, 1, step_dropout_key(&c, step, j), NULL) / 8;
        }
        m.params[i] = keep;
        double num = (l[0] - l[1]) / (2 * H_STEP);
        worst = fmax(worst, fabs(num - m.grads[i]) / fmax(1.0, fabs(num)));
    }
    cr_assert(worst < TOL, "accumulated gradient: worst relative error %.3g", worst);
    step_accum_free(&u);
    config_free(&c);
    acts_free(a);
    model_free(&m);
}

// The gradient sink: the pass writes its destination only (not m->grads) and
// announces each part once it is final, in the documented order, every part
// but the final norms.
typedef struct { ParamSpan got[16]; int n; } Heard;
static void heard(void *arg, size_t off, size_t n) {
    Heard *h = arg;
    cr_assert(h->n < 16);
    h->got[h->n++] = (ParamSpan){off, n};
}

Test(grad_model, gradient_sink) {
    ModelShape s = {.d_model = 6, .heads = 3, .d_ff = 5, .enc_layers = 2, .dec_layers = 2, .pre_norm = 1,
                    .src_vocab = 7, .tgt_vocab = 9, .max_len = 8, .dropout = 0.2};
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 44);
    Batch b = {3, 5, 4, &SRC[0][0], SRC_LEN, &TIN[0][0], &TOUT[0][0], TGT_LEN, 8};
    Acts *a = acts_create(&m, 15, 5, 4, 1);
    uint64_t key = rng_key(7, 101, 0);
    real *dst = malloc(m.nparams * sizeof(real));
    model_zero_grads(&m, dst);
    model_zero_grads(&m, m.grads);
    Heard h = {.n = 0};
    GradSink sink = {dst, heard, &h};
    model_forward_backward(&m, a, &b, 0.1, key, 1, &sink, NULL, NULL);
    for (size_t i = 0; i < m.nparams; i++) cr_assert(m.grads[i] == 0, "m->grads changed at %zu", i);
    ParamSpan want[] = {m.out_proj_span, m.dec_span[1], m.dec_span[0], m.tgt_emb_span,
                        m.enc_span[1], m.enc_span[0], m.src_emb_span};
    cr_assert_eq(h.n, 7);
    size_t covered = 0;
    for (int i = 0; i < 7; i++) {
        cr_assert(h.got[i].off == want[i].off && h.got[i].n == want[i].n, "announcement %d", i);
        covered += h.got[i].n;
    }
    // Everything else is the two final norms (w and b, 16-real aligned each).
    cr_assert_eq(m.nparams - covered, 4 * 16);
    // The same gradient as with m->grads as the destination.
    GradSink plain = {m.grads, NULL, NULL};
    model_forward_backward(&m, a, &b, 0.1, key, 1, &plain, NULL, NULL);
    cr_assert(memcmp(dst, m.grads, m.nparams * sizeof(real)) == 0);
    free(dst);
    acts_free(a);
    model_free(&m);
}
