// test_vocab.c — word vocabularies: the specials first, words by frequency
// then byte order, min_freq and max_size, counting across files, encoding and
// decoding, the serialised form and its checks.
#include <criterion/criterion.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokens.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"

TestSuite(vocab, .init = make_tmpdir, .fini = remove_tmpdir);

static Vocab *build1(const char *path, int min_freq, int max_size) {
    Vocab *v = NULL;
    cr_assert_eq(vocab_build(&v, &path, 1, min_freq, max_size), NMT_OK, "%s", err_msg());
    cr_assert_not_null(v);
    return v;
}

// The vocabulary is exactly the specials, then `words` in this order.
static void expect_words(const Vocab *v, const char *const *words, int n) {
    cr_assert_eq(vocab_size(v), TOK_SPECIALS + n, "size %d, want %d", vocab_size(v), TOK_SPECIALS + n);
    for (int i = 0; i < TOK_SPECIALS; i++) {
        cr_assert_str_eq(vocab_token(v, i), token_special(i));
        cr_assert_eq(vocab_id(v, token_special(i)), TOK_UNK);  // in a text, a special's spelling is an unknown word
    }
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(vocab_token(v, TOK_SPECIALS + i), words[i], "id %d is '%s', want '%s'", TOK_SPECIALS + i,
                         vocab_token(v, TOK_SPECIALS + i), words[i]);
        cr_assert_eq(vocab_id(v, words[i]), TOK_SPECIALS + i);
    }
}

// Counts: c 5; B a b é 3 (a tie: byte order, 'B' 0x42 < 'a' < 'b' < 0xC3);
// e 2; d 1. Spread over lines with assorted whitespace.
static const char COUNTS[] =
    "c b a\n"
    "  c\tc  B \n"
    "\n"
    "\xc3\xa9 a b B c\r\n"
    "e \xc3\xa9 e\n"
    "\t\n"
    "d c B a b \xc3\xa9";  // no final newline
static const char *const BY_FREQ[] = {"c", "B", "a", "b", "\xc3\xa9", "e", "d"};

Test(vocab, specials_then_frequency_then_byte_order) {
    Vocab *v = build1(write_tmp("counts.txt", COUNTS), 1, 0);
    expect_words(v, BY_FREQ, 7);
    cr_assert_eq(vocab_id(v, "never-seen"), TOK_UNK);
    cr_assert_eq(vocab_id(v, ""), TOK_UNK);
    cr_assert_eq(vocab_id(v, "c "), TOK_UNK);
    cr_assert_eq(vocab_id(v, "C"), TOK_UNK);
    cr_assert_null(vocab_token(v, vocab_size(v)));
    cr_assert_null(vocab_token(v, -1));
    vocab_free(v);
    // The same counts in another file order give the same vocabulary.
    Vocab *w = build1(write_tmp("shuffled.txt", "d\ne e\nB B B\nb b b\n\xc3\xa9 \xc3\xa9 \xc3\xa9\na a a\nc c c c c\n"), 1, 0);
    expect_words(w, BY_FREQ, 7);
    vocab_free(w);
}

Test(vocab, min_freq_drops_rare_words_to_unk) {
    const char *p = write_tmp("counts.txt", COUNTS);
    Vocab *v = build1(p, 0, 0);  // 0 and 1 keep everything
    expect_words(v, BY_FREQ, 7);
    vocab_free(v);
    v = build1(p, 2, 0);
    expect_words(v, BY_FREQ, 6);
    cr_assert_eq(vocab_id(v, "d"), TOK_UNK);
    vocab_free(v);
    v = build1(p, 3, 0);
    expect_words(v, BY_FREQ, 5);
    int *ids = NULL;
    vocab_encode(v, "d e c a", &ids);
    cr_assert_eq(arrlen(ids), 4);
    cr_assert_arr_eq(ids, ((int[]){TOK_UNK, TOK_UNK, vocab_id(v, "c"), vocab_id(v, "a")}), 4 * sizeof(int));
    arrfree(ids);
    vocab_free(v);
    v = build1(p, 5, 0);
    expect_words(v, BY_FREQ, 1);
    vocab_free(v);
    Vocab *none = NULL;  // no word left: refused (see every_built_vocabulary_loads_back)
    cr_assert_eq(vocab_build(&none, &p, 1, 6, 0), NMT_ERR_INPUT);
    cr_assert_null(none);
    err_clear();
}

