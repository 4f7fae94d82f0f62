// test_decode.c — decoding is exact: cached decoding matches recomputing the
// prefix, beam 1 is greedy, batching does not change outputs, beam search
// finds at least greedy's log-probability.
#include <criterion/criterion.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "decode/search.h"
#include "model/model.h"
#include "common/rng.h"
#include "common/util.h"

// A random model: its distributions are far from peaked, so decoding paths
// branch a lot and every mistake in the cache or the beam shows.
// relative: relative positions clipped at 3 (shorter than most sequences);
// window: self-attention within that distance.
static void random_model_ext(Model *m, int pre_norm, int relative, int window) {
    ModelShape s = {.d_model = 24, .heads = 3, .d_ff = 40, .enc_layers = 2, .dec_layers = 2,
                    .pre_norm = pre_norm, .tie_output = 1, .src_vocab = 30, .tgt_vocab = 25, .max_len = 64,
                    .relative = relative, .max_rel = 3, .window = window,
                    .dropout = 0.1f, .attn_dropout = 0.1f, .ffn_dropout = 0.1f};
    model_create(m, &s);
    model_init_params(m, 77 + (uint64_t)pre_norm);
}

static void random_model(Model *m, int pre_norm) { random_model_ext(m, pre_norm, 0, 0); }

static int **random_sources(size_t n, uint64_t seed) {
    int **src = xcalloc(n, sizeof *src);
    uint64_t key = rng_key(seed, 3, 3), k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + rng_u64(key, k++) % 12;
        for (size_t j = 0; j < len; j++) arrput(src[i], 4 + (int)(rng_u64(key, k++) % 26));
    }
    return src;
}

static void free_all(int **src, Hypothesis *h, size_t n, size_t nh) {
    for (size_t i = 0; i < n; i++) arrfree(src[i]);
    for (size_t i = 0; i < nh; i++) arrfree(h[i].ids);
    free(src);
    free(h);
}

static int same_ids(const Hypothesis *a, const Hypothesis *b) {
    return arrlen(a->ids) == arrlen(b->ids) && !memcmp(a->ids, b->ids, (size_t)arrlen(a->ids) * sizeof(int));
}

static void cache_matches_recompute_ext(int pre_norm, int beam, int relative, int window) {
    Model m;
    random_model_ext(&m, pre_norm, relative, window);
    size_t n = 9;
    int **src = random_sources(n, 5);
    DecodeOptions o = decode_defaults();
    o.beam = beam;
    o.nbest = beam;
    o.batch = 4;
    o.max_len_a = 1.0;
    o.max_len_b = 6;
    Hypothesis *a = xcalloc(n * (size_t)beam, sizeof *a), *b = xcalloc(n * (size_t)beam, sizeof *b);
    translate_ids(&m, src, n, &o, a);
    o.recompute = 1;
    translate_ids(&m, src, n, &o, b);
    for (size_t i = 0; i < n * (size_t)beam; i++) {
        cr_assert(same_ids(&a[i], &b[i]), "hypothesis %zu: cached and recomputed decoding differ", i);
        cr_assert(fabs(a[i].score - b[i].score) < 1e-5, "hypothesis %zu: score %.9g vs %.9g", i, a[i].score, b[i].score);
        arrfree(b[i].ids);
    }
    free(b);
    free_all(src, a, n, n * (size_t)beam);
    model_free(&m);
}

static void cache_matches_recompute(int pre_norm, int beam) { cache_matches_recompute_ext(pre_norm, beam, 0, 0); }

Test(decode, cached_equals_recomputed_greedy_post_norm) { cache_matches_recompute(0, 1); }
Test(decode, cached_equals_recomputed_relative_beam4) { cache_matches_recompute_ext(0, 4, 1, 0); }
Test(decode, cached_equals_recomputed_window_greedy) { cache_matches_recompute_ext(1, 1, 0, 2); }
Test(decode, cached_equals_recomputed_relative_window_beam3) { cache_matches_recompute_ext(1, 3, 1, 3); }
Test(decode, cached_equals_recomputed_beam4_post_norm) { cache_matches_recompute(0, 4); }
Test(decode, cached_equals_recomputed_beam3_pre_norm) { cache_matches_recompute(1, 3); }

// Beam 1 against a plain greedy loop written here from model_next_logits.
Test(decode, beam1_is_greedy) {
    Model m;
    random_model(&m, 0);
    size_t n = 7;
    int **src = random_sources(n, 9);
    DecodeOptions o = decode_defaults();
    o.max_len_a = 1.0;
    o.max_len_b = 5;
    Hypothesis *h = xcalloc(n, sizeof *h);
    translate_ids(&m, src, n, &o, h);
    for (size_t i = 0; i < n; i++) {
        size_t S = (size_t)arrlen(src[i]) + 1, cap = S - 1 + 5;
        int *s = xcalloc(S, sizeof(int)), slen = (int)S;
        memcpy(s, src[i], (S - 1) * sizeof(int));
        s[S - 1] = TOK_EOS;
        Acts *a = acts_create(&m, cap + 2 > S ? cap + 2 : S, S, cap + 2, 0);
        int *out = NULL, tin[64];
        for (size_t t = 0; t < cap; t++) {
            tin[0] = TOK_BOS;
            for (size_t j = 0; j < t; j++) tin[1 + j] = out[j];
            int tl = (int)t + 1;
            Batch b = {1, S, t + 1, s, &slen, tin, NULL, &tl, 0};
            const real *lg = model_next_logits(&m, a, &b);
            int best = TOK_EOS;
            for (int v = TOK_EOS; v < m.s.tgt_vocab; v++)
                if (lg[v] > lg[best]) best = v;
            if (best == TOK_EOS) break;
            arrput(out, best);
        }
        Hypothesis g = {out, 0, 0, 1};
        cr_assert(same_ids(&h[i], &g), "sentence %zu: beam 1 (%td tokens) differs from greedy (%td tokens)", i,
                  arrlen(h[i].ids), arrlen(out));
        arrfree(out);
        acts_free(a);
        free(s);
    }
    free_all(src, h, n, n);
    model_free(&m);
}

