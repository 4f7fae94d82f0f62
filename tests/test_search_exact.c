// test_search_exact.c — beam search against an exhaustive search on a tiny
// vocabulary: every output of at most the length limit is scored by full
// forward passes, each paying its end-of-sentence cost (chosen, or forced at
// the limit as fairseq charges it); a beam wide enough to hold them all
// must return exactly that list, best first.
#include <criterion/criterion.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "decode/search.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "common/util.h"

enum { WORDS = 3, V = TOK_SPECIALS + WORDS, CAP = 3, ALL = 1 + 3 + 9 + 27 };

static void tiny_model(Model *m, uint64_t seed) {
    ModelShape s = {.d_model = 16, .heads = 2, .d_ff = 24, .enc_layers = 1, .dec_layers = 2, .pre_norm = 1,
                    .tie_output = 0, .src_vocab = 10, .tgt_vocab = V, .max_len = 16};
    model_create(m, &s);
    model_init_params(m, seed);
}

typedef struct {
    int ids[CAP];
    int len;
    double logprob, score;
} Output;

// ln p(next | src, prefix) for every token, by one full forward pass.
static void next_logprobs(Model *m, const int *src, int slen, const int *prefix, int len, double *lp) {
    int tin[CAP + 1] = {TOK_BOS}, tlen = len + 1;
    for (int j = 0; j < len; j++) tin[j + 1] = prefix[j];
    Batch b = {1, (size_t)slen, (size_t)tlen, (int *)src, &slen, tin, NULL, &tlen, 0};
    Acts *a = acts_create(m, CAP + 8, (size_t)slen, CAP + 1, 0);
    const real *x = model_next_logits(m, a, &b);
    double lse = log_sum_exp(x, V);
    for (int v = 0; v < V; v++) lp[v] = (double)x[v] - lse;
    acts_free(a);
}

// Every output of at most CAP words, with its EOS charged, scored with alpha.
static size_t enumerate(Model *m, const int *src, int slen, double alpha, Output *out) {
    size_t n = 0;
    for (int len = 0; len <= CAP; len++) {
        int count = 1;
        for (int j = 0; j < len; j++) count *= WORDS;
        for (int code = 0; code < count; code++) {
            Output o = {{0}, len, 0, 0};
            for (int j = 0, c = code; j < len; j++, c /= WORDS) o.ids[j] = TOK_SPECIALS + c % WORDS;
            double lp[V];
            for (int j = 0; j <= len; j++) {
                next_logprobs(m, src, slen, o.ids, j, lp);
                o.logprob += lp[j < len ? o.ids[j] : TOK_EOS];
            }
            o.score = o.logprob / (alpha == 0 ? 1 : pow((5.0 + len + 1) / 6.0, alpha));
            out[n++] = o;
        }
    }
    return n;
}

static int best_first(const void *a, const void *b) {
    const Output *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->len - y->len;
}

static void expect_exhaustive(uint64_t seed, double alpha, int nbest) {
    Model m;
    tiny_model(&m, seed);
    int src_ids[] = {4, 7, 5, 9, TOK_EOS};
    Output ref[ALL];
    cr_assert_eq(enumerate(&m, src_ids, 5, alpha, ref), ALL);
    qsort(ref, ALL, sizeof *ref, best_first);
    int *src = NULL;
    for (int j = 0; j < 4; j++) arrput(src, src_ids[j]);
    DecodeOptions o = decode_defaults();
    o.beam = ALL;
    o.nbest = nbest;
    o.alpha = alpha;
    o.max_len_a = 0;
    o.max_len_b = CAP;
    Hypothesis h[ALL];
    cr_assert_eq(translate_ids(&m, &src, 1, &o, h), NMT_OK);
    int capped = 0;
    for (int k = 0; k < nbest; k++) {
        cr_assert_eq(arrlen(h[k].ids), ref[k].len, "seed %llu alpha %g: hypothesis %d has %td words, want %d",
                     (unsigned long long)seed, alpha, k, arrlen(h[k].ids), ref[k].len);
        cr_assert(!ref[k].len || !memcmp(h[k].ids, ref[k].ids, (size_t)ref[k].len * sizeof(int)),
                  "hypothesis %d differs", k);
        cr_assert_float_eq(h[k].logprob, ref[k].logprob, 1e-5, "hypothesis %d: log-probability %.8f, want %.8f", k,
                           h[k].logprob, ref[k].logprob);
        cr_assert_float_eq(h[k].score, ref[k].score, 1e-5, "hypothesis %d: score", k);
        cr_assert_eq(h[k].eos, ref[k].len < CAP, "hypothesis %d: eos says %d", k, h[k].eos);
        capped += ref[k].len == CAP;
        arrfree(h[k].ids);
    }
    if (nbest == ALL) cr_assert_gt(capped, 0);
    arrfree(src);
    model_free(&m);
}

// The whole list: every output, in the exhaustive order with its scores.
Test(search, full_beam_lists_every_output_as_exhaustive_search_ranks_them) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
        expect_exhaustive(seed, 0, ALL);
        expect_exhaustive(seed, 0.6, ALL);
    }
}

// The best alone (the early stop may end the search before the beam drains).
Test(search, full_beam_best_is_the_exhaustive_best) {
    for (uint64_t seed = 4; seed <= 9; seed++) {
        expect_exhaustive(seed, 0, 1);
        expect_exhaustive(seed, 1.0, 1);
    }
}