Test(vocab, max_size_caps_the_ids) {
    const char *p = write_tmp("counts.txt", COUNTS);
    for (int max = TOK_SPECIALS + 1; max <= TOK_SPECIALS + 9; max++) {
        Vocab *v = build1(p, 1, max);
        int words = max - TOK_SPECIALS < 7 ? max - TOK_SPECIALS : 7;
        expect_words(v, BY_FREQ, words);  // the most frequent ones
        cr_assert_leq(vocab_size(v), max);
        vocab_free(v);
    }
    // Both limits: min_freq first, then the cap.
    Vocab *v = build1(p, 3, 6);
    expect_words(v, BY_FREQ, 2);
    vocab_free(v);
    v = build1(p, 3, 100);
    expect_words(v, BY_FREQ, 5);
    vocab_free(v);
}

Test(vocab, counts_add_up_across_files) {
    const char *f1 = write_tmp("one.txt", "x y y y x\nz\n");  // x 2, y 3, z 1
    const char *f2 = write_tmp("two.txt", "x x\nz z q\n");    // x 2, z 2, q 1
    Vocab *v = build1(f1, 1, 0);
    expect_words(v, (const char *const[]){"y", "x", "z"}, 3);
    vocab_free(v);
    const char *both[] = {f1, f2};
    cr_assert_eq(vocab_build(&v, both, 2, 1, 0), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"x", "y", "z", "q"}, 4);  // x 4, y 3, z 3, q 1
    vocab_free(v);
    const char *rev[] = {f2, f1};
    cr_assert_eq(vocab_build(&v, rev, 2, 1, 0), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"x", "y", "z", "q"}, 4);
    vocab_free(v);
    cr_assert_eq(vocab_build(&v, both, 2, 3, 0), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"x", "y", "z"}, 3);
    vocab_free(v);
    // The same file twice counts twice.
    const char *twice[] = {f1, f1};
    cr_assert_eq(vocab_build(&v, twice, 2, 4, 0), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"y", "x"}, 2);
    vocab_free(v);
}

Test(vocab, spelled_specials_in_text_are_not_words) {
    Vocab *v = build1(write_tmp("sp.txt", "<unk> <unk> <s> a </s> <pad>\n<unk> a\n"), 1, 0);
    expect_words(v, (const char *const[]){"a"}, 1);
    // and encoding a line that spells them gives unknown words, never a special's id
    int *ids = NULL;
    vocab_encode(v, "<s> a </s> <pad> <unk>", &ids);
    cr_assert_arr_eq(ids, ((int[]){TOK_UNK, TOK_SPECIALS, TOK_UNK, TOK_UNK, TOK_UNK}), 5 * sizeof(int));
    arrfree(ids);
    vocab_free(v);
}

Test(vocab, missing_file_is_named) {
    const char *ok = write_tmp("ok.txt", "a b\n");
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent.txt", tmpdir);
    const char *paths[] = {ok, missing};
    Vocab *v = (Vocab *)&v;  // not NULL: the call must clear it
    cr_assert_eq(vocab_build(&v, paths, 2, 1, 0), NMT_ERR_INPUT);
    cr_assert_null(v);
    cr_assert(strstr(err_msg(), missing), "'%s' does not name %s", err_msg(), missing);
}

