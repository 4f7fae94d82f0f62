// test_translate.c — translate_lines, the text layer over translate_ids, with
// a tiny random model: its texts and scores are translate_ids' for the same
// encoded sources, it does not depend on the decoding batch, n-best lists come
// best first, errors name what:line and return nothing, long lines are cut to
// max_src tokens with a warning, empty lines are harmless, stats add up.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <omp.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text/bpe.h"
#include "model/quant.h"
#include "decode/translate.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"
#include "word_model.h"

TestSuite(translate, .init = make_tmpdir, .fini = remove_tmpdir);

static const char SRC_TEXT[] =
    "ein mann fährt ein rad\n"
    "das haus ist klein und alt\n"
    "eine frau liest ein buch im park\n"
    "zwei hunde spielen im schnee\n"
    "ein kind isst einen apfel\n";
static const char TGT_TEXT[] =
    "a man rides a bike\n"
    "the house is small and old\n"
    "a woman reads a book in the park\n"
    "two dogs play in the snow\n"
    "a child eats an apple\n";

typedef struct {
    Tokenizer t;
    Model m;
} Fixture;

// A word tokenizer (one vocabulary per side) and a random model over it.
static void fixture(Fixture *f, uint64_t seed) {
    memset(f, 0, sizeof *f);
    ModelShape s = {.d_model = 16, .heads = 2, .d_ff = 32, .enc_layers = 1, .dec_layers = 1, .pre_norm = 1, .max_len = 64};
    word_model(&f->t, &f->m, SRC_TEXT, TGT_TEXT, s, seed);
}

static void fixture_free(Fixture *f) {
    model_free(&f->m);
    tokenizer_free(&f->t);
}

// Source lines for most tests: known and unknown words, odd spacing, lengths 1..9.
static char *const LINES[] = {
    "ein mann",
    "das haus ist klein und alt",
    "zwei  hunde\tspielen im park",
    "unbekannt ein wort",
    "kind",
    "eine frau liest ein buch im schnee und alt",
    "apfel apfel apfel",
    "\xc3\xa4rger \xc3\xbc ber",  // valid UTF-8, unknown words
};
enum { NLINES = sizeof LINES / sizeof *LINES };

static DecodeOptions options(int beam, int nbest, int batch) {
    DecodeOptions o = decode_defaults();
    o.beam = beam;
    o.nbest = nbest;
    o.batch = batch;
    o.max_len_a = 1.0;
    o.max_len_b = 4;
    return o;
}

typedef struct {
    char **texts;
    double *scores;
    TranslateStats stats;
} Result;

static Result run(Fixture *f, char *const *lines, size_t n, const DecodeOptions *o, int max_src) {
    size_t nb = (size_t)o->nbest;
    Result r = {xcalloc(n * nb + 1, sizeof(char *)), xcalloc(n * nb + 1, sizeof(double)), {0, 0, 0}};
    int rc = translate_lines(&f->m, &f->t, max_src, lines, n, o, "input", r.texts, r.scores, &r.stats);
    cr_assert_eq(rc, NMT_OK, "translate_lines: %s", err_msg());
    for (size_t i = 0; i < n * nb; i++) cr_assert_not_null(r.texts[i], "text %zu missing", i);
    return r;
}

static void expect_utf8(const Result *r, size_t count) {
    for (size_t i = 0; i < count; i++)
        cr_assert(utf8_valid(r->texts[i], strlen(r->texts[i])), "text %zu is not valid UTF-8", i);
}

static void result_free(Result *r, size_t count) {
    for (size_t i = 0; i < count; i++) free(r->texts[i]);
    free(r->texts);
    free(r->scores);
}

static void expect_same(const Result *a, const Result *b, size_t count, const char *what) {
    for (size_t i = 0; i < count; i++) {
        cr_assert_str_eq(a->texts[i], b->texts[i], "%s: output %zu differs", what, i);
        cr_assert(a->scores[i] == b->scores[i], "%s: score %zu: %.9g vs %.9g", what, i, a->scores[i], b->scores[i]);
    }
}

