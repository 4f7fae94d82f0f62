// test_bleu.c — BLEU / chrF: hand-computed cases, the 13a tokenizer, the
// numbers sacreBLEU's own test suite publishes, and reading and scoring files
// as `nmt bleu` does (its command line is checked by tests/cli.sh).
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/bleu.h"
#include "common/util.h"

// ---------------------------------------------------------------------------
// helpers

static BleuResult bleu_corpus(const char *const *hyps, const char *const *refs, int n, const BleuOptions *o) {
    BleuStats s;
    if (o) cr_assert_eq(bleu_stats_init_opts(&s, o), NMT_OK);
    else bleu_stats_init(&s, 0);
    for (int i = 0; i < n; i++) cr_assert_eq(bleu_add(&s, hyps[i], refs[i]), NMT_OK, "segment %d", i);
    return bleu_result(&s);
}

static double bleu1(const char *hyp, const char *ref, const BleuOptions *o) {
    return bleu_corpus(&hyp, &ref, 1, o).score;
}

// Corpus BLEU with two reference streams.
static BleuResult bleu_corpus2(const char *const *hyps, const char *const *ra, const char *const *rb, int n,
                               const BleuOptions *o) {
    BleuStats s;
    if (o) cr_assert_eq(bleu_stats_init_opts(&s, o), NMT_OK);
    else bleu_stats_init(&s, 0);
    for (int i = 0; i < n; i++) {
        const char *refs[2] = {ra[i], rb[i]};
        cr_assert_eq(bleu_add_refs(&s, hyps[i], refs, 2), NMT_OK);
    }
    return bleu_result(&s);
}

static double chrf_corpus(const char *const *hyps, const char *const *refs, int n, const ChrfOptions *o) {
    ChrfStats s;
    if (o) cr_assert_eq(chrf_stats_init_opts(&s, o), NMT_OK);
    else chrf_stats_init(&s, 0);
    for (int i = 0; i < n; i++) cr_assert_eq(chrf_add(&s, hyps[i], refs[i]), NMT_OK);
    return chrf_result(&s).score;
}

static double chrf1(const char *hyp, const char *ref, const ChrfOptions *o) {
    return chrf_corpus(&hyp, &ref, 1, o);
}

static void expect_tok(const char *in, int lowercase, const char *want) {
    char *out = NULL;
    cr_assert_eq(bleu_tokenize_13a(in, lowercase, &out), NMT_OK, "tokenize '%s'", in);
    cr_expect_str_eq(out, want, "tokenize '%s' (lowercase %d)", in, lowercase);
    free(out);
}

// sacreBLEU's raw_corpus_bleu(): no tokenizer, floor smoothing, effective order.
static BleuOptions raw_opts(double floor_value) {
    BleuOptions o = bleu_default_options();
    o.tokenize = BLEU_TOK_NONE;
    o.smooth = BLEU_SMOOTH_FLOOR;
    o.smooth_value = floor_value;
    o.effective_order = 1;
    return o;
}

// ---------------------------------------------------------------------------
// hand-computed BLEU

Test(bleu, perfect_match_is_100) {
    const char *h[] = {"The cat sat on the mat.", "A second, longer line with 12,000.5 words!"};
    BleuResult r = bleu_corpus(h, h, 2, NULL);
    cr_expect_float_eq(r.score, 100.0, 1e-9);
    cr_expect_float_eq(r.bp, 1.0, 0);
    for (int n = 0; n < 4; n++) cr_expect_float_eq(r.precisions[n], 100.0, 1e-12);
    cr_expect_eq(r.hyp_len, 16);  // 7 tokens + 9 tokens ("." "," "!" split off, "12,000.5" kept)
    cr_expect_eq(r.ref_len, 16);
}

Test(bleu, no_overlap_is_0) {
    BleuResult r;
    const char *h = "alpha beta gamma delta", *ref = "one two three four";
    r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_eq(r.score, 0.0);
    for (int n = 0; n < 4; n++) cr_expect_eq(r.precisions[n], 0.0);
}