Test(vocab, encode_decode_round_trip) {
    Vocab *v = build1(write_tmp("counts.txt", COUNTS), 1, 0);
    int *ids = NULL;
    vocab_encode(v, "", &ids);
    cr_assert_eq(arrlen(ids), 0);
    vocab_encode(v, " \t \r\n", &ids);
    cr_assert_eq(arrlen(ids), 0);
    vocab_encode(v, "  c\tB  \xc3\xa9 d\r", &ids);
    cr_assert_eq(arrlen(ids), 4);
    cr_assert_arr_eq(ids, ((int[]){vocab_id(v, "c"), vocab_id(v, "B"), vocab_id(v, "\xc3\xa9"), vocab_id(v, "d")}),
                     4 * sizeof(int));
    char *s = vocab_decode(v, ids, (size_t)arrlen(ids));
    cr_assert_str_eq(s, "c B \xc3\xa9 d");  // single spaces
    free(s);
    // Encoding appends.
    vocab_encode(v, "zzz a", &ids);
    cr_assert_eq(arrlen(ids), 6);
    cr_assert_eq(ids[4], TOK_UNK);
    cr_assert_eq(ids[5], vocab_id(v, "a"));
    // <unk> is shown; pad, bos, eos and ids out of range are not.
    s = vocab_decode(v, ids, (size_t)arrlen(ids));
    cr_assert_str_eq(s, "c B \xc3\xa9 d <unk> a");
    free(s);
    int mixed[] = {TOK_BOS, vocab_id(v, "a"), TOK_PAD, TOK_UNK, -5, vocab_size(v), 1 << 30, vocab_id(v, "e"), TOK_EOS,
                   TOK_PAD};
    s = vocab_decode(v, mixed, sizeof mixed / sizeof *mixed);
    cr_assert_str_eq(s, "a <unk> e");
    free(s);
    int only_specials[] = {TOK_BOS, TOK_EOS, TOK_PAD};
    s = vocab_decode(v, only_specials, 3);
    cr_assert_str_eq(s, "");
    free(s);
    s = vocab_decode(v, NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
    int many_unk[40];
    for (int i = 0; i < 40; i++) many_unk[i] = TOK_UNK;
    s = vocab_decode(v, many_unk, 40);
    cr_assert_eq(strlen(s), 40 * 6 - 1);
    free(s);
    // Every word of the vocabulary decodes to itself.
    for (int id = TOK_SPECIALS; id < vocab_size(v); id++) {
        s = vocab_decode(v, &id, 1);
        cr_assert_str_eq(s, vocab_token(v, id));
        int *back = NULL;
        vocab_encode(v, s, &back);
        cr_assert_eq(arrlen(back), 1);
        cr_assert_eq(back[0], id);
        arrfree(back);
        free(s);
    }
    arrfree(ids);
    vocab_free(v);
}

Test(vocab, serialize_deserialize_round_trip) {
    Vocab *v = build1(write_tmp("counts.txt", COUNTS), 1, 0);
    size_t len = 0;
    char *buf = vocab_serialize(v, &len);
    // One token per line, ids in order.
    static const char want[] = "<pad>\n<unk>\n<s>\n</s>\nc\nB\na\nb\n\xc3\xa9\ne\nd\n";
    cr_assert_eq(len, sizeof want - 1);
    cr_assert_arr_eq(buf, want, len);
    Vocab *w = NULL;
    cr_assert_eq(vocab_deserialize(&w, buf, len, "test"), NMT_OK, "%s", err_msg());
    expect_words(w, BY_FREQ, 7);
    int *a = NULL, *b = NULL;
    vocab_encode(v, "c a zz d e", &a);
    vocab_encode(w, "c a zz d e", &b);
    cr_assert_eq(arrlen(a), arrlen(b));
    cr_assert_arr_eq(a, b, (size_t)arrlen(a) * sizeof(int));
    size_t len2 = 0;
    char *buf2 = vocab_serialize(w, &len2);
    cr_assert_eq(len2, len);
    cr_assert_arr_eq(buf2, buf, len);
    arrfree(a);
    arrfree(b);
    free(buf);
    free(buf2);
    vocab_free(v);
    vocab_free(w);
}

static void expect_rejected(const char *text, const char *why) {
    err_clear();
    Vocab *v = (Vocab *)&v;
    int rc = vocab_deserialize(&v, text, strlen(text), "ckpt.bin");
    cr_assert_eq(rc, NMT_ERR_INPUT, "%s: accepted", why);
    cr_assert_null(v, "%s", why);
    cr_assert(strstr(err_msg(), "ckpt.bin"), "%s: '%s' does not name the source", why, err_msg());
    err_clear();
}

Test(vocab, deserialize_checks_specials_and_duplicates) {
    expect_rejected("<unk>\n<pad>\n<s>\n</s>\na\n", "specials swapped");
    expect_rejected("<pad>\n<unk>\n</s>\n<s>\na\n", "bos and eos swapped");
    expect_rejected("<pad>\n<unk>\n<s>\na\nb\n", "no </s>");
    expect_rejected("<unk>\n<s>\n</s>\na\nb\n", "no <pad>");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\na\nb\na\n", "a repeated word");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\na\n<s>\n", "a special repeated later");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\na\n\nb\n", "an empty line");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\na b\n", "a line with a space");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\na\nb", "no final newline");
    expect_rejected("<pad>\n<unk>\n<s>\n</s>\n", "no words");
    expect_rejected("", "empty");
    // A NUL inside a word.
    static const char nul[] = "<pad>\n<unk>\n<s>\n</s>\na\0b\n";
    err_clear();
    Vocab *v = NULL;
    cr_assert_eq(vocab_deserialize(&v, nul, sizeof nul - 1, "ckpt.bin"), NMT_ERR_INPUT);
    cr_assert_null(v);
    cr_assert(strstr(err_msg(), "ckpt.bin"), "%s", err_msg());
    err_clear();
    // The smallest valid one.
    cr_assert_eq(vocab_deserialize(&v, "<pad>\n<unk>\n<s>\n</s>\nw\n", 23, "ok"), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"w"}, 1);
    vocab_free(v);
    // Only `len` bytes are read.
    cr_assert_eq(vocab_deserialize(&v, "<pad>\n<unk>\n<s>\n</s>\nw\nw\n", 23, "ok"), NMT_OK, "%s", err_msg());
    expect_words(v, (const char *const[]){"w"}, 1);
    vocab_free(v);
}