// Sources encoded as translate_lines should: tokenizer_encode, then cut to max_src.
static int **encode_all(const Fixture *f, char *const *lines, size_t n, int max_src) {
    int **src = xcalloc(n + 1, sizeof *src);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tokenizer_encode(&f->t, SIDE_SRC, lines[i], &src[i], "enc", (long)i + 1), NMT_OK, "%s",
                     err_msg());
        if (max_src > 0 && arrlen(src[i]) > max_src) arrsetlen(src[i], max_src);
    }
    return src;
}

// translate_lines gives, for each sentence and rank, the text of translate_ids'
// hypothesis for the encoded source and its score.
static void expect_consistent_with_ids(Fixture *f, char *const *lines, size_t n, const DecodeOptions *o) {
    size_t nb = (size_t)o->nbest;
    Result r = run(f, lines, n, o, 0);
    if (f->t.kind == TOK_WORD) expect_utf8(&r, n * nb);  // words of valid UTF-8 files
    int **src = encode_all(f, lines, n, 0);
    Hypothesis *h = xcalloc(n * nb, sizeof *h);
    translate_ids(&f->m, src, n, o, h);
    for (size_t i = 0; i < n * nb; i++) {
        char *want = tokenizer_decode(&f->t, h[i].ids, (size_t)arrlen(h[i].ids));
        cr_assert_str_eq(r.texts[i], want, "sentence %zu rank %zu: '%s', translate_ids gives '%s'", i / nb, i % nb,
                         r.texts[i], want);
        cr_assert(r.scores[i] == h[i].score, "sentence %zu rank %zu: score %.9g vs %.9g", i / nb, i % nb, r.scores[i],
                  h[i].score);
        free(want);
        arrfree(h[i].ids);
    }
    for (size_t i = 0; i < n; i++) arrfree(src[i]);
    free(src);
    free(h);
    result_free(&r, n * nb);
}

Test(translate, texts_and_scores_are_translate_ids_decoded) {
    Fixture f;
    fixture(&f, 3);
    DecodeOptions greedy = options(1, 1, 32), beam = options(3, 2, 4), wide = options(4, 4, 3);
    expect_consistent_with_ids(&f, LINES, NLINES, &greedy);
    expect_consistent_with_ids(&f, LINES, NLINES, &beam);
    expect_consistent_with_ids(&f, LINES, NLINES, &wide);
    // A random model does not just echo nothing: some output is non-empty.
    Result r = run(&f, LINES, NLINES, &greedy, 0);
    size_t nonempty = 0;
    for (size_t i = 0; i < NLINES; i++) nonempty += r.texts[i][0] != 0;
    cr_assert_gt(nonempty, 0);
    result_free(&r, NLINES);
    fixture_free(&f);
}

Test(translate, output_does_not_depend_on_the_decoding_batch) {
    Fixture f;
    fixture(&f, 5);
    for (int beam = 1; beam <= 3; beam += 2) {
        DecodeOptions o1 = options(beam, beam, 1), o3 = options(beam, beam, 3), o32 = options(beam, beam, 32);
        size_t count = NLINES * (size_t)beam;
        Result a = run(&f, LINES, NLINES, &o1, 0), b = run(&f, LINES, NLINES, &o3, 0), c = run(&f, LINES, NLINES, &o32, 0);
        expect_same(&a, &b, count, "batch 1 vs 3");
        expect_same(&a, &c, count, "batch 1 vs 32");
        // Nor on the other sentences: each line alone gives the same.
        for (size_t i = 0; beam > 1 && i < NLINES; i++) {
            Result one = run(&f, &LINES[i], 1, &o3, 0);
            for (size_t k = 0; k < (size_t)beam; k++) {
                cr_assert_str_eq(one.texts[k], a.texts[i * (size_t)beam + k], "line %zu alone", i);
                cr_assert(one.scores[k] == a.scores[i * (size_t)beam + k], "line %zu alone: score", i);
            }
            result_free(&one, (size_t)beam);
        }
        result_free(&a, count);
        result_free(&b, count);
        result_free(&c, count);
    }
    fixture_free(&f);
}