Test(bleu, brevity_penalty) {
    // hyp has 5 tokens, all of whose n-grams occur in the 6-token reference:
    // every precision is 100%, BP = exp(1 - 6/5) = exp(-0.2) = 0.818730753...
    BleuResult r;
    const char *h = "the cat sat on the", *ref = "the cat sat on the mat";
    r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_float_eq(r.bp, 0.8187307530779819, 1e-12);
    cr_expect_float_eq(r.score, 81.87307530779819, 1e-9);
    cr_expect_float_eq(r.ratio, 5.0 / 6.0, 1e-12);
    char buf[256];
    bleu_format(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "BLEU = 81.87 100.0/100.0/100.0/100.0 (BP = 0.819 ratio = 0.833 hyp_len = 5 ref_len = 6)");
}

Test(bleu, longer_hypothesis_has_no_penalty) {
    BleuResult r;
    const char *h = "the cat sat on the mat today", *ref = "the cat sat on the mat";
    r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_eq(r.bp, 1.0);
    // precisions 6/7, 5/6, 4/5, 3/4: (6/7 * 5/6 * 4/5 * 3/4)^(1/4) = (3/7)^(1/4)
    cr_expect_float_eq(r.score, 100.0 * pow(3.0 / 7.0, 0.25), 1e-9);
}

Test(bleu, exp_smoothing_one_zero_order) {
    // hyp "the cat sat down" vs ref "the cat sat up": 1-grams 3/4, 2-grams 2/3,
    // 3-grams 1/2, 4-grams 0/1 -> exp smoothing: 1/(2^1 * 1) = 1/2.
    // BLEU = (3/4 * 2/3 * 1/2 * 1/2)^(1/4) = (1/8)^(1/4) = 0.594603557...
    BleuResult r;
    const char *h = "the cat sat down", *ref = "the cat sat up";
    r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_float_eq(r.precisions[3], 50.0, 1e-12);
    cr_expect_float_eq(r.score, 59.46035575013605, 1e-9);
}

Test(bleu, exp_smoothing_two_zero_orders) {
    // hyp "a b x c d" vs ref "a b y c d": 1-grams 4/5, 2-grams 2/4 (a b, c d),
    // 3-grams 0/3 -> 1/(2*3) = 1/6, 4-grams 0/2 -> 1/(4*2) = 1/8 (k keeps growing).
    // BLEU = (4/5 * 1/2 * 1/6 * 1/8)^(1/4) = (1/120)^(1/4) = 0.302137539...
    BleuResult r;
    const char *h = "a b x c d", *ref = "a b y c d";
    r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_float_eq(r.precisions[2], 100.0 / 6.0, 1e-12);
    cr_expect_float_eq(r.precisions[3], 12.5, 1e-12);
    cr_expect_float_eq(r.score, 30.21375397356768, 1e-9);
}

Test(bleu, short_corpus_without_effective_order_is_0) {
    // Three tokens: no 4-grams at all, so corpus BLEU (effective_order off) is 0
    // even though everything matches; with effective order it is 100.
    const char *h = "a b c", *ref = "a b c";
    cr_expect_eq(bleu1(h, ref, NULL), 0.0);
    BleuOptions o = bleu_default_options();
    o.effective_order = 1;
    cr_expect_float_eq(bleu1(h, ref, &o), 100.0, 1e-9);
}

Test(bleu, statistics_are_summed_over_the_corpus) {
    // Corpus BLEU is not the mean of sentence scores: "x y z w" alone scores 0,
    // but it adds to the totals of the first sentence's perfect match.
    const char *h[] = {"a b c d e", "x y z w"}, *ref[] = {"a b c d e", "p q r s"};
    BleuResult r = bleu_corpus(h, ref, 2, NULL);
    cr_expect_float_eq(r.counts[0], 5, 0);
    cr_expect_float_eq(r.totals[0], 9, 0);
    cr_expect_float_eq(r.totals[3], 3, 0);
    // (5/9 * 4/7 * 3/5 * 2/3)^(1/4)
    cr_expect_float_eq(r.score, 100.0 * pow(5.0 / 9 * 4.0 / 7 * 3.0 / 5 * 2.0 / 3, 0.25), 1e-9);
}

Test(bleu, clipping) {
    // "the the the the" vs "the cat": unigram matches clipped to 1 of 4.
    const char *h = "the the the the", *ref = "the cat sat on";
    BleuResult r = bleu_corpus(&h, &ref, 1, NULL);
    cr_expect_float_eq(r.counts[0], 1, 0);
    cr_expect_float_eq(r.totals[0], 4, 0);
}

