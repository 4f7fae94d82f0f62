// test_data.c — the data layer on its own: corpus_load (ids, skipped pairs,
// errors naming file and line, CRLF), read_lines, and the batcher (token
// budget, padding, BOS/EOS, one visit per pair and epoch, shuffling by seed
// and epoch, resuming from a cursor).
#include <criterion/criterion.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus.h"
#include "common/rng.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"

TestSuite(data, .init = make_tmpdir, .fini = remove_tmpdir);

// A word tokenizer with one vocabulary per side, built from the given files
// (every word kept).
static void word_tokenizer(Tokenizer *t, const char *src_path, const char *tgt_path) {
    memset(t, 0, sizeof *t);
    t->kind = TOK_WORD;
    cr_assert_eq(vocab_build(&t->vocab[0], &src_path, 1, 1, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(vocab_build(&t->vocab[1], &tgt_path, 1, 1, 0), NMT_OK, "%s", err_msg());
}

// Pair i of the corpus has, word for word, the vocabulary's ids of the
// whitespace-separated words of src / tgt (split here, independently).
static void expect_side(const Vocab *v, const int *ids, int len, const char *line, size_t pair, const char *side) {
    char *copy = xstrdup(line), *save = NULL;
    int k = 0;
    for (char *w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save), k++) {
        cr_assert_lt(k, len, "pair %zu %s: more words in '%s' than %d ids", pair, side, line, len);
        cr_assert_eq(ids[k], vocab_id(v, w), "pair %zu %s word %d ('%s'): id %d, want %d", pair, side, k, w, ids[k],
                     vocab_id(v, w));
        cr_assert_neq(ids[k], TOK_UNK, "pair %zu: '%s' unknown to a vocabulary built from the file", pair, w);
    }
    cr_assert_eq(k, len, "pair %zu %s: %d words in '%s' but %d ids", pair, side, k, line, len);
    free(copy);
}

static void expect_pair(const Corpus *c, const Tokenizer *t, size_t i, const char *src, const char *tgt) {
    cr_assert_lt(i, c->n);
    expect_side(t->vocab[0], c->ids + c->src_off[i], c->src_len[i], src, i, "source");
    expect_side(t->vocab[1], c->ids + c->tgt_off[i], c->tgt_len[i], tgt, i, "target");
}

static void expect_error_naming(int rc, const char *needle) {
    cr_assert_eq(rc, NMT_ERR_INPUT, "rc %d (%s)", rc, err_msg());
    cr_assert_eq(err_code(), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), needle), "error '%s' does not name '%s'", err_msg(), needle);
    err_clear();
}

static void expect_empty_corpus(const Corpus *c) {
    cr_assert_eq(c->n, 0);
    cr_assert_null(c->ids);
    cr_assert_null(c->src_len);
    cr_assert_null(c->tgt_len);
}

// ---------------------------------------------------------------- corpus_load

Test(data, corpus_ids_are_the_vocabulary_ids_of_each_word) {
    static const char *const src[] = {"ein Haus", "das  Haus ist\tklein", "ein kleines Haus", "Haus"};
    static const char *const tgt[] = {"a house", "the house is small ", " a small house", "house house"};
    const char *sp = write_tmp("c.src", "ein Haus\ndas  Haus ist\tklein\nein kleines Haus\nHaus\n");
    const char *tp = write_tmp("c.tgt", "a house\nthe house is small \n a small house\nhouse house\n");
    Tokenizer t;
    word_tokenizer(&t, sp, tp);
    Corpus c;
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.skipped, 0);
    for (size_t i = 0; i < 4; i++) expect_pair(&c, &t, i, src[i], tgt[i]);
    // The most frequent word of each side got the first word id.
    cr_assert_eq(c.ids[c.src_off[0] + 1], TOK_SPECIALS, "'Haus' (4 times) should be id %d", TOK_SPECIALS);
    cr_assert_eq(c.ids[c.tgt_off[3]], TOK_SPECIALS, "'house' (5 times) should be id %d", TOK_SPECIALS);
    corpus_free(&c);
    expect_empty_corpus(&c);

    // A source vocabulary without some of the words: those load as <unk>.
    Tokenizer small;
    const char *vp = write_tmp("v.src", "Haus ein\n");
    word_tokenizer(&small, vp, tp);
    cr_assert_eq(corpus_load(&c, &small, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 4);
    const int *s1 = c.ids + c.src_off[1];  // das Haus ist klein
    cr_assert_eq(c.src_len[1], 4);
    cr_assert_eq(s1[0], TOK_UNK);
    cr_assert_eq(s1[1], vocab_id(small.vocab[0], "Haus"));
    cr_assert_eq(s1[2], TOK_UNK);
    cr_assert_eq(s1[3], TOK_UNK);
    corpus_free(&c);
    tokenizer_free(&small);
    tokenizer_free(&t);
}