// A vocabulary that vocab_build returns loads back: when min_freq or max_size
// leave no word, vocab_build refuses (a checkpoint of specials alone could
// not be loaded).
Test(vocab, every_built_vocabulary_loads_back) {
    const char *p = write_tmp("counts.txt", COUNTS);
    static const int limits[][2] = {{1, 0}, {5, 0}, {6, 0}, {1, 5}, {1, 4}, {100, 100}};
    int built = 0, refused = 0;
    for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
        Vocab *v = NULL;
        int rc = vocab_build(&v, &p, 1, limits[k][0], limits[k][1]);
        if (rc != NMT_OK) {  // only when no word is left; the message names the file
            cr_assert_eq(rc, NMT_ERR_INPUT);
            cr_assert_null(v);
            cr_assert(strstr(err_msg(), p) && strstr(err_msg(), "no word is left"), "%s", err_msg());
            err_clear();
            refused++;
            continue;
        }
        built++;
        size_t len = 0;
        char *buf = vocab_serialize(v, &len);
        Vocab *w = NULL;
        cr_assert_eq(vocab_deserialize(&w, buf, len, "round trip"), NMT_OK,
                     "min_freq %d, max_size %d: built %d ids, but loading them fails: %s", limits[k][0],
                     limits[k][1], vocab_size(v), err_msg());
        cr_assert_eq(vocab_size(w), vocab_size(v));
        vocab_free(w);
        free(buf);
        vocab_free(v);
    }
    cr_assert(built > 0 && refused > 0, "built %d, refused %d: both paths must be exercised", built, refused);
}