Test(bleu, empty_hypothesis) {
    const char *h[] = {"", "a b c d"}, *ref[] = {"some words here", "a b c d"};
    BleuResult r = bleu_corpus(h, ref, 2, NULL);
    cr_expect_eq(r.hyp_len, 4);
    cr_expect_eq(r.ref_len, 7);
    cr_expect_float_eq(r.score, 100.0 * exp(1.0 - 7.0 / 4.0), 1e-9);
}

Test(bleu, multiple_references) {
    BleuStats s;
    // Closest reference length, ties going to the shorter one whatever the order.
    const char *r1[] = {"a b c d e f", "a b c d"};
    bleu_stats_init(&s, 0);
    cr_assert_eq(bleu_add_refs(&s, "a b c d e", r1, 2), NMT_OK);
    cr_expect_eq(s.ref_len, 4);
    cr_expect_eq(bleu_result(&s).bp, 1.0);
    // Clipping against the largest count in any one reference: min(3, max(1, 2)).
    const char *r2[] = {"the cat", "the the dog"};
    bleu_stats_init(&s, 0);
    cr_assert_eq(bleu_add_refs(&s, "the the the", r2, 2), NMT_OK);
    cr_expect_eq(s.counts[0], 2);
    cr_expect_eq(s.totals[0], 3);
    // Empty references are skipped when another one exists.
    const char *r3[] = {"", "a b c d"};
    bleu_stats_init(&s, 0);
    cr_assert_eq(bleu_add_refs(&s, "a b", r3, 2), NMT_OK);
    cr_expect_eq(s.ref_len, 4);
}

Test(bleu, lowercase_option) {
    const char *h = "THE CAT SAT DOWN", *ref = "the cat sat down";
    cr_expect_eq(bleu1(h, ref, NULL), 0.0);
    BleuStats s;
    bleu_stats_init(&s, 1);
    cr_assert_eq(bleu_add(&s, h, ref), NMT_OK);
    cr_expect_float_eq(bleu_result(&s).score, 100.0, 1e-9);
    // Non-ASCII letters are lowercased too.
    bleu_stats_init(&s, 1);
    cr_assert_eq(bleu_add(&s, "ÜBER DIE STRAẞE GEHT ÉMILE", "über die straße geht émile"), NMT_OK);
    cr_expect_float_eq(bleu_result(&s).score, 100.0, 1e-9);
}

Test(bleu, invalid_utf8_is_an_input_error) {
    BleuStats s;
    bleu_stats_init(&s, 0);
    err_clear();
    cr_expect_eq(bleu_add(&s, "ok \xC3\x28 bad", "ok"), NMT_ERR_INPUT);
    cr_expect(strstr(err_msg(), "UTF-8") != NULL, "message: %s", err_msg());
    cr_expect_eq(s.n_sentences, 0);
    cr_expect_eq(bleu_add(&s, "ok", "\xED\xA0\x80"), NMT_ERR_INPUT);  // a surrogate
    cr_expect_eq(bleu_add(&s, "\xC0\xAF", "ok"), NMT_ERR_INPUT);      // overlong '/'
    cr_expect_eq(s.n_sentences, 0);
    cr_expect_eq(s.hyp_len, 0);
}

Test(bleu, utf8_check) {
    cr_expect_eq(bleu_utf8_check("plain", 5), -1);
    cr_expect_eq(bleu_utf8_check("M\xC3\xBCller \xF0\x9F\x98\x80", 12), -1);
    cr_expect_eq(bleu_utf8_check("ab\xFF", 3), 2);
    cr_expect_eq(bleu_utf8_check("ab\xE2\x82", 4), 2);          // truncated
    cr_expect_eq(bleu_utf8_check("\xF4\x90\x80\x80", 4), 0);    // above U+10FFFF
}

Test(bleu, bad_options_are_rejected) {
    BleuStats s;
    BleuOptions o = bleu_default_options();
    o.max_order = 0;
    err_clear();
    cr_expect_eq(bleu_stats_init_opts(&s, &o), NMT_ERR_INPUT);
    o.max_order = BLEU_MAX_ORDER + 1;
    cr_expect_eq(bleu_stats_init_opts(&s, &o), NMT_ERR_INPUT);
    ChrfStats c;
    ChrfOptions co = chrf_default_options();
    co.beta = 0;
    cr_expect_eq(chrf_stats_init_opts(&c, &co), NMT_ERR_INPUT);
}

// ---------------------------------------------------------------------------
// the 13a tokenizer