Test(data, corpus_skips_empty_and_overlong_pairs) {
    // line: 1 kept; 2 empty source; 3 empty target; 4 blank source; 5 source of
    // 4 > 3; 6 exactly at both limits; 7 target of 4 > 3; 8 kept; 9 blank target.
    const char *sp = write_tmp("s", "a b\n\na\n   \t \na b c d\na b c\na\nc\nb\n");
    const char *tp = write_tmp("t", "x y\nx\n\nx\nx\nx y z\nx y z w\nz\n \t\n");
    Tokenizer t;
    word_tokenizer(&t, sp, tp);
    Corpus c;
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 3, 3), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 3);
    cr_assert_eq(c.skipped, 6);
    expect_pair(&c, &t, 0, "a b", "x y");
    expect_pair(&c, &t, 1, "a b c", "x y z");
    expect_pair(&c, &t, 2, "c", "z");
    corpus_free(&c);

    // 0 = no limit: only the empty and blank sides are skipped.
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 5);
    cr_assert_eq(c.skipped, 4);
    expect_pair(&c, &t, 0, "a b", "x y");
    expect_pair(&c, &t, 1, "a b c d", "x");
    expect_pair(&c, &t, 2, "a b c", "x y z");
    expect_pair(&c, &t, 3, "a", "x y z w");
    expect_pair(&c, &t, 4, "c", "z");
    corpus_free(&c);

    // One limit at a time.
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 3, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.skipped, 5);
    expect_pair(&c, &t, 2, "a", "x y z w");
    corpus_free(&c);
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 0, 1), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.skipped, 7);
    expect_pair(&c, &t, 0, "a b c d", "x");
    expect_pair(&c, &t, 1, "c", "z");
    corpus_free(&c);

    tokenizer_free(&t);

    // Every pair skipped: an error naming the source file, and no corpus.
    cr_assert_eq(err_code(), NMT_OK);
    sp = write_tmp("s2", "a b\n\nb\n");
    tp = write_tmp("t2", "x\ny\nx y\n");
    word_tokenizer(&t, sp, tp);
    expect_error_naming(corpus_load(&c, &t, sp, tp, 1, 1), sp);
    expect_empty_corpus(&c);
    tokenizer_free(&t);
}