// With int8 weights (quant.h) the output is still independent of the batch
// and of the thread count, byte for byte, and the model still translates.
Test(translate, int8_output_does_not_depend_on_batch_or_threads) {
    Fixture f;
    fixture(&f, 7);
    cr_assert_eq(model_quantize(&f.m, "test"), NMT_OK, "%s", err_msg());
    for (int beam = 1; beam <= 3; beam += 2) {
        DecodeOptions o1 = options(beam, beam, 1), o16 = options(beam, beam, 16);
        size_t count = NLINES * (size_t)beam;
        omp_set_num_threads(1);
        Result a = run(&f, LINES, NLINES, &o1, 0), b = run(&f, LINES, NLINES, &o16, 0);
        omp_set_num_threads(2);
        Result c = run(&f, LINES, NLINES, &o16, 0);
        expect_same(&a, &b, count, "int8: batch 1 vs 16");
        expect_same(&a, &c, count, "int8: 1 vs 2 threads");
        expect_utf8(&a, count);
        expect_consistent_with_ids(&f, LINES, NLINES, &o16);
        result_free(&a, count);
        result_free(&b, count);
        result_free(&c, count);
    }
    fixture_free(&f);
}

Test(translate, nbest_lists_are_best_first_and_distinct) {
    Fixture f;
    fixture(&f, 7);
    const size_t K = 4;
    DecodeOptions o = options((int)K, (int)K, 3), one = options((int)K, 1, 3);
    Result r = run(&f, LINES, NLINES, &o, 0), best = run(&f, LINES, NLINES, &one, 0);
    for (size_t i = 0; i < NLINES; i++) {
        for (size_t k = 0; k < K; k++) {
            double s = r.scores[i * K + k];
            cr_assert(isfinite(s) && s <= 0, "sentence %zu rank %zu: score %g", i, k, s);
            if (k > 0) cr_assert_leq(s, r.scores[i * K + k - 1], "sentence %zu: rank %zu scores above rank %zu", i, k, k - 1);
            for (size_t j = 0; j < k; j++)
                cr_assert_str_neq(r.texts[i * K + k], r.texts[i * K + j], "sentence %zu: ranks %zu and %zu are the same", i,
                                  j, k);
        }
        // Keeping more hypotheses does not change the best one.
        cr_assert_str_eq(best.texts[i], r.texts[i * K], "sentence %zu: the best differs with nbest 1 and %zu", i, K);
        cr_assert(best.scores[i] == r.scores[i * K], "sentence %zu: best score", i);
    }
    result_free(&r, NLINES * K);
    result_free(&best, NLINES);
    fixture_free(&f);
}

Test(translate, invalid_utf8_names_what_and_line_and_returns_nothing) {
    Fixture f;
    fixture(&f, 9);
    char *lines[] = {"ein mann", "das haus", "ein \xff mann", "kind", "\xc3\x28 also bad"};
    static char sentinel[] = "untouched";
    char *texts[10];
    double scores[10];
    for (int i = 0; i < 10; i++) {
        texts[i] = sentinel;
        scores[i] = 42;
    }
    TranslateStats st = {77, 88, 9.5};
    DecodeOptions o = options(2, 2, 2);
    int rc = translate_lines(&f.m, &f.t, 0, lines, 5, &o, "news.de", texts, scores, &st);
    cr_assert_eq(rc, NMT_ERR_INPUT);
    cr_assert_eq(err_code(), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "news.de:3"), "'%s' does not name news.de:3", err_msg());
    cr_assert_null(strstr(err_msg(), "news.de:5"), "'%s': not the first bad line", err_msg());
    cr_assert(strstr(err_msg(), "UTF-8"), "%s", err_msg());
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(texts[i], sentinel, "text %d written after an error", i);
        cr_assert_eq(scores[i], 42, "score %d written after an error", i);
    }
    cr_assert_eq(st.sentences, 77);
    cr_assert_eq(st.tokens, 88);
    cr_assert_eq(st.seconds, 9.5);
    err_clear();
    // The first line alone.
    lines[0] = "\xe2\x82";
    rc = translate_lines(&f.m, &f.t, 0, lines, 1, &o, "x", texts, NULL, NULL);
    cr_assert_eq(rc, NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "x:1"), "%s", err_msg());
    cr_assert_eq(texts[0], sentinel);
    err_clear();
    fixture_free(&f);
}

