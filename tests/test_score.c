// test_score.c — score_lines (decode/score.h), forced decoding in batches, on
// a tiny random model: each log-probability is the sum of the log-softmax of
// the target tokens and EOS computed independently, step by step, with the
// incremental decoder (model_decode_begin/step); the result does not depend
// on the batch, bit for bit; invalid UTF-8 and a target longer than the
// model's positions are errors naming file:line.
#include <criterion/criterion.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

#include "decode/score.h"
#include "model/decode_state.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"
#include "word_model.h"

TestSuite(score, .init = make_tmpdir, .fini = remove_tmpdir);

static const char SRC_TEXT[] = "ein mann fährt ein rad\ndas haus ist klein und alt\nzwei hunde spielen im schnee\n";
static const char TGT_TEXT[] = "a man rides a bike\nthe house is small and old\ntwo dogs play in the snow\n";

typedef struct {
    Tokenizer t;
    Model m;
} Fixture;

static void fixture(Fixture *f, int max_len) {
    memset(f, 0, sizeof *f);
    ModelShape s = {.d_model = 16, .heads = 2, .d_ff = 32, .enc_layers = 2, .dec_layers = 2, .max_len = max_len};
    word_model(&f->t, &f->m, SRC_TEXT, TGT_TEXT, s, 23);
}

static void fixture_free(Fixture *f) {
    model_free(&f->m);
    tokenizer_free(&f->t);
}

// Pairs of different lengths: unknown words, an empty source, an empty target.
static char *const SRC[] = {"ein mann", "das haus ist klein und alt", "", "zwei hunde im park", "ein rad",
                            "im schnee spielen zwei hunde und ein mann"};
static char *const TGT[] = {"a man", "the house is small and old", "a bike", "two dogs in a garden", "",
                            "in the snow two dogs play and a man rides a bike"};
enum { N = sizeof SRC / sizeof *SRC };

// ln p(target tokens, EOS | source) by the incremental decoder, one step at a time.
static double forced_logprob(Fixture *f, const char *src_line, const char *tgt_line, size_t *ntok) {
    int *src = NULL, *tgt = NULL;
    cr_assert_eq(tokenizer_encode(&f->t, SIDE_SRC, src_line, &src, "src", 1), NMT_OK);
    cr_assert_eq(tokenizer_encode(&f->t, SIDE_TGT, tgt_line, &tgt, "tgt", 1), NMT_OK);
    arrput(src, TOK_EOS);
    size_t S = (size_t)arrlen(src), T = (size_t)arrlen(tgt) + 1, V = (size_t)f->m.s.tgt_vocab;
    int slen = (int)S;
    DecodeState *d = decode_state_create(&f->m, 1, 1, S, T);
    model_decode_begin(&f->m, d, src, &slen, 1, S);
    double sum = 0;
    for (size_t t = 0; t < T; t++) {
        int in = t ? tgt[t - 1] : TOK_BOS, want = t + 1 < T ? tgt[t] : TOK_EOS;
        const real *x = model_decode_step(&f->m, d, &in, t);
        double mx = -INFINITY, z = 0;
        for (size_t v = 0; v < V; v++) mx = fmax(mx, (double)x[v]);
        for (size_t v = 0; v < V; v++) z += exp((double)x[v] - mx);
        sum += (double)x[want] - mx - log(z);
    }
    *ntok = T;
    decode_state_free(d);
    arrfree(src);
    arrfree(tgt);
    return sum;
}

Test(score, equals_the_log_softmax_of_forced_decoding) {
    Fixture f;
    fixture(&f, 64);
    double lp[N];
    size_t nt[N];
    cr_assert_eq(score_lines(&f.m, &f.t, 64, SRC, TGT, N, 4, "src", "tgt", lp, nt), NMT_OK, "%s", err_msg());
    for (size_t i = 0; i < N; i++) {
        size_t want_n;
        double want = forced_logprob(&f, SRC[i], TGT[i], &want_n);
        cr_assert_eq(nt[i], want_n, "pair %zu: %zu tokens, not %zu", i, nt[i], want_n);
        cr_assert(lp[i] < 0 && fabs(lp[i] - want) <= 1e-6 * (1 + fabs(want)), "pair %zu: %.9g, forced decoding %.9g",
                  i, lp[i], want);
    }
    fixture_free(&f);
}

Test(score, batch_1_equals_batch_n_bit_for_bit) {
    Fixture f;
    fixture(&f, 64);
    double one[N], lp[N];
    size_t n1[N], nt[N];
    cr_assert_eq(score_lines(&f.m, &f.t, 64, SRC, TGT, N, 1, "src", "tgt", one, n1), NMT_OK, "%s", err_msg());
    size_t batches[] = {2, 3, N, 100};
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        cr_assert_eq(score_lines(&f.m, &f.t, 64, SRC, TGT, N, batches[b], "src", "tgt", lp, nt), NMT_OK);
        for (size_t i = 0; i < N; i++)
            cr_assert(lp[i] == one[i] && nt[i] == n1[i], "batch %zu, pair %zu: %.17g vs %.17g", batches[b], i,
                      lp[i], one[i]);
    }
    fixture_free(&f);
}

static void expect_error(Fixture *f, char *const *src, char *const *tgt, size_t n, const char *needle) {
    double lp[8];
    size_t nt[8];
    err_clear();
    int rc = score_lines(&f->m, &f->t, 64, src, tgt, n, 2, "s.txt", "t.txt", lp, nt);
    cr_assert_eq(rc, NMT_ERR_INPUT, "rc %d for %s", rc, needle);
    cr_assert(strstr(err_msg(), needle), "error \"%s\", expected \"%s\"", err_msg(), needle);
}

Test(score, invalid_utf8_names_the_file_and_line) {
    Fixture f;
    fixture(&f, 64);
    char *const src[] = {"ein mann", "das haus", "zwei \xc3 hunde"};
    char *const tgt[] = {"a man", "the \xff house", "two dogs"};
    expect_error(&f, src, tgt, 3, "t.txt:2: invalid UTF-8");
    char *const tgt_ok[] = {"a man", "the house", "two dogs"};
    expect_error(&f, src, tgt_ok, 3, "s.txt:3: invalid UTF-8");
    fixture_free(&f);
}

Test(score, a_target_longer_than_the_positions_is_an_error) {
    Fixture f;
    fixture(&f, 8);  // 7 target tokens and EOS fit
    char *const src[] = {"ein mann", "das haus"};
    char *const fits[] = {"a man", "a b c d e f g"};
    double lp[2];
    size_t nt[2];
    cr_assert_eq(score_lines(&f.m, &f.t, 64, src, fits, 2, 2, "s.txt", "t.txt", lp, nt), NMT_OK, "%s", err_msg());
    cr_assert_eq(nt[1], 8);
    char *const too_long[] = {"a man", "a b c d e f g h"};
    expect_error(&f, src, too_long, 2, "t.txt:2: 8 tokens, more than the model's 7 positions");
    fixture_free(&f);
}

// A model whose scores are not finite: NMT_ERR_RUNTIME naming the line, not NaN.
Test(score, nan_scores_are_an_error) {
    Fixture f;
    fixture(&f, 64);
    for (size_t i = 0; i < f.m.nparams; i++) f.m.params[i] = NAN;
    double lp[N];
    size_t nt[N];
    err_clear();
    cr_assert_eq(score_lines(&f.m, &f.t, 64, SRC, TGT, N, 4, "src", "tgt", lp, nt), NMT_ERR_RUNTIME);
    cr_assert(strstr(err_msg(), "src:1: the model's score is not finite"), "%s", err_msg());
    fixture_free(&f);
}