Test(tok13a, punctuation) {
    expect_tok("Hello, world!", 0, "Hello , world !");
    expect_tok("(a) [b] {c} <d> a/b a:b a;b a?b a@b a#b a$b a%b a^b a_b a+b a=b a|b a~b a`b a\\b a*b", 0,
               "( a ) [ b ] { c } < d > a / b a : b a ; b a ? b a @ b a # b a $ b a % b a ^ b a _ b "
               "a + b a = b a | b a ~ b a ` b a \\ b a * b");
    expect_tok("  many   spaces\there  ", 0, "many spaces here");
    expect_tok("", 0, "");
}

Test(tok13a, periods_and_commas_with_digits) {
    expect_tok("1,000.5", 0, "1,000.5");
    expect_tok("It costs $5.00.", 0, "It costs $ 5.00 .");
    expect_tok("3.14, 2.7", 0, "3.14 , 2.7");
    expect_tok("a,b a.b", 0, "a , b a . b");
    expect_tok(".5 and 5.", 0, ". 5 and 5 .");     // period before a digit, after a non-digit
    expect_tok("U.S.A. end.", 0, "U . S . A . end .");
    expect_tok("1,a", 0, "1 , a");                 // comma after a digit, before a letter
    expect_tok("x..y", 0, "x . . y");
}

Test(tok13a, hyphens_and_dashes) {
    expect_tok("well-known", 0, "well-known");     // the hyphen is not in the symbol class
    expect_tok("1990-2000", 0, "1990 - 2000");     // dash after a digit is split
    expect_tok("a-5 x - y", 0, "a-5 x - y");
    expect_tok("line-\nbreak", 0, "linebreak");    // '-\n' joins, as in mteval
    expect_tok("two\nlines", 0, "two lines");
}

Test(tok13a, quotes_and_apostrophes) {
    expect_tok("\"Hi\" she said", 0, "\" Hi \" she said");
    expect_tok("don't 'quoted'", 0, "don't 'quoted'");  // apostrophes stay inside tokens
    expect_tok("Müller's café.", 0, "Müller's café .");
}

Test(tok13a, entities_and_skipped) {
    expect_tok("&quot;A&quot; &amp; B &lt;3&gt;", 0, "\" A \" & B < 3 >");
    expect_tok("&amp;lt;", 0, "<");  // replaced in order: &amp; first, then &lt;
    expect_tok("&apos; &nbsp;", 0, "& apos ; & nbsp ;");  // other entities are not decoded
    expect_tok("a <skipped> b", 0, "a b");
}

Test(tok13a, unicode) {
    expect_tok("Grüße, Ελλάδα — 東京!", 0, "Grüße , Ελλάδα — 東京 !");  // non-ASCII symbols untouched
    expect_tok("a\xC2\xA0" "b\xE2\x80\x89" "c", 0, "a b c");  // NBSP and thin space split like str.split()
    expect_tok("trailing \xE3\x80\x80", 0, "trailing");
}

Test(tok13a, lowercase) {
    expect_tok("The DOG, Müller's ÄÖÜ", 1, "the dog , müller's äöü");
    // Python's str.lower(): final sigma, and U+0130 -> "i" + U+0307.
    expect_tok("ὈΔΥΣΣΕΎΣ", 1, "ὀδυσσεύς");
    expect_tok("İ", 1, "i\xCC\x87");
    expect_tok("ΣΑΣ.", 1, "σας .");
}

// ---------------------------------------------------------------------------
// sacreBLEU's published numbers (mjpost/sacrebleu, test/test_bleu.py)