// Runs translate_lines with stderr sent to a file; returns what was written.
static char *stderr_of(Fixture *f, char *const *lines, size_t n, const DecodeOptions *o, int max_src, Result *out) {
    char path[128];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    *out = run(f, lines, n, o, max_src);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = read_file_text(path, NULL);
    cr_assert_not_null(text);
    return text;
}

Test(translate, long_lines_are_cut_to_max_src_tokens_with_a_warning) {
    Fixture f;
    fixture(&f, 11);
    char *lines[] = {"ein mann", "das  haus\tist klein und alt", "eine frau liest", "zwei hunde spielen im"};
    char *cut[] = {"ein mann", "das haus ist", "eine frau liest", "zwei hunde spielen"};
    DecodeOptions o = options(3, 3, 2);
    Result r;
    char *err = stderr_of(&f, lines, 4, &o, 3, &r);
    Result want = run(&f, cut, 4, &o, 0);
    expect_same(&r, &want, 4 * 3, "truncated vs pre-cut");
    // One warning per cut line, naming what:line (1-based); none for the others.
    cr_assert(strstr(err, "input:2"), "no warning for line 2: '%s'", err);
    cr_assert(strstr(err, "input:4"), "no warning for line 4: '%s'", err);
    cr_assert_null(strstr(err, "input:1"), "warning for line 1: '%s'", err);
    cr_assert_null(strstr(err, "input:3"), "warning for line 3 (exactly max_src tokens): '%s'", err);
    size_t nl = 0;
    for (const char *p = err; *p; p++) nl += *p == '\n';
    cr_assert_eq(nl, 2, "want two warning lines: '%s'", err);
    free(err);
    // translate_ids sees exactly the first max_src tokens.
    int **src = encode_all(&f, lines, 4, 3);
    for (size_t i = 0; i < 4; i++) cr_assert_leq(arrlen(src[i]), 3);
    Hypothesis *h = xcalloc(4 * 3, sizeof *h);
    translate_ids(&f.m, src, 4, &o, h);
    for (size_t i = 0; i < 12; i++) {
        char *t = tokenizer_decode(&f.t, h[i].ids, (size_t)arrlen(h[i].ids));
        cr_assert_str_eq(r.texts[i], t, "output %zu", i);
        free(t);
        arrfree(h[i].ids);
    }
    for (size_t i = 0; i < 4; i++) arrfree(src[i]);
    free(src);
    free(h);
    // No limit: no warning, and the long lines translate differently from the cut ones
    // (at least their scores: a longer source, another encoder output).
    Result full;
    err = stderr_of(&f, lines, 4, &o, 0, &full);
    cr_assert_str_eq(err, "", "warnings without a limit: '%s'", err);
    free(err);
    cr_assert(full.scores[3] != r.scores[3] || strcmp(full.texts[3], r.texts[3]), "line 2 was cut without a limit");
    result_free(&full, 12);
    result_free(&r, 12);
    result_free(&want, 12);
    fixture_free(&f);
}

