// test_ensemble.c — an ensemble's search and sampling: a model twice is the
// model alone (the same bits), a weight of 0 removes a member, the cached
// decoder equals recomputing the prefix, and neither the batch nor the
// threads change an output; samples likewise.
#include <criterion/criterion.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "decode/search.h"
#include "model/model.h"
#include "common/rng.h"
#include "common/util.h"

static void random_model(Model *m, uint64_t seed, int relative) {
    ModelShape s = {.d_model = 24, .heads = 3, .d_ff = 40, .enc_layers = 2, .dec_layers = 2, .pre_norm = 1,
                    .tie_output = 1, .src_vocab = 30, .tgt_vocab = 25, .max_len = 64, .relative = relative,
                    .max_rel = 3};
    model_create(m, &s);
    model_init_params(m, seed);
}

enum { NSRC = 9, NBEST = 3 };

static int **sources(void) {
    int **src = xcalloc(NSRC, sizeof *src);
    uint64_t key = rng_key(11, 3, 3), k = 0;
    for (size_t i = 0; i < NSRC; i++) {
        size_t len = 1 + rng_u64(key, k++) % 10;
        for (size_t j = 0; j < len; j++) arrput(src[i], 4 + (int)(rng_u64(key, k++) % 26));
    }
    return src;
}

static Hypothesis *run(const Ensemble *e, int **src, const DecodeOptions *o) {
    Hypothesis *h = xcalloc(NSRC * NBEST, sizeof *h);
    cr_assert_eq(translate_ensemble_ids(e, src, NSRC, o, h), NMT_OK);
    return h;
}

// The same ids and the same score bits (logprob and score).
static void expect_same(Hypothesis *a, Hypothesis *b, const char *what) {
    for (size_t i = 0; i < NSRC * NBEST; i++) {
        cr_assert_eq(arrlen(a[i].ids), arrlen(b[i].ids), "%s: hypothesis %zu: length", what, i);
        cr_assert(!arrlen(a[i].ids) || !memcmp(a[i].ids, b[i].ids, (size_t)arrlen(a[i].ids) * sizeof(int)),
                  "%s: hypothesis %zu", what, i);
        cr_assert(a[i].logprob == b[i].logprob && a[i].score == b[i].score, "%s: hypothesis %zu: %.17g vs %.17g",
                  what, i, a[i].logprob, b[i].logprob);
    }
}

static int differ(Hypothesis *a, Hypothesis *b) {
    for (size_t i = 0; i < NSRC * NBEST; i++)
        if (a[i].logprob != b[i].logprob) return 1;
    return 0;
}

static void release(Hypothesis *h) {
    for (size_t i = 0; i < NSRC * NBEST; i++) arrfree(h[i].ids);
    free(h);
}

static DecodeOptions options(int sample) {
    DecodeOptions o = decode_defaults();
    o.beam = sample ? 1 : 4;
    o.nbest = NBEST;
    o.batch = 4;
    o.max_len_a = 1.0;
    o.max_len_b = 4;
    o.sample = sample;
    o.temperature = 1.3;
    o.topp = 0.95;
    o.seed = 5;
    return o;
}

static void identities(int sample) {
    Model a, b;
    random_model(&a, 21, 0);
    random_model(&b, 22, 0);
    int **src = sources();
    DecodeOptions o = options(sample);
    Model *aa[] = {&a, &a}, *ab[] = {&a, &b};
    const double half[] = {0.5, 0.5}, only_a[] = {1, 0}, only_b[] = {0, 1};
    Hypothesis *alone = run(&(Ensemble){aa, NULL, 1}, src, &o);
    Hypothesis *twice = run(&(Ensemble){aa, half, 2}, src, &o);
    expect_same(alone, twice, "a model twice");
    Hypothesis *a10 = run(&(Ensemble){ab, only_a, 2}, src, &o);
    expect_same(alone, a10, "weights 1, 0");
    Hypothesis *b_alone = run(&(Ensemble){&ab[1], NULL, 1}, src, &o), *b01 = run(&(Ensemble){ab, only_b, 2}, src, &o);
    expect_same(b_alone, b01, "weights 0, 1");
    Hypothesis *mixed = run(&(Ensemble){ab, half, 2}, src, &o);
    cr_assert(differ(mixed, alone) && differ(mixed, b_alone), "the ensemble decodes as one of its members");
    // The batch, the threads, and recomputing the prefix change nothing.
    o.batch = 1;
    Hypothesis *one = run(&(Ensemble){ab, half, 2}, src, &o);
    expect_same(mixed, one, "batch 1");
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2);
    o.batch = 3;
    Hypothesis *other = run(&(Ensemble){ab, half, 2}, src, &o);
    omp_set_num_threads(threads);
    expect_same(mixed, other, "other threads, batch 3");
    o.recompute = 1;
    Hypothesis *re = run(&(Ensemble){ab, half, 2}, src, &o);
    for (size_t i = 0; i < NSRC * NBEST; i++) {
        cr_assert_eq(arrlen(re[i].ids), arrlen(mixed[i].ids), "recomputed: hypothesis %zu", i);
        cr_assert_float_eq(re[i].logprob, mixed[i].logprob, 1e-4, "recomputed: hypothesis %zu", i);
    }
    Hypothesis *all[] = {alone, twice, a10, b_alone, b01, mixed, one, other, re};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) release(all[k]);
    for (size_t i = 0; i < NSRC; i++) arrfree(src[i]);
    free(src);
    model_free(&a);
    model_free(&b);
}

Test(ensemble, beam_identities_batch_threads_and_recompute) { identities(0); }
Test(ensemble, sampling_identities_batch_threads_and_recompute) { identities(1); }

// Samples: another seed draws other outputs.
Test(ensemble, samples_depend_on_the_seed) {
    Model a;
    random_model(&a, 23, 1);
    int **src = sources();
    DecodeOptions o = options(1);
    Model *one[] = {&a};
    Hypothesis *s5 = run(&(Ensemble){one, NULL, 1}, src, &o);
    o.seed = 6;
    Hypothesis *s6 = run(&(Ensemble){one, NULL, 1}, src, &o);
    cr_assert(differ(s5, s6), "seeds 5 and 6 drew the same outputs");
    release(s5);
    release(s6);
    for (size_t i = 0; i < NSRC; i++) arrfree(src[i]);
    free(src);
    model_free(&a);
}

// Members that cannot share a vocabulary: an error, not a read past a row.
Test(ensemble, members_of_other_vocabulary_sizes_are_refused) {
    Model a, b;
    random_model(&a, 24, 0);
    ModelShape s = a.s;
    s.tgt_vocab = 26;
    model_create(&b, &s);
    model_init_params(&b, 25);
    int **src = sources();
    DecodeOptions o = options(0);
    Model *ab[] = {&a, &b};
    Hypothesis *h = xcalloc(NSRC * NBEST, sizeof *h);
    cr_assert_eq(translate_ensemble_ids(&(Ensemble){ab, NULL, 2}, src, NSRC, &o, h), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "model 2 has 26 target tokens, model 1 has 25"), "%s", err_msg());
    for (size_t i = 0; i < NSRC * NBEST; i++) cr_assert_null(h[i].ids);
    err_clear();
    free(h);
    for (size_t i = 0; i < NSRC; i++) arrfree(src[i]);
    free(src);
    model_free(&a);
    model_free(&b);
}