static const char *readme_hyps[] = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
static const char *readme_ref_a[] = {"The dog bit the man.", "It was not unexpected.", "The man bit him first."};
static const char *readme_ref_b[] = {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."};

// test_bleu.py: test_corpus_bleu
Test(sacrebleu_published, corpus_bleu_readme_example) {
    cr_expect_float_eq(bleu_corpus2(readme_hyps, readme_ref_a, readme_ref_b, 3, NULL).score, 48.530827, 1e-6);
    BleuOptions o = bleu_default_options();
    o.tokenize = BLEU_TOK_NONE;
    cr_expect_float_eq(bleu_corpus2(readme_hyps, readme_ref_a, readme_ref_b, 3, &o).score, 49.1919566, 1e-6);
    o = bleu_default_options();
    o.smooth = BLEU_SMOOTH_NONE;
    cr_expect_float_eq(bleu_corpus2(readme_hyps, readme_ref_a, readme_ref_b, 3, &o).score, 48.530827, 1e-6);
    const char *empty[] = {"", "", ""};
    cr_expect_eq(bleu_corpus2(empty, readme_ref_a, readme_ref_b, 3, NULL).score, 0.0);
}

// test_bleu.py: test_max_ngram_order (compared as "%.2f" strings there too)
Test(sacrebleu_published, max_ngram_order) {
    const char *want[] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
    for (int order = 1; order <= 6; order++) {
        BleuOptions o = bleu_default_options();
        o.max_order = order;
        char got[32];
        snprintf(got, sizeof got, "%.2f", bleu_corpus2(readme_hyps, readme_ref_a, readme_ref_b, 3, &o).score);
        cr_expect_str_eq(got, want[order - 1], "max_ngram_order %d", order);
    }
}

// test_bleu.py: test_statistics and test_offset (raw_corpus_bleu)
Test(sacrebleu_published, statistics_and_offset) {
    const char *h = "am I am a character sequence", *ref = "I am a symbol string sequence a a";
    BleuOptions o = raw_opts(0.01);
    BleuResult r = bleu_corpus(&h, &ref, 1, &o);
    const double counts[] = {4, 2, 1, 0}, totals[] = {6, 5, 4, 3};
    for (int n = 0; n < 4; n++) {
        cr_expect_eq(r.counts[n], counts[n], "counts[%d]", n);
        cr_expect_eq(r.totals[n], totals[n], "totals[%d]", n);
    }
    o = raw_opts(0.1);  // raw_corpus_bleu's default floor
    cr_expect_float_eq(bleu1(h, ref, &o) / 100, 0.1555722182, 1e-8);
    o = raw_opts(-1);   // "None": the floor method's default, 0.1
    cr_expect_float_eq(bleu1(h, ref, &o) / 100, 0.1555722182, 1e-8);
    o = raw_opts(0.0);
    cr_expect_eq(bleu1(h, ref, &o), 0.0);
}

// test_bleu.py: test_raw_bleu and test_effective_order
Test(sacrebleu_published, raw_bleu_and_effective_order) {
    BleuOptions o = raw_opts(0.01);
    const char *h2[] = {"this is a test", "another test"}, *r2[] = {"ref1", "ref2"};
    cr_expect_eq(bleu_corpus(h2, r2, 2, &o).score, 0.0);
    cr_expect_float_eq(bleu1("this is a test", "this is a test", &o) / 100, 1.0, 1e-8);
    cr_expect_float_eq(bleu1("this is a fest", "this is a test", &o) / 100, 0.223606797749979, 1e-8);
    cr_expect_float_eq(bleu1("test", "a test", &o) / 100, 0.3678794411714425, 1e-8);
    cr_expect_float_eq(bleu1("a test", "a test", &o) / 100, 1.0, 1e-8);
    cr_expect_float_eq(bleu1("a little test", "a test", &o) / 100, 0.03218297948685433, 1e-8);
}

// test_bleu.py: test_scoring (compute_bleu's own default is smooth_method='none')
// and test_degenerate_statistics (floor smoothing, exact zeros)
Test(sacrebleu_published, scoring_from_statistics) {
    BleuOptions o = bleu_default_options();
    o.smooth = BLEU_SMOOTH_NONE;
    const long c[] = {9, 7, 5, 3}, t[] = {10, 8, 6, 4};
    cr_expect_float_eq(bleu_compute(c, t, 11, 11, &o).score / 100, 0.8375922397, 1e-8);

    struct { long c[4], t[4], sys, ref; double floor; } d[] = {
        {{0, 0, 0, 0}, {4, 4, 2, 1}, 0, 1, 0.0},   {{0, 0, 0, 0}, {10, 11, 12, 0}, 14, 10, 0.0},
        {{0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0, 0.0},   {{6, 5, 4, 0}, {6, 5, 4, 3}, 6, 6, 0.0},
        {{0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0, 0.1},   {{0, 0, 0, 0}, {0, 0, 0, 0}, 1, 5, 0.01},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        o = bleu_default_options();
        o.smooth = BLEU_SMOOTH_FLOOR;
        o.smooth_value = d[i].floor;
        cr_expect_eq(bleu_compute(d[i].c, d[i].t, d[i].sys, d[i].ref, &o).score, 0.0, "degenerate case %zu", i);
    }
}

// mjpost/sacrebleu test/test_sentence_bleu.py (issue #98 example; sentence BLEU
// = corpus BLEU of one segment with effective_order=True; their EPSILON 1e-3)
Test(sacrebleu_published, sentence_bleu_smoothing_methods) {
    const char *ref = "producţia de zahăr brut se exprimă în zahăr alb;";
    const char *sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
    struct { BleuSmooth m; double v; BleuTokenize tok; double want; } c[] = {
        {BLEU_SMOOTH_EXP, -1, BLEU_TOK_13A, 8.493},      {BLEU_SMOOTH_NONE, -1, BLEU_TOK_13A, 0.0},
        {BLEU_SMOOTH_FLOOR, -1, BLEU_TOK_13A, 4.51688},  {BLEU_SMOOTH_FLOOR, 0.1, BLEU_TOK_13A, 4.51688},
        {BLEU_SMOOTH_FLOOR, 0.5, BLEU_TOK_13A, 10.10},   {BLEU_SMOOTH_ADD_K, -1, BLEU_TOK_13A, 14.882},
        {BLEU_SMOOTH_ADD_K, 1, BLEU_TOK_13A, 14.882},    {BLEU_SMOOTH_ADD_K, 2, BLEU_TOK_13A, 21.389},
        {BLEU_SMOOTH_EXP, -1, BLEU_TOK_NONE, 7.347},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        BleuOptions o = bleu_default_options();
        o.smooth = c[i].m;
        o.smooth_value = c[i].v;
        o.tokenize = c[i].tok;
        o.effective_order = 1;
        cr_expect_float_eq(bleu1(sys, ref, &o), c[i].want, 1e-3, "case %zu", i);
        // issue #141: no match at all is 0 whatever the smoothing
        cr_expect_eq(bleu1("this is a cat", "okay thanks", &o), 0.0, "zero case %zu", i);
    }
}

// ---------------------------------------------------------------------------
// chrF

Test(chrf, hand_computed) {
    cr_expect_float_eq(chrf1("the cat", "the cat", NULL), 100.0, 1e-9);
    cr_expect_float_eq(chrf1("a b c", "abc", NULL), 100.0, 1e-9);  // whitespace is removed
    cr_expect_eq(chrf1("xyz", "abc", NULL), 0.0);
    // "ab" vs "abc": order 1 P = 2/2, R = 2/3; order 2 P = 1/1, R = 1/2; order 3
    // has no hypothesis n-gram and orders 4-6 no reference n-gram: both skipped.
    // P = 1, R = 7/12, F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11.
    cr_expect_float_eq(chrf1("ab", "abc", NULL), 700.0 / 11.0, 1e-9);
    char buf[64];
    ChrfResult r = {700.0 / 11.0, 2.0};
    chrf_format(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "chrF2 = 63.64");
}

Test(chrf, corpus_sums_statistics) {
    // "ab"/"ab" and "x"/"y": order 1 gets 2 matches of 3 hyp and 3 ref chars,
    // order 2 gets 1 of 1 (the second pair has no 2-grams):
    // P = R = (2/3 + 1) / 2 = 5/6, F = 5/6.
    const char *h[] = {"ab", "x"}, *ref[] = {"ab", "y"};
    cr_expect_float_eq(chrf_corpus(h, ref, 2, NULL), 500.0 / 6.0, 1e-9);
}

Test(chrf, corpus_ignores_hypothesis_ngrams_without_reference_ngrams) {
    // ("abc", "ab") + ("xyz", "xyz"). The first reference has no 3-grams, so the
    // first hypothesis' 3-gram is not counted (sacreBLEU's `hyp_count if
    // ref_ngrams else 0`). Order 1: P = 5/6, order 2: P = 3/4, order 3: P = 1/1,
    // R = 1 throughout; P = 31/36, F2 = 5 P / (4 P + 1) = 155/160.
    const char *h[] = {"abc", "xyz"}, *ref[] = {"ab", "xyz"};
    cr_expect_float_eq(chrf_corpus(h, ref, 2, NULL), 96.875, 1e-9);
}

Test(chrf, multiple_references_keep_the_best) {
    ChrfStats s;
    chrf_stats_init(&s, 0);
    const char *refs[] = {"xyz", "abc", "abd"};
    cr_assert_eq(chrf_add_refs(&s, "abc", refs, 3), NMT_OK);
    cr_expect_float_eq(chrf_result(&s).score, 100.0, 1e-9);
    cr_expect_eq(s.stats[0][1], 3);
    // Equal F-scores (0 and 0): the first reference's statistics are kept.
    const char *tie[] = {"b", "cc"};
    chrf_stats_init(&s, 0);
    cr_assert_eq(chrf_add_refs(&s, "a", tie, 2), NMT_OK);
    cr_expect_eq(s.stats[0][1], 1);
}

Test(chrf, lowercase_and_unicode) {
    // Case-sensitive "Straße" vs "straße": only the n-grams without the first
    // letter match, so P = R = (5/6 + 4/5 + 3/4 + 2/3 + 1/2 + 0/1) / 6 = 3.55 / 6.
    cr_expect_float_eq(chrf1("Straße", "straße", NULL), 100.0 * 3.55 / 6.0, 1e-9);
    ChrfStats s;
    chrf_stats_init(&s, 1);
    cr_assert_eq(chrf_add(&s, "STRASSE Ü", "strasse ü"), NMT_OK);
    cr_expect_float_eq(chrf_result(&s).score, 100.0, 1e-9);
    // Characters are code points: "ü" vs "u" shares nothing at order 1.
    cr_expect_eq(chrf1("ü", "u", NULL), 0.0);
}

// mjpost/sacrebleu test/test_chrf.py (EPSILON 1e-4 there)
Test(sacrebleu_published, chrf_eps_smoothing_beta3) {  // test_chrf
    ChrfOptions o = chrf_default_options();
    o.beta = 3;
    o.eps_smoothing = 1;
    struct { const char *h, *r; double want; } c[] = {
        {"abcdefg", "hijklmnop", 0.0}, {"a", "b", 0.0}, {"", "b", 0.0}, {"", "ref", 0.0}, {"", "reference", 0.0},
        {"aa", "ab", 8.3333}, {"a", "a", 16.6667}, {"a b c", "a b c", 50.0}, {"a b c", "abc", 50.0},
        {" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
         "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
         63.361730},
        {" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. ",
         "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 64.1302698},
        {"Niemand hat die Absicht, eine Mauer zu errichten", "Niemand hat die Absicht, eine Mauer zu errichten", 100.0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cr_expect_float_eq(chrf1(c[i].h, c[i].r, &o), c[i].want, 1e-4, "case %zu", i);
    const char *h[] = {"a", "b"}, *r[] = {"a", "c"};
    cr_expect_float_eq(chrf_corpus(h, r, 2, &o), 8.3333, 1e-4);
}

Test(sacrebleu_published, chrf_effective_order_beta3) {  // test_chrf_eff_order
    ChrfOptions o = chrf_default_options();
    o.beta = 3;
    struct { const char *h, *r; double want; } c[] = {
        {"a", "a", 100.0}, {"", "reference", 0.0}, {"a b c", "a b c", 100.0},
        {"a b c", "abc", 100.0}, {"", "c", 0.0}, {"aa", "ab", 25.0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cr_expect_float_eq(chrf1(c[i].h, c[i].r, &o), c[i].want, 1e-4, "case %zu", i);
    const char *h[] = {"a", "b"}, *r[] = {"a", "c"};
    cr_expect_float_eq(chrf_corpus(h, r, 2, &o), 50.0, 1e-4);
}

Test(sacrebleu_published, chrf_keep_whitespace_beta3) {  // test_chrf_keep_whitespace
    ChrfOptions o = chrf_default_options();
    o.beta = 3;
    o.whitespace = 1;
    cr_expect_float_eq(chrf1("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
                             "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", &o),
                       67.3481606, 1e-4);
    cr_expect_float_eq(
        chrf1("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
              "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
              &o),
        65.2414427, 1e-4);
}

Test(sacrebleu_published, chrf_sentence_level_czech) {  // test_chrf_sentence_level (beta 2, eps smoothing)
    ChrfOptions o = chrf_default_options();
    o.eps_smoothing = 1;
    cr_expect_float_eq(chrf1("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
                             "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", &o),
                       39.14078509, 1e-4);
    cr_expect_float_eq(chrf1("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
                             "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", &o),
                       31.22557079, 1e-4);
    cr_expect_float_eq(chrf1("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
                             "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", &o),
                       57.15704367, 1e-4);
}

// ---------------------------------------------------------------------------
// Files of segments, as `nmt bleu` reads and scores them

static char *write_temp(const char *text) {
    char *path = xstrdup("/tmp/nmt_test_bleu_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

typedef struct {
    char *text;
    char **lines;
    size_t n;
} Segments;

// Reads `content` back through a temporary file named `name` in errors.
static int read_segments(const char *content, const char *name, Segments *s) {
    char *path = write_temp(content);
    err_clear();
    int rc = bleu_read_segments(path, name ? name : path, &s->text, &s->lines, &s->n);
    unlink(path);
    free(path);
    return rc;
}

static void free_segments(Segments *s) {
    free(s->lines);
    free(s->text);
}

// The score line(s) `nmt bleu` prints for these two texts.
static void score_texts(const char *hyp, const char *ref, int lowercase, int chrf, char *out, size_t n) {
    Segments h, r;
    cr_assert_eq(read_segments(hyp, "<stdin>", &h), 0, "%s", err_msg());
    cr_assert_eq(read_segments(ref, NULL, &r), 0, "%s", err_msg());
    cr_assert_eq(h.n, r.n);
    BleuResult br;
    ChrfResult cr;
    cr_assert_eq(bleu_score_segments((const char *const *)h.lines, (const char *const *)r.lines, r.n, lowercase, &br,
                                     chrf ? &cr : NULL),
                 0);
    bleu_format(&br, out, n);
    if (chrf) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "\n");
        chrf_format(&cr, out + len + 1, n - len - 1);
    }
    free_segments(&h);
    free_segments(&r);
}

Test(bleu_files, scores_a_corpus) {
    char line[512];
    score_texts("The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n",
                "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n", 0, 1, line, sizeof line);
    // The single-reference score, cross-checked by hand: 12/17, 6/14, 4/11, 3/8.
    cr_expect_str_eq(line, "BLEU = 45.07 70.6/42.9/36.4/37.5 (BP = 1.000 ratio = 1.000 hyp_len = 17 ref_len = 17)\n"
                           "chrF2 = 50.04");
}

Test(bleu_files, lowercase_and_crlf) {
    char line[512];
    score_texts("THE QUICK BROWN FOX\nJUMPS OVER IT", "the quick brown fox\r\njumps over it\r\n", 1, 0, line,
                sizeof line);  // no final newline on the hypotheses
    cr_expect_str_eq(line, "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)");
}

Test(bleu_files, missing_file) {
    char *text = NULL, **lines = NULL;
    size_t n = 0;
    err_clear();
    cr_expect_eq(bleu_read_segments("/nonexistent/ref.txt", "/nonexistent/ref.txt", &text, &lines, &n),
                 NMT_ERR_INPUT);
    cr_expect(strstr(err_msg(), "/nonexistent/ref.txt") != NULL, "message: %s", err_msg());
    cr_expect(text == NULL && lines == NULL && n == 0);
}

Test(bleu_files, lines_as_python_reads_them) {
    Segments s;
    cr_assert_eq(read_segments("a\n\nb\n", NULL, &s), 0);
    cr_expect_eq(s.n, 3);
    cr_expect_str_eq(s.lines[1], "");
    cr_expect_str_eq(s.lines[2], "b");
    free_segments(&s);
    cr_assert_eq(read_segments("", NULL, &s), 0);
    cr_expect_eq(s.n, 0);
    free_segments(&s);
}

Test(bleu_files, invalid_utf8_and_nul_name_file_and_line) {
    char *path = write_temp("fine\nalso fine\nbad \xC3\x28 here\n");
    char *text, **lines;
    size_t n;
    err_clear();
    cr_expect_eq(bleu_read_segments(path, path, &text, &lines, &n), NMT_ERR_INPUT);
    char want[256];
    snprintf(want, sizeof want, "%s:3:", path);
    cr_expect(strstr(err_msg(), want) && strstr(err_msg(), "UTF-8"), "message: %s", err_msg());
    unlink(path);
    free(path);

    Segments s;
    cr_expect_eq(read_segments("ok\n\xFF\n", "<stdin>", &s), NMT_ERR_INPUT);
    cr_expect(strstr(err_msg(), "<stdin>:2:") != NULL, "message: %s", err_msg());
    path = write_temp("x");
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fwrite("a\nb\0c\n", 1, 6, f);
    fclose(f);
    err_clear();
    cr_expect_eq(bleu_read_segments(path, "nul", &text, &lines, &n), NMT_ERR_INPUT);
    cr_expect(strstr(err_msg(), "nul:2: line contains a NUL byte") != NULL, "message: %s", err_msg());
    unlink(path);
    free(path);
}