Test(translate, empty_lines_translate_without_disturbing_others) {
    Fixture f;
    fixture(&f, 13);
    char *lines[] = {"", "ein mann", "   ", "das haus", "\t", "", "kind"};
    const size_t n = sizeof lines / sizeof *lines;
    for (int beam = 1; beam <= 2; beam++) {
        DecodeOptions o = options(beam, beam, 3);
        Result r = run(&f, lines, n, &o, 2);  // a limit too: empty lines are under it
        for (size_t i = 0; i < n; i++) {
            Result one = run(&f, &lines[i], 1, &o, 2);
            for (size_t k = 0; k < (size_t)beam; k++)
                cr_assert_str_eq(r.texts[i * (size_t)beam + k], one.texts[k], "line %zu rank %zu: alone '%s', with others '%s'",
                                 i, k, one.texts[k], r.texts[i * (size_t)beam + k]);
            result_free(&one, (size_t)beam);
        }
        cr_assert_eq(r.stats.sentences, n);
        result_free(&r, n * (size_t)beam);
        // Only empty lines.
        Result e = run(&f, lines + 4, 2, &o, 0);
        cr_assert_eq(e.stats.sentences, 2);
        result_free(&e, 2 * (size_t)beam);
    }
    // No lines at all.
    DecodeOptions o = options(2, 2, 4);
    Result z = run(&f, NULL, 0, &o, 0);
    cr_assert_eq(z.stats.sentences, 0);
    cr_assert_eq(z.stats.tokens, 0);
    result_free(&z, 0);
    fixture_free(&f);
}

// The output length cap of decode/search.h: a * source length + b, at least 1, at
// most the model's positions minus BOS and EOS.
static size_t length_cap(const Model *m, const DecodeOptions *o, size_t src_len) {
    double n = o->max_len_a * (double)src_len + o->max_len_b;
    if (n < 1) n = 1;
    if (n > (double)(m->s.max_len - 2)) n = (double)(m->s.max_len - 2);
    return (size_t)n;
}

// Sentences are counted, and tokens are the best hypotheses' tokens plus their
// EOS, chosen or forced at the cap (a decoding step either way).
static void expect_stats(Fixture *f, char *const *lines, size_t n, const DecodeOptions *o, size_t *capped) {
    Result r = run(f, lines, n, o, 0);
    int **src = encode_all(f, lines, n, 0);
    size_t nb = (size_t)o->nbest;
    Hypothesis *h = xcalloc(n * nb, sizeof *h);
    translate_ids(&f->m, src, n, o, h);
    size_t tokens = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)arrlen(h[i * nb].ids), cap = length_cap(&f->m, o, (size_t)arrlen(src[i]));
        cr_assert_leq(len, cap, "sentence %zu: %zu tokens over the cap %zu", i, len, cap);
        tokens += len + 1;
        *capped += len == cap;
    }
    cr_assert_eq(r.stats.sentences, n);
    cr_assert_geq(r.stats.seconds, 0);
    cr_assert_eq(r.stats.tokens, tokens, "stats.tokens %zu, want %zu (%zu sentences stopped at the cap)", r.stats.tokens,
                 tokens, *capped);
    for (size_t i = 0; i < n * nb; i++) arrfree(h[i].ids);
    for (size_t i = 0; i < n; i++) arrfree(src[i]);
    free(src);
    free(h);
    result_free(&r, n * nb);
}

Test(translate, stats_count_sentences_and_tokens) {
    Fixture f;
    fixture(&f, 15);
    DecodeOptions o = options(2, 1, 4);
    o.max_len_a = 0;
    o.max_len_b = 40;
    // The lines whose best hypothesis ends with EOS (shorter than the cap): a
    // random model loops on some lines until the cap (see the BUG test below).
    int **src = encode_all(&f, LINES, NLINES, 0);
    Hypothesis *h = xcalloc(NLINES, sizeof *h);
    translate_ids(&f.m, src, NLINES, &o, h);
    char *ended[NLINES];
    size_t n = 0;
    for (size_t i = 0; i < NLINES; i++) {
        if ((size_t)arrlen(h[i].ids) < length_cap(&f.m, &o, (size_t)arrlen(src[i]))) ended[n++] = LINES[i];
        arrfree(h[i].ids);
        arrfree(src[i]);
    }
    free(h);
    free(src);
    cr_assert_geq(n, 3, "only %zu lines end with EOS: the test says little", n);
    size_t capped = 0;
    expect_stats(&f, ended, n, &o, &capped);
    cr_assert_eq(capped, 0);
    // stats may be NULL.
    char *texts[NLINES];
    cr_assert_eq(translate_lines(&f.m, &f.t, 0, LINES, NLINES, &o, "x", texts, NULL, NULL), NMT_OK);
    for (size_t i = 0; i < NLINES; i++) free(texts[i]);
    fixture_free(&f);
}