Test(data, corpus_line_count_mismatch_names_both_files) {
    const char *sp = write_tmp("three.src", "a\nb\nc\n");
    const char *tp = write_tmp("two.tgt", "x\ny\n");
    Tokenizer t;
    word_tokenizer(&t, sp, tp);
    Corpus c;
    int rc = corpus_load(&c, &t, sp, tp, 0, 0);
    cr_assert(strstr(err_msg(), tp), "'%s' does not name %s", err_msg(), tp);
    expect_error_naming(rc, sp);
    expect_empty_corpus(&c);
    // The other way round too.
    rc = corpus_load(&c, &t, tp, sp, 0, 0);
    cr_assert(strstr(err_msg(), sp), "'%s' does not name %s", err_msg(), sp);
    expect_error_naming(rc, tp);
    expect_empty_corpus(&c);
    // A missing final newline is not an extra or a missing line.
    const char *tp2 = write_tmp("three.tgt", "x\ny\nz");
    cr_assert_eq(corpus_load(&c, &t, sp, tp2, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 3);
    corpus_free(&c);
    // But an extra empty line is a line.
    const char *tp3 = write_tmp("four.tgt", "x\ny\nz\n\n");
    expect_error_naming(corpus_load(&c, &t, sp, tp3, 0, 0), tp3);
    tokenizer_free(&t);
}

Test(data, corpus_invalid_utf8_names_file_and_line) {
    const char *good_s = write_tmp("good.src", "a b\nc\nd e\nf\n");
    const char *good_t = write_tmp("good.tgt", "x\ny\nz\nw\n");
    Tokenizer t;
    word_tokenizer(&t, good_s, good_t);
    Corpus c;
    char want[256];
    // Line 3 of the source: a truncated two-byte sequence.
    const char *bad_s = write_tmp("bad.src", "a b\nc\nd \xc3 e\nf\n");
    snprintf(want, sizeof want, "%s:3:", bad_s);
    int rc = corpus_load(&c, &t, bad_s, good_t, 0, 0);
    cr_assert(strstr(err_msg(), "UTF-8"), "%s", err_msg());
    expect_error_naming(rc, want);
    expect_empty_corpus(&c);
    // Line 2 of the target: a lone continuation byte; then a surrogate on line 4.
    const char *bad_t = write_tmp("bad.tgt", "x\n\x80y\nz\nw\n");
    snprintf(want, sizeof want, "%s:2:", bad_t);
    expect_error_naming(corpus_load(&c, &t, good_s, bad_t, 0, 0), want);
    expect_empty_corpus(&c);
    const char *bad_t4 = write_tmp("bad4.tgt", "x\ny\nz\nw \xed\xa0\x80\n");
    snprintf(want, sizeof want, "%s:4:", bad_t4);
    expect_error_naming(corpus_load(&c, &t, good_s, bad_t4, 0, 0), want);
    // Invalid UTF-8 in a pair that would be skipped for length is still an error.
    const char *bad_long = write_tmp("long.src", "a b\nc\nd e\nf f f f f f \xff\n");
    snprintf(want, sizeof want, "%s:4:", bad_long);
    expect_error_naming(corpus_load(&c, &t, bad_long, good_t, 2, 0), want);
    // Valid multi-byte UTF-8 is fine.
    const char *utf = write_tmp("utf.src", "Größe über\n日本 語\nÄ\n€ 😀\n");
    cr_assert_eq(corpus_load(&c, &t, utf, good_t, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.src_len[0], 2);
    cr_assert_eq(c.src_len[3], 2);
    corpus_free(&c);
    tokenizer_free(&t);
}

Test(data, corpus_missing_or_binary_files_are_named) {
    const char *sp = write_tmp("ok.src", "a\n");
    const char *tp = write_tmp("ok.tgt", "x\n");
    Tokenizer t;
    word_tokenizer(&t, sp, tp);
    Corpus c;
    const char *missing = tmp_path("no-such-file.src");
    expect_error_naming(corpus_load(&c, &t, missing, tp, 0, 0), missing);
    expect_empty_corpus(&c);
    expect_error_naming(corpus_load(&c, &t, sp, missing, 0, 0), missing);
    expect_empty_corpus(&c);
    const char *nul = write_bytes("nul.tgt", "x\0y\n", 4);
    expect_error_naming(corpus_load(&c, &t, sp, nul, 0, 0), nul);
    expect_empty_corpus(&c);
    // Empty files: nothing to train on.
    const char *e1 = write_tmp("empty.src", ""), *e2 = write_tmp("empty.tgt", "");
    expect_error_naming(corpus_load(&c, &t, e1, e2, 0, 0), e1);
    expect_empty_corpus(&c);
    tokenizer_free(&t);
}

Test(data, corpus_crlf_equals_lf) {
    const char *sp = write_tmp("lf.src", "a b\nc  d e\n\nf\n");
    const char *tp = write_tmp("lf.tgt", "x\ny z\nw\nv v\n");
    const char *sc = write_tmp("crlf.src", "a b\r\nc  d e\r\n\r\nf\r\n");
    const char *tc = write_tmp("crlf.tgt", "x\r\ny z\r\nw\r\nv v");  // no final newline
    Tokenizer t, tcr;
    word_tokenizer(&t, sp, tp);
    // Vocabularies built from the CRLF files have the same words (no "b\r").
    word_tokenizer(&tcr, sc, tc);
    for (int side = 0; side < 2; side++) {
        cr_assert_eq(vocab_size(t.vocab[side]), vocab_size(tcr.vocab[side]));
        for (int id = 0; id < vocab_size(t.vocab[side]); id++)
            cr_assert_str_eq(vocab_token(t.vocab[side], id), vocab_token(tcr.vocab[side], id));
    }
    Corpus a, b;
    cr_assert_eq(corpus_load(&a, &t, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(corpus_load(&b, &t, sc, tc, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(a.n, 3);
    cr_assert_eq(a.skipped, 1);  // the empty source line
    cr_assert_eq(b.n, a.n);
    cr_assert_eq(b.skipped, a.skipped);
    for (size_t i = 0; i < a.n; i++) {
        cr_assert_eq(a.src_len[i], b.src_len[i], "pair %zu", i);
        cr_assert_eq(a.tgt_len[i], b.tgt_len[i], "pair %zu", i);
        cr_assert_arr_eq(a.ids + a.src_off[i], b.ids + b.src_off[i], (size_t)a.src_len[i] * sizeof(int));
        cr_assert_arr_eq(a.ids + a.tgt_off[i], b.ids + b.tgt_off[i], (size_t)a.tgt_len[i] * sizeof(int));
    }
    expect_pair(&b, &t, 1, "c d e", "y z");
    expect_pair(&b, &t, 2, "f", "v v");
    corpus_free(&a);
    corpus_free(&b);
    tokenizer_free(&t);
    tokenizer_free(&tcr);
}

Test(data, read_lines_splits_and_drops_cr_before_newline) {
    static const struct {
        const char *text;
        int n;
        const char *want[5];
    } cases[] = {
        {"", 0, {NULL}},
        {"one", 1, {"one"}},
        {"one\n", 1, {"one"}},
        {"\n", 1, {""}},
        {"\r\n", 1, {""}},
        {"a\r\n\nb\r\nc", 4, {"a", "", "b", "c"}},
        {"a\rb\n\r\r\n", 2, {"a\rb", "\r"}},  // only the CR right before LF goes
        {"x\n\n\n", 3, {"x", "", ""}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *p = write_tmp("lines.txt", cases[k].text);
        char *text = NULL, **lines = NULL;
        cr_assert_eq(read_lines(p, &text, &lines), NMT_OK, "case %zu: %s", k, err_msg());
        cr_assert_eq(arrlen(lines), cases[k].n, "case %zu: %td lines, want %d", k, arrlen(lines), cases[k].n);
        for (int i = 0; i < cases[k].n; i++)
            cr_assert_str_eq(lines[i], cases[k].want[i], "case %zu line %d", k, i);
        arrfree(lines);
        free(text);
    }
    char *text = NULL, **lines = NULL;
    const char *missing = tmp_path("missing.txt");
    expect_error_naming(read_lines(missing, &text, &lines), missing);
    cr_assert_null(text);
    cr_assert_null(lines);
}

// ---------------------------------------------------------------- batcher

// A random corpus: pair i's source is "s<i>" and then 0..maxs-1 words, its
// target 1..maxt words, so that the first source id names the pair.
typedef struct {
    Tokenizer t;
    Corpus c;
    int *pair_of;  // source id -> pair index (-1)
} RandCorpus;

static void rand_corpus(RandCorpus *r, int n, int maxs, int maxt, uint64_t seed) {
    const char *sp = tmp_path("rand.src"), *tp = tmp_path("rand.tgt");
    FILE *s = fopen(sp, "w"), *t = fopen(tp, "w");
    cr_assert(s && t);
    uint64_t key = rng_key(seed, 5, 1), k = 0;
    for (int i = 0; i < n; i++) {
        int ls = (int)(rng_u64(key, k++) % (uint64_t)maxs), lt = 1 + (int)(rng_u64(key, k++) % (uint64_t)maxt);
        fprintf(s, "s%d", i);
        for (int j = 0; j < ls; j++) fprintf(s, " w%d", (int)(rng_u64(key, k++) % 30));
        for (int j = 0; j < lt; j++) fprintf(t, "%sv%d", j ? " " : "", (int)(rng_u64(key, k++) % 30));
        fputc('\n', s);
        fputc('\n', t);
    }
    fclose(s);
    fclose(t);
    word_tokenizer(&r->t, sp, tp);
    cr_assert_eq(corpus_load(&r->c, &r->t, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(r->c.n, (size_t)n);
    int V = vocab_size(r->t.vocab[0]);
    r->pair_of = xmalloc((size_t)V * sizeof(int));
    for (int v = 0; v < V; v++) r->pair_of[v] = -1;
    for (size_t i = 0; i < r->c.n; i++) r->pair_of[r->c.ids[r->c.src_off[i]]] = (int)i;
}

static void rand_corpus_free(RandCorpus *r) {
    corpus_free(&r->c);
    tokenizer_free(&r->t);
    free(r->pair_of);
}

// What a batch holds, for comparing sequences of batches.
typedef struct {
    size_t first;  // smallest pair index in it: names the batch (each pair is in one)
    size_t B, S, T, ntok;
} BatchSig;

static int same_sig(BatchSig a, BatchSig b) {
    return a.first == b.first && a.B == b.B && a.S == b.S && a.T == b.T && a.ntok == b.ntok;
}

// Checks everything a batch promises against the corpus; counts its pairs in
// seen[] and appends their indices (in row order) to *rows if rows != NULL.
static BatchSig check_batch(const RandCorpus *r, const Batcher *bt, const Batch *b, size_t budget, int *seen,
                            int **rows) {
    const Corpus *c = &r->c;
    cr_assert_gt(b->B, 0);
    size_t w = b->S > b->T ? b->S : b->T;
    cr_assert(b->B * w <= budget || b->B == 1, "batch of %zu x max(%zu, %zu) over the budget %zu", b->B, b->S, b->T,
              budget);
    cr_assert_leq(b->B * w, bt->max_tokens);
    cr_assert_leq(b->S, bt->max_src);
    cr_assert_leq(b->T, bt->max_tgt);
    size_t maxs = 0, maxt = 0, ntok = 0, first = (size_t)-1;
    for (size_t row = 0; row < b->B; row++) {
        const int *s = b->src + row * b->S, *ti = b->tgt_in + row * b->T, *to = b->tgt_out + row * b->T;
        cr_assert(s[0] >= 0 && s[0] < vocab_size(r->t.vocab[0]));
        int p = r->pair_of[s[0]];
        cr_assert_geq(p, 0, "row %zu does not start with a pair's first source word", row);
        seen[p]++;
        if (rows) arrput(*rows, p);
        if ((size_t)p < first) first = (size_t)p;
        int ns = c->src_len[p], nt = c->tgt_len[p];
        const int *ps = c->ids + c->src_off[p], *pt = c->ids + c->tgt_off[p];
        cr_assert_eq(b->src_len[row], ns + 1, "row %zu (pair %d): src_len %d, want %d", row, p, b->src_len[row], ns + 1);
        cr_assert_eq(b->tgt_len[row], nt + 1, "row %zu (pair %d): tgt_len %d, want %d", row, p, b->tgt_len[row], nt + 1);
        cr_assert_leq((size_t)ns + 1, b->S);
        cr_assert_leq((size_t)nt + 1, b->T);
        cr_assert_arr_eq(s, ps, (size_t)ns * sizeof(int), "row %zu (pair %d): source ids", row, p);
        cr_assert_eq(s[ns], TOK_EOS, "row %zu: no EOS at src_len - 1", row);
        for (size_t j = (size_t)ns + 1; j < b->S; j++) cr_assert_eq(s[j], TOK_PAD, "row %zu src[%zu] not padding", row, j);
        cr_assert_eq(ti[0], TOK_BOS, "row %zu: tgt_in does not start with BOS", row);
        cr_assert_arr_eq(ti + 1, pt, (size_t)nt * sizeof(int), "row %zu (pair %d): tgt_in ids", row, p);
        cr_assert_arr_eq(to, pt, (size_t)nt * sizeof(int), "row %zu (pair %d): tgt_out ids", row, p);
        cr_assert_arr_eq(ti + 1, to, (size_t)nt * sizeof(int), "row %zu: tgt_in is not tgt_out shifted", row);
        cr_assert_eq(to[nt], TOK_EOS, "row %zu: tgt_out does not end with EOS", row);
        for (size_t j = (size_t)nt + 1; j < b->T; j++) {
            cr_assert_eq(ti[j], TOK_PAD, "row %zu tgt_in[%zu] not padding", row, j);
            cr_assert_eq(to[j], TOK_PAD, "row %zu tgt_out[%zu] not padding", row, j);
        }
        if ((size_t)ns + 1 > maxs) maxs = (size_t)ns + 1;
        if ((size_t)nt + 1 > maxt) maxt = (size_t)nt + 1;
        ntok += (size_t)nt + 1;
    }
    cr_assert_eq(b->S, maxs, "S %zu is not the longest source + 1 (%zu)", b->S, maxs);
    cr_assert_eq(b->T, maxt, "T %zu is not the longest target + 1 (%zu)", b->T, maxt);
    cr_assert_eq(b->ntok, ntok, "ntok %zu, sum of tgt_len %zu", b->ntok, ntok);
    return (BatchSig){first, b->B, b->S, b->T, b->ntok};
}

// Runs `epochs` whole epochs from the batcher's cursor, checking every batch,
// every pair once per epoch, and the cursor; returns the batches seen.
static BatchSig *run_epochs(const RandCorpus *r, Batcher *bt, size_t budget, int epochs) {
    BatchSig *sigs = NULL;
    int *seen = xcalloc(r->c.n, sizeof(int));
    size_t peak_tokens = 0, peak_src = 0, peak_tgt = 0;
    for (int e = 0; e < epochs; e++) {
        memset(seen, 0, r->c.n * sizeof(int));
        long epoch0 = bt->pos >= bt->nbatches ? bt->epoch + 1 : bt->epoch;
        for (size_t k = 0; k < bt->nbatches; k++) {
            Batch b;
            batcher_next(bt, &r->c, &b);
            cr_assert_eq(bt->epoch, epoch0, "batch %zu of an epoch: epoch %ld, want %ld", k, bt->epoch, epoch0);
            cr_assert_eq(bt->pos, k + 1);
            BatchSig s = check_batch(r, bt, &b, budget, seen, NULL);
            arrput(sigs, s);
            size_t w = b.S > b.T ? b.S : b.T;
            if (b.B * w > peak_tokens) peak_tokens = b.B * w;
            if (b.S > peak_src) peak_src = b.S;
            if (b.T > peak_tgt) peak_tgt = b.T;
        }
        for (size_t i = 0; i < r->c.n; i++) cr_assert_eq(seen[i], 1, "epoch %d: pair %zu seen %d times", e, i, seen[i]);
    }
    // The batcher's sizes are the largest batch's, not more.
    cr_assert_eq(bt->max_tokens, peak_tokens);
    cr_assert_eq(bt->max_src, peak_src);
    cr_assert_eq(bt->max_tgt, peak_tgt);
    free(seen);
    return sigs;
}

static int same_order(const BatchSig *a, const BatchSig *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!same_sig(a[i], b[i])) return 0;
    return 1;
}

static int by_first(const void *a, const void *b) {
    size_t x = ((const BatchSig *)a)->first, y = ((const BatchSig *)b)->first;
    return x < y ? -1 : x > y;
}

// The same batches, whatever their order.
static void expect_same_batches(const BatchSig *a, const BatchSig *b, size_t n) {
    BatchSig *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    memcpy(x, a, n * sizeof *x);
    memcpy(y, b, n * sizeof *y);
    qsort(x, n, sizeof *x, by_first);
    qsort(y, n, sizeof *y, by_first);
    for (size_t i = 0; i < n; i++) cr_assert(same_sig(x[i], y[i]), "batch %zu differs in composition", i);
    free(x);
    free(y);
}

Test(data, batches_respect_budget_padding_and_cover_each_epoch) {
    RandCorpus r;
    rand_corpus(&r, 400, 20, 24, 1);
    static const size_t budgets[] = {25, 64, 120, 333, 1000};
    for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            Batcher bt;
            batcher_init(&bt, &r.c, budgets[k], 7, shuffle);
            cr_assert_gt(bt.nbatches, 1);
            cr_assert_eq(bt.epoch, 0);
            cr_assert_eq(bt.pos, 0);
            // Three epochs: the buffers are reused, so stale ids would show as bad padding.
            BatchSig *s = run_epochs(&r, &bt, budgets[k], 3);
            cr_assert_eq(bt.epoch, 2);
            // Batch composition is fixed; only the order changes between epochs.
            expect_same_batches(s, s + bt.nbatches, bt.nbatches);
            expect_same_batches(s, s + 2 * bt.nbatches, bt.nbatches);
            arrfree(s);
            batcher_free(&bt);
        }
    }
    // A budget larger than the corpus: one batch of everything, each epoch.
    Batcher bt;
    batcher_init(&bt, &r.c, 100000, 3, 1);
    cr_assert_eq(bt.nbatches, 1);
    BatchSig *s = run_epochs(&r, &bt, 100000, 2);
    cr_assert_eq(s[0].B, r.c.n);
    cr_assert_eq(bt.epoch, 1);
    arrfree(s);
    batcher_free(&bt);
    rand_corpus_free(&r);
}

Test(data, pairs_over_the_budget_get_a_batch_of_their_own) {
    RandCorpus r;
    rand_corpus(&r, 120, 20, 16, 2);
    size_t budget = 12;  // many pairs have max(S, T) > 12
    Batcher bt;
    batcher_init(&bt, &r.c, budget, 5, 1);
    size_t alone = 0;
    int *seen = xcalloc(r.c.n, sizeof(int));
    for (size_t k = 0; k < 2 * bt.nbatches; k++) {
        Batch b;
        batcher_next(&bt, &r.c, &b);
        check_batch(&r, &bt, &b, budget, seen, NULL);
        size_t w = b.S > b.T ? b.S : b.T;
        if (w > budget) {
            cr_assert_eq(b.B, 1, "a pair of width %zu > %zu shares a batch of %zu", w, budget, b.B);
            alone++;
        }
    }
    cr_assert_gt(alone, 0, "the corpus should have pairs over the budget");
    for (size_t i = 0; i < r.c.n; i++) cr_assert_eq(seen[i], 2);
    free(seen);
    batcher_free(&bt);
    rand_corpus_free(&r);
}

Test(data, unshuffled_batches_are_length_sorted_and_full) {
    RandCorpus r;
    rand_corpus(&r, 300, 18, 22, 3);
    size_t budget = 150;
    Batcher bt;
    batcher_init(&bt, &r.c, budget, 9, 0);
    int *seen = xcalloc(r.c.n, sizeof(int)), *rows = NULL;
    size_t *nrows = xcalloc(bt.nbatches, sizeof(size_t)), *width = xcalloc(bt.nbatches, sizeof(size_t));
    for (size_t k = 0; k < bt.nbatches; k++) {
        Batch b;
        batcher_next(&bt, &r.c, &b);
        check_batch(&r, &bt, &b, budget, seen, &rows);
        nrows[k] = b.B;
        width[k] = b.S > b.T ? b.S : b.T;
    }
    cr_assert_eq(arrlen(rows), (ptrdiff_t)r.c.n);
    // In order, source lengths never decrease, and ties are ordered by target length.
    for (size_t i = 1; i < r.c.n; i++) {
        int a = rows[i - 1], b = rows[i];
        cr_assert(r.c.src_len[a] < r.c.src_len[b] ||
                      (r.c.src_len[a] == r.c.src_len[b] && r.c.tgt_len[a] <= r.c.tgt_len[b]),
                  "rows %zu and %zu out of length order", i - 1, i);
    }
    // Greedy and full: the next pair in length order would not have fitted.
    size_t at = 0;
    for (size_t k = 0; k + 1 < bt.nbatches; k++) {
        at += nrows[k];
        int nx = rows[at];
        size_t w = width[k], s = (size_t)r.c.src_len[nx] + 1, t = (size_t)r.c.tgt_len[nx] + 1;
        if (s > w) w = s;
        if (t > w) w = t;
        cr_assert_gt((nrows[k] + 1) * w, budget, "batch %zu (%zu rows) had room for the next pair", k, nrows[k]);
    }
    free(seen);
    free(nrows);
    free(width);
    arrfree(rows);
    batcher_free(&bt);
    rand_corpus_free(&r);
}

static BatchSig *sequence(const RandCorpus *r, size_t budget, uint64_t seed, int shuffle, int epochs, size_t *nb) {
    Batcher bt;
    batcher_init(&bt, &r->c, budget, seed, shuffle);
    BatchSig *s = run_epochs(r, &bt, budget, epochs);
    *nb = bt.nbatches;
    batcher_free(&bt);
    return s;
}

Test(data, shuffling_depends_on_seed_and_epoch_only) {
    RandCorpus r;
    rand_corpus(&r, 400, 20, 24, 4);
    size_t budget = 100, nb, nb2;
    BatchSig *a = sequence(&r, budget, 11, 1, 3, &nb);
    cr_assert_geq(nb, 20, "want enough batches for orders to differ (%zu)", nb);
    // Same seed: the same batches in the same order, epoch after epoch.
    BatchSig *b = sequence(&r, budget, 11, 1, 3, &nb2);
    cr_assert_eq(nb2, nb);
    cr_assert(same_order(a, b, 3 * nb), "same seed, different batch order");
    // Each epoch has its own order.
    cr_assert_not(same_order(a, a + nb, nb), "epochs 0 and 1 in the same order");
    cr_assert_not(same_order(a + nb, a + 2 * nb, nb), "epochs 1 and 2 in the same order");
    cr_assert_not(same_order(a, a + 2 * nb, nb), "epochs 0 and 2 in the same order");
    // Another seed: the same batches, in another order.
    BatchSig *c = sequence(&r, budget, 12, 1, 1, &nb2);
    cr_assert_eq(nb2, nb);
    cr_assert_not(same_order(a, c, nb), "seeds 11 and 12 give the same order");
    expect_same_batches(a, c, nb);
    // Without shuffling: the same (length) order every epoch, whatever the seed,
    // made of the same batches as the shuffled epochs.
    BatchSig *u = sequence(&r, budget, 11, 0, 3, &nb2);
    cr_assert_eq(nb2, nb);
    cr_assert(same_order(u, u + nb, nb), "unshuffled epochs 0 and 1 differ");
    cr_assert(same_order(u, u + 2 * nb, nb), "unshuffled epochs 0 and 2 differ");
    BatchSig *v = sequence(&r, budget, 999, 0, 1, &nb2);
    cr_assert(same_order(u, v, nb), "the seed changed the unshuffled order");
    cr_assert_not(same_order(u, a, nb), "shuffled epoch 0 is in length order");
    expect_same_batches(u, a, nb);
    arrfree(a);
    arrfree(b);
    arrfree(c);
    arrfree(u);
    arrfree(v);
    rand_corpus_free(&r);
}

Test(data, cursor_resumes_the_uninterrupted_sequence) {
    RandCorpus r;
    rand_corpus(&r, 300, 16, 20, 5);
    size_t budget = 90, nb;
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        BatchSig *all = sequence(&r, budget, 21, shuffle, 4, &nb);
        size_t total = 4 * nb;
        cr_assert_geq(nb, 10);
        const struct { long epoch; size_t pos; } at[] = {
            {0, 0}, {0, 1}, {0, 7}, {0, nb - 1}, {0, nb}, {1, 0}, {1, 3}, {1, nb - 1}, {2, nb / 2}, {2, nb}, {3, 0},
        };
        for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
            Batcher bt;
            batcher_init(&bt, &r.c, budget, 21, shuffle);
            batcher_set_cursor(&bt, at[k].epoch, at[k].pos);
            int *seen = xcalloc(r.c.n, sizeof(int));
            size_t from = (size_t)at[k].epoch * nb + at[k].pos;
            for (size_t i = from; i < total; i++) {
                Batch b;
                batcher_next(&bt, &r.c, &b);
                BatchSig s = check_batch(&r, &bt, &b, budget, seen, NULL);
                cr_assert(same_sig(s, all[i]),
                          "shuffle %d, resumed at epoch %ld pos %zu: batch %zu (epoch %zu pos %zu) differs", shuffle,
                          at[k].epoch, at[k].pos, i, i / nb, i % nb);
                cr_assert_eq(bt.epoch, (long)(i / nb));
                cr_assert_eq(bt.pos, i % nb + 1);
            }
            free(seen);
            batcher_free(&bt);
        }
        // Rewinding a batcher that has run: the same batches again.
        Batcher bt;
        batcher_init(&bt, &r.c, budget, 21, shuffle);
        int *seen = xcalloc(r.c.n, sizeof(int));
        for (size_t i = 0; i < nb + 5; i++) {
            Batch b;
            batcher_next(&bt, &r.c, &b);
        }
        batcher_set_cursor(&bt, 0, 2);
        for (size_t i = 2; i < 2 * nb; i++) {
            Batch b;
            batcher_next(&bt, &r.c, &b);
            cr_assert(same_sig(check_batch(&r, &bt, &b, budget, seen, NULL), all[i]), "after rewinding: batch %zu", i);
        }
        free(seen);
        batcher_free(&bt);
        arrfree(all);
    }
    rand_corpus_free(&r);
}

Test(data, one_pair_corpus) {
    const char *sp = write_tmp("one.src", "hallo welt\n");
    const char *tp = write_tmp("one.tgt", "hello\n");
    Tokenizer t;
    word_tokenizer(&t, sp, tp);
    Corpus c;
    cr_assert_eq(corpus_load(&c, &t, sp, tp, 0, 0), NMT_OK, "%s", err_msg());
    Batcher bt;
    batcher_init(&bt, &c, 1, 42, 1);  // a budget below the pair's size
    cr_assert_eq(bt.nbatches, 1);
    for (long e = 0; e < 3; e++) {
        Batch b;
        batcher_next(&bt, &c, &b);
        cr_assert_eq(bt.epoch, e);
        cr_assert_eq(b.B, 1);
        cr_assert_eq(b.S, 3);
        cr_assert_eq(b.T, 2);
        cr_assert_eq(b.ntok, 2);
        int ws = vocab_id(t.vocab[0], "hallo"), ww = vocab_id(t.vocab[0], "welt"), wh = vocab_id(t.vocab[1], "hello");
        cr_assert_arr_eq(b.src, ((int[]){ws, ww, TOK_EOS}), 3 * sizeof(int));
        cr_assert_arr_eq(b.tgt_in, ((int[]){TOK_BOS, wh}), 2 * sizeof(int));
        cr_assert_arr_eq(b.tgt_out, ((int[]){wh, TOK_EOS}), 2 * sizeof(int));
        cr_assert_eq(b.src_len[0], 3);
        cr_assert_eq(b.tgt_len[0], 2);
    }
    batcher_free(&bt);
    corpus_free(&c);
    tokenizer_free(&t);
}

// What a step of G micro-batches needs: the next G batches' target tokens
// before computing any (across the epoch's end), and skipping the batches
// another process computes keeps the cursor where batcher_next would.
Test(data, peek_and_skip_follow_the_batch_sequence) {
    RandCorpus r;
    rand_corpus(&r, 200, 16, 20, 6);
    size_t budget = 80;
    Batcher a, b;
    batcher_init(&a, &r.c, budget, 5, 1);
    batcher_init(&b, &r.c, budget, 5, 1);
    size_t nb = a.nbatches;
    cr_assert_geq(nb, 8);
    for (size_t i = 0; i < 3 * nb; i++) {
        for (size_t k = 0; k <= nb + 2; k += (k < 4 ? 1 : nb / 3)) {
            size_t want = 0;
            Batcher c;
            batcher_init(&c, &r.c, budget, 5, 1);
            batcher_set_cursor(&c, a.epoch, a.pos);
            for (size_t j = 0; j < k; j++) {
                Batch x;
                batcher_next(&c, &r.c, &x);
                want += x.ntok;
            }
            batcher_free(&c);
            cr_assert_eq(batcher_peek_ntok(&a, k), want, "at batch %zu, the next %zu batches", i, k);
        }
        Batch x;
        batcher_next(&a, &r.c, &x);
        if (i % 3 == 1) batcher_skip(&b);
        else batcher_next(&b, &r.c, &x);
        cr_assert(a.epoch == b.epoch && a.pos == b.pos, "batch %zu: skipping moved the cursor elsewhere", i);
    }
    batcher_free(&a);
    batcher_free(&b);
    rand_corpus_free(&r);
}