static void batch_independent(int relative, int window) {
    Model m;
    random_model_ext(&m, 1, relative, window);
    size_t n = 17;
    int **src = random_sources(n, 13);
    DecodeOptions o = decode_defaults();
    o.beam = 4;
    o.max_len_a = 1.0;
    o.max_len_b = 4;
    Hypothesis *a = xcalloc(n, sizeof *a), *b = xcalloc(n, sizeof *b);
    o.batch = 1;
    translate_ids(&m, src, n, &o, a);
    o.batch = 16;
    translate_ids(&m, src, n, &o, b);
    for (size_t i = 0; i < n; i++) {
        cr_assert(same_ids(&a[i], &b[i]), "sentence %zu differs between batch 1 and 16", i);
        cr_assert(a[i].score == b[i].score, "sentence %zu: score %.9g vs %.9g", i, a[i].score, b[i].score);
        arrfree(b[i].ids);
    }
    free(b);
    free_all(src, a, n, n);
    model_free(&m);
}

Test(decode, batch_size_does_not_change_outputs) { batch_independent(0, 0); }
Test(decode, batch_size_does_not_change_outputs_relative_window) { batch_independent(1, 2); }

Test(decode, beam_finds_at_least_greedy_logprob) {
    Model m;
    random_model(&m, 0);
    size_t n = 30;
    int **src = random_sources(n, 17);
    DecodeOptions o = decode_defaults();
    o.alpha = 0;  // rank by log-probability alone
    o.max_len_a = 1.0;
    o.max_len_b = 5;
    Hypothesis *g = xcalloc(n, sizeof *g), *b = xcalloc(n, sizeof *b);
    translate_ids(&m, src, n, &o, g);
    o.beam = 4;
    translate_ids(&m, src, n, &o, b);
    double sg = 0, sb = 0;
    int better = 0;
    for (size_t i = 0; i < n; i++) {
        sg += g[i].logprob;
        sb += b[i].logprob;
        better += b[i].logprob > g[i].logprob + 1e-9;
        arrfree(b[i].ids);
    }
    cr_assert(sb >= sg, "beam 4 total log-probability %.6f < greedy %.6f", sb, sg);
    cr_assert(better > 0, "beam search never found a better hypothesis on a random model");
    free(b);
    free_all(src, g, n, n);
    model_free(&m);
}

// An inference arena gives every layer the same activation buffers (model/arena.c);
// a training arena keeps each layer's. With dropout off both must give the
// same loss bits, post-norm and pre-norm, with three layers per stack.
static void shared_layers_match(int pre_norm) {
    ModelShape s = {.d_model = 24, .heads = 3, .d_ff = 40, .enc_layers = 3, .dec_layers = 3,
                    .pre_norm = pre_norm, .tie_output = 1, .src_vocab = 30, .tgt_vocab = 25, .max_len = 64};
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 5 + (uint64_t)pre_norm);
    enum { B = 3, S = 7, T = 6 };
    int src[B * S], tin[B * T], tout[B * T], slen[B] = {7, 4, 2}, tlen[B] = {6, 3, 5};
    uint64_t key = rng_key(9, 9, 9), k = 0;
    size_t ntok = 0;
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < S; j++) src[b * S + j] = j < slen[b] - 1 ? 4 + (int)(rng_u64(key, k++) % 26) : j == slen[b] - 1 ? TOK_EOS : TOK_PAD;
        for (int j = 0; j < T; j++) {
            tout[b * T + j] = j < tlen[b] - 1 ? 4 + (int)(rng_u64(key, k++) % 21) : j == tlen[b] - 1 ? TOK_EOS : TOK_PAD;
            tin[b * T + j] = j == 0 ? TOK_BOS : j < tlen[b] ? tout[b * T + j - 1] : TOK_PAD;
        }
        ntok += (size_t)tlen[b];
    }
    Batch batch = {B, S, T, src, slen, tin, tout, tlen, ntok};
    Acts *train = acts_create(&m, B * S, S, T, 1), *infer = acts_create(&m, B * S, S, T, 0);
    double nll_t, nll_i;
    double loss_t = model_forward(&m, train, &batch, 0.1f, 0, 0, &nll_t);
    double loss_i = model_forward(&m, infer, &batch, 0.1f, 0, 0, &nll_i);
    cr_assert(loss_t == loss_i && nll_t == nll_i, "pre_norm %d: loss %.17g / %.17g, nll %.17g / %.17g", pre_norm,
              loss_t, loss_i, nll_t, nll_i);
    cr_assert(isfinite(loss_t) && loss_t > 0);
    acts_free(train);
    acts_free(infer);
    model_free(&m);
}

Test(decode, inference_arena_shares_layer_buffers_post_norm) { shared_layers_match(0); }
Test(decode, inference_arena_shares_layer_buffers_pre_norm) { shared_layers_match(1); }