// TranslateStats.tokens counts output tokens and EOS, also the EOS forced at
// the length cap.
Test(translate, stats_count_the_eos_forced_at_the_cap) {
    Fixture f;
    fixture(&f, 15);
    DecodeOptions o = options(2, 1, 4);
    o.max_len_a = 0;
    o.max_len_b = 3;  // short: most random hypotheses stop at the cap
    size_t capped = 0;
    expect_stats(&f, LINES, NLINES, &o, &capped);
    cr_assert_gt(capped, 0, "no sentence stopped at the cap: the test says nothing");
    fixture_free(&f);
}

// A joint BPE tokenizer learned from the training text and a random model over it.
static void bpe_fixture(Fixture *f, uint64_t seed) {
    memset(f, 0, sizeof *f);
    const char *sp = write_tmp("train.src", SRC_TEXT), *tp = write_tmp("train.tgt", TGT_TEXT);
    const char *files[] = {sp, tp};
    f->t.kind = TOK_BPE;
    cr_assert_eq(bpe_learn(&f->t.bpe, files, 2, 300), NMT_OK, "%s", err_msg());
    int V = tokenizer_vocab_size(&f->t, SIDE_SRC);
    cr_assert_eq(V, tokenizer_vocab_size(&f->t, SIDE_TGT));
    ModelShape s = {.d_model = 16, .heads = 2, .d_ff = 32, .enc_layers = 1, .dec_layers = 1, .tie_output = 1,
                    .shared_vocab = 1, .src_vocab = V, .tgt_vocab = V, .max_len = 64};
    cr_assert_eq(model_create(&f->m, &s), NMT_OK, "%s", err_msg());
    model_init_params(&f->m, seed);
}

Test(translate, bpe_tokenizer_texts_are_translate_ids_decoded) {
    Fixture f;
    bpe_fixture(&f, 17);
    DecodeOptions o = options(2, 2, 3);
    o.max_len_b = 2;  // keep outputs short
    expect_consistent_with_ids(&f, LINES, NLINES, &o);
    // BPE's own UTF-8 check names what:line too.
    char *bad[] = {"ein mann", "ok", "caf\xe9"};
    char *texts[6];
    int rc = translate_lines(&f.m, &f.t, 0, bad, 3, &o, "latin1.txt", texts, NULL, NULL);
    cr_assert_eq(rc, NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "latin1.txt:3"), "'%s' does not name latin1.txt:3", err_msg());
    err_clear();
    fixture_free(&f);
}

// translate_lines returns UTF-8 text: with BPE a model may emit byte tokens
// (<0xC3>, ...) that do not form whole UTF-8 sequences; decoding replaces
// them with U+FFFD (scoring invalid text failed: validation BLEU stopped
// training with the BPE tokenizer).
Test(translate, bpe_outputs_are_valid_utf8) {
    Fixture f;
    bpe_fixture(&f, 17);
    DecodeOptions o = options(2, 2, 3);
    o.max_len_b = 8;
    Result r = run(&f, LINES, NLINES, &o, 0);
    for (size_t i = 0; i < NLINES * 2; i++) {
        cr_assert(utf8_valid(r.texts[i], strlen(r.texts[i])), "sentence %zu rank %zu: not UTF-8", i / 2, i % 2);
    }
    result_free(&r, NLINES * 2);
    fixture_free(&f);
}

// ---------------------------------------------------------------- models that overflow

// translate_lines on a model whose scores are not finite: NMT_ERR_RUNTIME
// naming the input and the sentence, and nothing returned (not empty lines
// with NaN scores).
static void expect_nonfinite_refused(Fixture *f, int beam) {
    DecodeOptions o = options(beam, beam, 4);
    size_t nb = (size_t)beam;
    char **texts = xcalloc(NLINES * nb, sizeof *texts);
    double *scores = xcalloc(NLINES * nb, sizeof *scores);
    err_clear();
    int rc = translate_lines(&f->m, &f->t, 0, LINES, NLINES, &o, "input", texts, scores, NULL);
    cr_assert_eq(rc, NMT_ERR_RUNTIME, "beam %d: translated (rc %d), first score %g", beam, rc, scores[0]);
    cr_assert(strstr(err_msg(), "input: sentence 1, output position 1: the model's scores are not finite"), "%s",
              err_msg());
    for (size_t i = 0; i < NLINES * nb; i++) cr_assert_null(texts[i], "text %zu handed over", i);
    free(texts);
    free(scores);
}

Test(translate, nan_scores_are_an_error) {
    Fixture f;
    fixture(&f, 7);
    for (size_t i = 0; i < f.m.nparams; i++) f.m.params[i] = NAN;
    expect_nonfinite_refused(&f, 1);
    expect_nonfinite_refused(&f, 3);
    fixture_free(&f);
}

// With int8 weights a NaN in the float values (here the LayerNorms) used to
// be cast to int8 (undefined; 0 in practice), which hid it: finite, uniform
// scores. It now reaches the scores, and the decoder stops.
Test(translate, int8_nan_activations_are_an_error) {
    Fixture f;
    fixture(&f, 7);
    cr_assert_eq(model_quantize(&f.m, "test"), NMT_OK, "%s", err_msg());
    for (size_t i = 0; i < f.m.nparams; i++) f.m.params[i] = NAN;
    expect_nonfinite_refused(&f, 1);
    expect_nonfinite_refused(&f, 2);
    fixture_free(&f);
}

// Quantizing refuses weights that are not finite, naming the tensor.
Test(translate, int8_quantize_refuses_nan_weights) {
    Fixture f;
    fixture(&f, 7);
    f.m.params[f.m.tensors[1].offset + 5] = NAN;
    err_clear();
    cr_assert_eq(model_quantize(&f.m, "m.ckpt"), NMT_ERR_INPUT);
    char want[128];
    snprintf(want, sizeof want, "m.ckpt: tensor '%s' [0, 5] is not finite", f.m.tensors[1].name);
    cr_assert(strstr(err_msg(), want), "%s", err_msg());
    cr_assert_null(f.m.quant);
    fixture_free(&f);
}

// Every weight the smallest denormal: a degenerate model, but its forward
// pass is finite (LayerNorm's epsilon keeps 0 / 0 away), float and int8 (whose
// activation rows are then tiny: 127 / maxabs overflows, see qgemm.c).
Test(translate, denormal_weights_translate) {
    Fixture f;
    fixture(&f, 7);
    for (size_t i = 0; i < f.m.nparams; i++) f.m.params[i] = (real)0x1p-149;
    for (int int8 = 0; int8 < 2; int8++) {
        if (int8) cr_assert_eq(model_quantize(&f.m, "test"), NMT_OK, "%s", err_msg());
        DecodeOptions o = options(2, 2, 4);
        Result r = run(&f, LINES, NLINES, &o, 0);
        for (size_t i = 0; i < NLINES * 2; i++)
            cr_assert(isfinite(r.scores[i]), "int8 %d: score %zu: %g", int8, i, r.scores[i]);
        result_free(&r, NLINES * 2);
    }
    fixture_free(&f);
}
