// test_bpe.c — BPE learning (hand-checked merges), exact round trips, UTF-8
// errors, determinism, the model format and its corruption checks.
#include <criterion/criterion.h>
#include <glob.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stb/stb_ds.h>

#include "text/bpe.h"
#include "common/util.h"

// A fresh directory per test (Criterion runs each test in its own process).
static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nmt_test_bpe_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", tmpdir);
}

TestSuite(bpe, .init = make_tmpdir, .fini = remove_tmpdir);

// Writes `text` to tmpdir/name; returns the path (static storage, 4 slots).
static const char *write_tmp(const char *name, const char *text, size_t len) {
    static char paths[4][128];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return p;
}

static Bpe *learn_text(const char *text, int vocab) {
    const char *path = write_tmp("corpus.txt", text, strlen(text));
    Bpe *b = NULL;
    int rc = bpe_learn(&b, &path, 1, vocab);
    cr_assert_eq(rc, NMT_OK, "bpe_learn failed: %s", err_msg());
    return b;
}

// A corpus with some variety: German and English sentences.
static const char CORPUS[] =
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.\n"
    "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun.\n"
    "Ein Mädchen in einem Karateanzug bricht einen Stock mit einem Tritt.\n"
    "Fünf Leute in Winterjacken und mit Helmen stehen im Schnee mit Schneemobilen im Hintergrund.\n"
    "Leute reparieren das Dach eines Hauses.\n"
    "A man in an orange hat starring at something.\n"
    "A Boston Terrier is running on lush green grass in front of a white fence.\n"
    "A girl in karate uniform breaking a stick with a front kick.\n"
    "Five people wearing winter jackets and helmets stand in the snow, with snowmobiles in the background.\n"
    "People are fixing the roof of a house.\n"
    "Zwei Männer (mit Hüten) sagen: \"Straße!\" -- 3,5 km; 100 % sicher?\n";

static void expect_ids(const Bpe *b, const char *line, const int *want, int n) {
    int *ids = NULL;
    cr_assert_eq(bpe_encode(b, line, &ids), NMT_OK, "%s", err_msg());
    cr_assert_eq(arrlen(ids), n, "'%s': %d ids, want %d", line, (int)arrlen(ids), n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(ids[i], want[i], "'%s' id %d: got %d (%s) want %d (%s)", line, i, ids[i],
                     bpe_token(b, ids[i]), want[i], bpe_token(b, want[i]));
    arrfree(ids);
}

static void expect_round_trip(const Bpe *b, const char *line) {
    int *ids = NULL;
    cr_assert_eq(bpe_encode(b, line, &ids), NMT_OK, "'%s': %s", line, err_msg());
    for (ptrdiff_t i = 0; i < arrlen(ids); i++) {
        cr_assert(ids[i] >= BPE_BYTE0 && ids[i] < bpe_vocab_size(b));
        // Token strings map back to the same id (the CLI's text form).
        cr_assert_eq(bpe_token_id(b, bpe_token(b, ids[i])), ids[i]);
    }
    char *back = bpe_decode(b, ids, arrlenu(ids));
    cr_assert_str_eq(back, line, "round trip of '%s' gave '%s'", line, back);
    free(back);
    arrfree(ids);
}

/* Hand-derived merges. Corpus lines "hug hug hug pug" and "pun pun bun hugs";
   with the dummy leading space every word starts with the marker ▁:
     ▁hug ×3, ▁pug ×1, ▁pun ×2, ▁bun ×1, ▁hugs ×1.
   Character counts: u 8, ▁ 8, g 5, h 4, n 3, p 3, b 1, s 1; ties go to the
   smaller code point, so the ids are u=260 ▁=261 g=262 h=263 n=264 p=265
   b=266 s=267.
   Pair counts: (u,g)=5 (▁,h)=4 (h,u)=4 (▁,p)=3 (p,u)=3 (u,n)=3, rest 1.
   1. (u,g) 5 -> ug=268.      Now (▁,h)=4 (h,ug)=4 (▁,p)=3 (u,n)=3 (p,u)=2.
   2. tie at 4: "h" < "▁" (0x68 < 0xE2) -> (h,ug) -> hug=269.
   3. (▁,hug) 4 -> ▁hug=270.  Now (▁,p)=3 (u,n)=3 (p,u)=2.
   4. tie at 3: "u" < "▁" -> (u,n) -> un=271.  Now (▁,p)=3 (p,un)=2.
   5. (▁,p) 3 -> ▁p=272.      Now (▁p,un)=2, everything else 1.
   6. (▁p,un) 2 -> ▁pun=273.  Then no pair occurs twice: stop at 274 ids. */
static const char HUG[] = "hug hug hug pug\npun pun bun hugs\n";

Test(bpe, hand_checked_merges) {
    Bpe *b = learn_text(HUG, 1000);
    cr_assert_eq(bpe_vocab_size(b), 274);
    const char *want[] = {"u", "▁", "g", "h", "n", "p", "b", "s", "ug", "hug", "▁hug", "un", "▁p", "▁pun"};
    for (int i = 0; i < 14; i++) cr_expect_str_eq(bpe_token(b, 260 + i), want[i], "id %d", 260 + i);
    size_t len;
    char *s = bpe_serialize(b, &len);
    cr_assert_str_eq(s, "nmt-bpe 1\nsize 274\nchars 8\nu\n▁\ng\nh\nn\np\nb\ns\nmerges 6\n"
                        "u g\nh ug\n▁ hug\nu n\n▁ p\n▁p un\nend\n");
    cr_assert_eq(len, strlen(s));
    free(s);
    // ▁hugs: u+g (rank 0), h+ug, ▁+hug, then (▁hug, s) has no merge.
    expect_ids(b, "hugs pun", (int[]){270, 267, 273}, 3);
    expect_ids(b, "bug", (int[]){261, 266, 268}, 3);
    // '!' was never seen: byte fallback 4 + 0x21.
    expect_ids(b, "hug!", (int[]){270, 4 + 0x21}, 2);
    // Leading space: a lone marker, then the dummy-marked word.
    expect_ids(b, " hug", (int[]){261, 270}, 2);
    bpe_free(b);

    // The size limit stops learning after merge 3.
    b = learn_text(HUG, 271);
    cr_assert_eq(bpe_vocab_size(b), 271);
    cr_assert_str_eq(bpe_token(b, 270), "▁hug");
    expect_ids(b, "pun", (int[]){261, 265, 260, 264}, 4);
    bpe_free(b);
}

Test(bpe, specials_and_bytes) {
    Bpe *b = learn_text(HUG, 1000);
    cr_assert_eq(TOK_PAD, 0);
    cr_assert_eq(TOK_UNK, 1);
    cr_assert_eq(TOK_BOS, 2);
    cr_assert_eq(TOK_EOS, 3);
    cr_assert_str_eq(bpe_token(b, TOK_PAD), "<pad>");
    cr_assert_str_eq(bpe_token(b, TOK_UNK), "<unk>");
    cr_assert_str_eq(bpe_token(b, TOK_BOS), "<s>");
    cr_assert_str_eq(bpe_token(b, TOK_EOS), "</s>");
    cr_assert_str_eq(bpe_token(b, 4), "<0x00>");
    cr_assert_str_eq(bpe_token(b, 4 + 0xAB), "<0xAB>");
    cr_assert_str_eq(bpe_token(b, 259), "<0xFF>");
    cr_assert_null(bpe_token(b, -1));
    cr_assert_null(bpe_token(b, bpe_vocab_size(b)));
    cr_assert_eq(bpe_token_id(b, "<s>"), TOK_BOS);
    cr_assert_eq(bpe_token_id(b, "<0x41>"), 4 + 0x41);
    cr_assert_eq(bpe_token_id(b, "nonexistent"), -1);
    // Decoding skips specials and ids out of range.
    int ids[] = {TOK_BOS, 270, -5, 99999, TOK_PAD, 273, TOK_EOS};
    char *s = bpe_decode(b, ids, 7);
    cr_assert_str_eq(s, "hug pun");
    free(s);
    bpe_free(b);
}

// Byte tokens that form whole characters decode to them; stray ones (a lead
// byte without its continuation, a lone continuation, NUL) become U+FFFD.
Test(bpe, decoded_bytes_are_always_utf8) {
    Bpe *b = learn_text(HUG, 1000);
    int e_acute[] = {BPE_BYTE0 + 0xC3, BPE_BYTE0 + 0xA9}, stray[] = {BPE_BYTE0 + 0xC3, 270, BPE_BYTE0 + 0xA9},
        nul[] = {BPE_BYTE0 + 'a', BPE_BYTE0, BPE_BYTE0 + 'b'};
    char *s = bpe_decode(b, e_acute, 2);
    cr_assert_str_eq(s, "\xc3\xa9");
    free(s);
    s = bpe_decode(b, stray, 3);
    cr_assert_str_eq(s, "\xef\xbf\xbd hug\xef\xbf\xbd");
    free(s);
    s = bpe_decode(b, nul, 3);
    cr_assert_str_eq(s, "a\xef\xbf\xbd" "b");
    free(s);
    bpe_free(b);
}

Test(bpe, vocab_too_small) {
    const char *path = write_tmp("c.txt", HUG, strlen(HUG));
    Bpe *b = NULL;
    cr_assert_eq(bpe_learn(&b, &path, 1, 267), NMT_ERR_INPUT); // 260 + 8 characters needed
    cr_assert_null(b);
    cr_assert(strstr(err_msg(), "too small"), "%s", err_msg());
    err_clear();
    cr_assert_eq(bpe_learn(&b, &path, 1, 100), NMT_ERR_INPUT);
    err_clear();
    cr_assert_eq(bpe_learn(&b, &path, 1, 268), NMT_OK, "%s", err_msg()); // characters only
    cr_assert_eq(bpe_vocab_size(b), 268);
    expect_round_trip(b, "hugs pun bun");
    bpe_free(b);
}

static const char *const TRICKY[] = {
    "",
    " ",
    "   ",
    "a",
    " a",
    "a ",
    "  leading and trailing  ",
    "multiple   spaces  between",
    "\ttabs\tand \t mixed\t",
    "\t",
    "Ein Mann mit einem Hut.",
    "ein mann MIT EINEM hut",
    "punctuation: (a), [b]; {c} \"d\" 'e' -- f... g?! <h> & 100%",
    "äöüß ÄÖÜ é è ê ç ñ ø å",
    "Γειά σου Κόσμε, αβγδ",
    "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "中文字符测试。你好，世界！",
    "emoji 😀 👍🏽 🇩🇪 zwj 👩‍👩‍👧",
    "literal marker ▁ and ▁▁x ▁",
    "▁",
    "<pad> <unk> <s> </s> <0x41>",
    "carriage\rreturn\r",
    "del\x7f and nbsp\u00a0here and C1\xc2\x85",
    "zero width\u200bjoiner and \u2028 separator",
    "x",
    "9,99 € – 3.5km 1990er",
};

Test(bpe, round_trip_tricky_strings) {
    Bpe *b = learn_text(CORPUS, 400);
    for (size_t i = 0; i < sizeof TRICKY / sizeof *TRICKY; i++) expect_round_trip(b, TRICKY[i]);
    // A piece longer than the cache limit, and a long line of them.
    char *longw = xmalloc(5001);
    for (int i = 0; i < 5000; i++) longw[i] = "abcdefgh"[i % 7];
    longw[5000] = 0;
    expect_round_trip(b, longw);
    for (int i = 0; i < 5000; i++) longw[i] = i % 3 ? 'e' : ' ';
    expect_round_trip(b, longw);
    free(longw);
    // Encoding the same line twice (second time from the cache) gives the same ids.
    int *a = NULL, *c = NULL;
    cr_assert_eq(bpe_encode(b, "Ein Mann mit einem Hut.", &a), NMT_OK);
    cr_assert_eq(bpe_encode(b, "Ein Mann mit einem Hut.", &c), NMT_OK);
    cr_assert_eq(arrlen(a), arrlen(c));
    cr_assert_arr_eq(a, c, (size_t)arrlen(a) * sizeof *a);
    // bpe_encode appends.
    cr_assert_eq(bpe_encode(b, "Ein", &a), NMT_OK);
    cr_assert_gt(arrlen(a), arrlen(c));
    arrfree(a);
    arrfree(c);
    bpe_free(b);
}

Test(bpe, learned_tokens_are_printable_and_unique) {
    // Controls (tab, CR, DEL, C1 NEL) and literal markers in training text must
    // not become learned symbols: they always go through byte tokens.
    static const char extra[] = "tab\there\tand\tthere\r\r del\x7f\x7f NEL\xc2\x85\xc2\x85 ▁▁ x▁▁\n";
    char *text = xmalloc(sizeof CORPUS + 2 * sizeof extra);
    strcpy(text, CORPUS);
    strcat(text, extra);
    strcat(text, extra);
    Bpe *b = learn_text(text, 500);
    free(text);
    int nmarker = 0;
    for (int id = 0; id < bpe_vocab_size(b); id++) {
        const char *t = bpe_token(b, id);
        cr_assert(t && *t);
        for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
            cr_assert(*p > 0x20 && *p != 0x7f, "token %d has a space or control byte", id);
            cr_assert(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0), "token %d has a C1 control", id);
        }
        nmarker += strcmp(t, "▁") == 0;
        cr_assert_eq(bpe_token_id(b, t), id, "token '%s' is not unique", t);
    }
    cr_assert_eq(nmarker, 1);
    expect_round_trip(b, extra);
    expect_round_trip(b, "\xc2\x85 ▁ \t");
    // Literal U+2581 is spelled with byte tokens, never with the marker.
    expect_ids(b, "▁", (int[]){bpe_token_id(b, "▁"), 4 + 0xE2, 4 + 0x96, 4 + 0x81}, 4);
    bpe_free(b);
}

Test(bpe, invalid_utf8_reported) {
    Bpe *b = learn_text(CORPUS, 400);
    static const char *const bad[] = {
        "\xff", "abc \xc3", "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "big \xf4\x90\x80\x80",
        "truncated \xe2\x82", "lone continuation \x80", "\xf8\x88\x80\x80\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err_clear();
        int *ids = NULL;
        cr_assert_eq(bpe_encode(b, bad[i], &ids), NMT_ERR_INPUT, "case %zu accepted", i);
        cr_assert(strstr(err_msg(), "invalid UTF-8"), "%s", err_msg());
        arrfree(ids);
    }
    err_clear();
    int *ids = NULL;
    cr_assert_eq(bpe_encode_at(b, "ok \xfe", &ids, "train.de", 17), NMT_ERR_INPUT);
    cr_assert_str_eq(err_msg(), "train.de:17: invalid UTF-8");
    arrfree(ids);
    bpe_free(b);

    // Learning names the file and line.
    err_clear();
    const char text[] = "good line\nanother good one\nbad \xe9 latin-1\nfine\n";
    const char *path = write_tmp("latin1.txt", text, sizeof text - 1);
    Bpe *c = NULL;
    cr_assert_eq(bpe_learn(&c, &path, 1, 1000), NMT_ERR_INPUT);
    cr_assert_null(c);
    char want[256];
    snprintf(want, sizeof want, "%s:3: invalid UTF-8", path);
    cr_assert_str_eq(err_msg(), want);
}

Test(bpe, learn_input_errors) {
    Bpe *b = NULL;
    const char *missing = "/nonexistent/dir/x.txt";
    cr_assert_eq(bpe_learn(&b, &missing, 1, 1000), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), missing), "%s", err_msg());
    err_clear();
    const char *empty = write_tmp("empty.txt", "\n\n", 2); // only empty lines
    cr_assert_eq(bpe_learn(&b, &empty, 1, 1000), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "empty corpus"), "%s", err_msg());
    err_clear();
    cr_assert_eq(bpe_learn(&b, &empty, 0, 1000), NMT_ERR_INPUT);
    cr_assert_null(b);
}

// A synthetic corpus with many ties and thousands of word types: words of
// 1-3 syllables drawn from a fixed pseudo-random sequence.
static char *synthetic_corpus(int lines) {
    static const char *const syl[] = {"the", "n", "re", "do", "g", "s", "sän", "ger", "über", "Ein",
                                      "an", "d", "ri", "ng", "a", "u", "ß", "Ü", "to", "ka"};
    char *out = NULL;
    uint32_t x = 12345;
    for (int l = 0; l < lines; l++) {
        int n = 3 + l % 7;
        for (int i = 0; i < n; i++) {
            if (i) arrpush(out, ' ');
            x = x * 1103515245u + 12345u;
            for (uint32_t k = 0, nsyl = 1 + (x >> 28) % 3; k < nsyl; k++) {
                x = x * 1103515245u + 12345u;
                const char *w = syl[(x >> 16) % (sizeof syl / sizeof *syl)];
                memcpy(arraddnptr(out, strlen(w)), w, strlen(w));
            }
        }
        arrpush(out, l % 5 ? '.' : ',');
        arrpush(out, '\n');
    }
    arrpush(out, 0);
    char *s = xstrdup(out);
    arrfree(out);
    return s;
}

Test(bpe, deterministic_across_runs_threads_and_file_order) {
    char *text = synthetic_corpus(400);
    const char *p1 = write_tmp("a.txt", text, strlen(text));
    const char *p2 = write_tmp("b.txt", CORPUS, strlen(CORPUS));
    free(text);
    const char *order1[] = {p1, p2}, *order2[] = {p2, p1};
    char *ser[4];
    for (int run = 0; run < 4; run++) {
        omp_set_num_threads(run % 2 ? 2 : 1);
        Bpe *b = NULL;
        cr_assert_eq(bpe_learn(&b, run < 3 ? order1 : order2, 2, 420), NMT_OK, "%s", err_msg());
        ser[run] = bpe_serialize(b, NULL);
        bpe_free(b);
    }
    for (int run = 1; run < 4; run++) cr_assert_str_eq(ser[run], ser[0], "run %d differs", run);
    for (int run = 0; run < 4; run++) free(ser[run]);
}

Test(bpe, encode_is_thread_safe) {
    char *text = synthetic_corpus(3000);
    Bpe *b = learn_text(text, 300); // few merges: many distinct pieces fill the cache
    // Split into lines; encode serially, then in parallel with a cold cache.
    char **lines = NULL;
    for (char *s = text, *l; (l = strsep(&s, "\n")) != NULL;) arrpush(lines, l);
    int n = (int)arrlen(lines);
    int **serial = xcalloc((size_t)n, sizeof *serial), **par = xcalloc((size_t)n, sizeof *par);
    for (int i = 0; i < n; i++) cr_assert_eq(bpe_encode(b, lines[i], &serial[i]), NMT_OK);
    char *ser = bpe_serialize(b, NULL);
    for (int rep = 0; rep < 3; rep++) {
        bpe_free(b); // a cold cache each time, so threads insert concurrently
        cr_assert_eq(bpe_deserialize(&b, ser, strlen(ser), "mem"), NMT_OK, "%s", err_msg());
        int fails = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : fails)
        for (int i = 0; i < n; i++) fails += bpe_encode(b, lines[i], &par[i]) != NMT_OK;
        cr_assert_eq(fails, 0);
        for (int i = 0; i < n; i++) {
            cr_assert_eq(arrlen(par[i]), arrlen(serial[i]), "line %d", i);
            if (arrlen(par[i])) cr_assert_arr_eq(par[i], serial[i], (size_t)arrlen(par[i]) * sizeof(int));
            arrfree(par[i]);
        }
    }
    free(ser);
    for (int i = 0; i < n; i++) arrfree(serial[i]);
    free(par);
    free(serial);
    arrfree(lines);
    free(text);
    bpe_free(b);
}

Test(bpe, serialize_round_trip_and_files) {
    Bpe *b = learn_text(CORPUS, 450);
    size_t len;
    char *s = bpe_serialize(b, &len);
    Bpe *c = NULL;
    cr_assert_eq(bpe_deserialize(&c, s, len, "mem"), NMT_OK, "%s", err_msg());
    cr_assert_eq(bpe_vocab_size(c), bpe_vocab_size(b));
    for (int id = 0; id < bpe_vocab_size(b); id++) cr_assert_str_eq(bpe_token(c, id), bpe_token(b, id));
    char *s2 = bpe_serialize(c, NULL);
    cr_assert_str_eq(s2, s);
    free(s2);
    // Same ids for every line of the corpus and the tricky strings.
    char *text = xstrdup(CORPUS);
    for (char *p = text, *l; (l = strsep(&p, "\n")) != NULL;) {
        int *x = NULL, *y = NULL;
        cr_assert_eq(bpe_encode(b, l, &x), NMT_OK);
        cr_assert_eq(bpe_encode(c, l, &y), NMT_OK);
        cr_assert_eq(arrlen(x), arrlen(y));
        if (arrlen(x)) cr_assert_arr_eq(x, y, (size_t)arrlen(x) * sizeof(int));
        arrfree(x);
        arrfree(y);
    }
    free(text);
    for (size_t i = 0; i < sizeof TRICKY / sizeof *TRICKY; i++) expect_round_trip(c, TRICKY[i]);
    bpe_free(c);

    // Through a file.
    char path[128];
    snprintf(path, sizeof path, "%s/model.bpe", tmpdir);
    cr_assert_eq(bpe_save(b, path), NMT_OK, "%s", err_msg());
    cr_assert_eq(bpe_load(&c, path), NMT_OK, "%s", err_msg());
    s2 = bpe_serialize(c, NULL);
    cr_assert_str_eq(s2, s);
    free(s2);
    bpe_free(c);
    free(s);
    bpe_free(b);
    err_clear();
    cr_assert_eq(bpe_load(&c, "/nonexistent/model.bpe"), NMT_ERR_INPUT);
    cr_assert_null(c);
}

// Expects deserialization of `text` to fail naming "m.bpe:LINE:" and `what`.
static void expect_corrupt(const char *text, size_t len, int line, const char *what) {
    err_clear();
    Bpe *b = (Bpe *)1;
    cr_assert_eq(bpe_deserialize(&b, text, len, "m.bpe"), NMT_ERR_INPUT, "accepted: %s", what);
    cr_assert_null(b);
    char want[32];
    snprintf(want, sizeof want, "m.bpe:%d: ", line);
    cr_assert(strncmp(err_msg(), want, strlen(want)) == 0, "%s: got '%s', want line %d", what, err_msg(), line);
}

Test(bpe, corrupt_model_rejected) {
    static const char good[] = "nmt-bpe 1\nsize 274\nchars 8\nu\n▁\ng\nh\nn\np\nb\ns\nmerges 6\n"
                               "u g\nh ug\n▁ hug\nu n\n▁ p\n▁p un\nend\n";
    Bpe *b = NULL;
    cr_assert_eq(bpe_deserialize(&b, good, strlen(good), "m.bpe"), NMT_OK, "%s", err_msg());
    expect_ids(b, "hugs pun", (int[]){270, 267, 273}, 3);
    bpe_free(b);
    // Every truncation fails (dropping only the final newline is harmless).
    size_t n = strlen(good);
    for (size_t cut = 0; cut + 1 < n; cut++) {
        err_clear();
        b = NULL;
        cr_assert_eq(bpe_deserialize(&b, good, cut, "m.bpe"), NMT_ERR_INPUT, "truncated at %zu accepted", cut);
        cr_assert_null(b);
        cr_assert(strncmp(err_msg(), "m.bpe:", 6) == 0, "%s", err_msg());
    }
    struct { const char *text; int line; const char *what; } cases[] = {
        {"nmt-bpe 2\nsize 274\n", 1, "version"},
        {"nmt-bpe 1\nsize 27x4\n", 2, "size not a number"},
        {"nmt-bpe 1\nsize 99999999999\n", 2, "size too big"},
        {"nmt-bpe 1\nsize 100\n", 2, "size too small"},
        {"nmt-bpe 1\nsize 274\nchars 0\n", 3, "no chars"},
        {"nmt-bpe 1\nsize 274\nchars 15\n", 3, "more chars than size"},
        {"nmt-bpe 1\nsize 274\nchars 2\nu\nu\n", 5, "duplicate char"},
        {"nmt-bpe 1\nsize 274\nchars 2\nu\nug\n", 5, "two chars on a line"},
        {"nmt-bpe 1\nsize 274\nchars 2\nu\n\t\n", 5, "control char"},
        {"nmt-bpe 1\nsize 274\nchars 2\nu\n \n", 5, "space char"},
        {"nmt-bpe 1\nsize 274\nchars 2\nu\n\xff\n", 5, "invalid UTF-8"},
        {"nmt-bpe 1\nsize 262\nchars 2\nu\ng\nmerges 0\nend\n", 5, "no marker"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nu x\nend\n", 7, "unknown merge token"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nu <s>\nend\n", 7, "merge with a special"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nu  u\nend\n", 7, "two spaces"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nuu\nend\n", 7, "no space"},
        {"nmt-bpe 1\nsize 264\nchars 2\nu\n▁\nmerges 2\nu u\nu u\nend\n", 8, "duplicate merge"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 2\nu u\n▁ u\nend\n", 8, "more tokens than size"},
        {"nmt-bpe 1\nsize 264\nchars 2\nu\n▁\nmerges 1\nu u\nend\n", 8, "fewer tokens than size"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nu u\nend\nextra\n", 9, "trailing data"},
        {"nmt-bpe 1\nsize 263\nchars 2\nu\n▁\nmerges 1\nu u\nfin\n", 8, "no end"},
        {"nmt-bpe 1\nsize 262\nchars 2\nu\n▁\nmerges -1\nend\n", 6, "negative merges"},
        // "<pad>" as a merge result would make two ids print the same.
        {"nmt-bpe 1\nsize 270\nchars 6\n▁\n<\np\na\nd\n>\nmerges 4\n< p\na d\n<p ad\n<pad >\nend\n", 14,
         "merge spelling a special"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect_corrupt(cases[i].text, strlen(cases[i].text), cases[i].line, cases[i].what);
    // A NUL byte inside a line.
    static const char nul[] = "nmt-bpe 1\nsize 262\nchars 2\nu\0\n";
    expect_corrupt(nul, sizeof nul - 1, 4, "NUL byte");
    // Through a file: the error names the path.
    const char *path = write_tmp("bad.bpe", "nmt-bpe 1\nsize 274\nchars x\n", 27);
    err_clear();
    cr_assert_eq(bpe_load(&b, path), NMT_ERR_INPUT);
    char want[200];
    snprintf(want, sizeof want, "%s:3: ", path);
    cr_assert(strncmp(err_msg(), want, strlen(want)) == 0, "%s", err_msg());
}

// Round trip of every line of the toy data set when it has been generated.
Test(bpe, round_trip_toy_data) {
    glob_t g;
    memset(&g, 0, sizeof g);
    int r1 = glob("data/toy/*.src", 0, NULL, &g);
    glob("data/toy/*.tgt", r1 == 0 ? GLOB_APPEND : 0, NULL, &g);
    if (g.gl_pathc == 0) {
        globfree(&g);
        remove_tmpdir(); // .fini does not run after a skip
        cr_skip("no data/toy/*.src or *.tgt files");
    }
    // Learn on the training files (all files if none is named *train*), so
    // the other splits also exercise unseen words and characters.
    const char **train = NULL;
    for (size_t f = 0; f < g.gl_pathc; f++)
        if (strstr(g.gl_pathv[f], "train")) arrpush(train, g.gl_pathv[f]);
    if (!train)
        for (size_t f = 0; f < g.gl_pathc; f++) arrpush(train, g.gl_pathv[f]);
    Bpe *b = NULL;
    int rc = bpe_learn(&b, train, (int)arrlen(train), 1000);
    if (rc != NMT_OK && strstr(err_msg(), "too small")) {
        err_clear();
        rc = bpe_learn(&b, train, (int)arrlen(train), 8000);
    }
    arrfree(train);
    cr_assert_eq(rc, NMT_OK, "%s", err_msg());
    long lines = 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        size_t len;
        char *text = read_file_text(g.gl_pathv[f], &len);
        cr_assert_not_null(text, "%s", err_msg());
        char *p = text, *l;
        while ((l = strsep(&p, "\n")) != NULL) {
            if (!p && !*l) break; // after the final newline
            expect_round_trip(b, l);
            lines++;
        }
        free(text);
    }
    cr_log_info("bpe: round-tripped %ld toy lines from %zu files", lines, g.gl_pathc);
    globfree(&g);
    bpe_free(b);
}

// ---- bounded time and exactness on long words ---------------------------------

// Deterministic pseudo-random letters from `alphabet`.
static char *random_word(unsigned *seed, size_t n, const char *alphabet) {
    size_t k = strlen(alphabet);
    char *s = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        s[i] = alphabet[(*seed >> 16) % k];
    }
    s[n] = 0;
    return s;
}

// The textbook algorithm, independent of bpe.c's data structures: the merges
// as "left right" strings from the model file, and a word's symbols as
// strings; repeatedly merge the adjacent pair of lowest rank, leftmost first.
static char **naive_encode(const char *model, const char *word) {
    typedef struct { char *key; int value; } Rank;
    Rank *rank = NULL;
    sh_new_strdup(rank);
    const char *m = strstr(model, "\nmerges ");
    cr_assert_not_null(m);
    m = strchr(m + 1, '\n') + 1;
    for (int r = 0; *m; r++) {
        const char *nl = strchr(m, '\n');
        char *line = strndup(m, (size_t)(nl - m));
        shput(rank, line, r);
        free(line);
        m = nl + 1;
    }
    char **sym = NULL;
    arrpush(sym, xstrdup("\xE2\x96\x81")); // the marker of the line's first word
    for (const char *c = word; *c; c++) arrpush(sym, strndup(c, 1));
    for (;;) {
        int best = -1, best_rank = 0;
        for (int i = 0; i + 1 < (int)arrlen(sym); i++) {
            char *pair = xmalloc(strlen(sym[i]) + strlen(sym[i + 1]) + 2);
            sprintf(pair, "%s %s", sym[i], sym[i + 1]);
            ptrdiff_t at = shgeti(rank, pair);
            free(pair);
            if (at >= 0 && (best < 0 || rank[at].value < best_rank)) best = i, best_rank = rank[at].value;
        }
        if (best < 0) break;
        char *joined = xmalloc(strlen(sym[best]) + strlen(sym[best + 1]) + 1);
        sprintf(joined, "%s%s", sym[best], sym[best + 1]);
        free(sym[best]);
        free(sym[best + 1]);
        sym[best] = joined;
        arrdel(sym, best + 1);
    }
    shfree(rank);
    return sym;
}

// Few letters make many ties and overlapping pairs ("aaa"): the cases where
// a heap-based encoder can differ from the definition.
Test(bpe, encode_matches_naive_lowest_rank_leftmost_merging) {
    unsigned seed = 12345;
    char *corpus = NULL;
    for (int i = 0; i < 300; i++) {
        char *w = random_word(&seed, 1 + (size_t)(i * 7 % 40), "aab");
        for (char *c = w; *c; c++) arrpush(corpus, *c);
        arrpush(corpus, i % 5 ? ' ' : '\n');
        free(w);
    }
    const char *runs = "aaaaaaaaaaaaaaaaaaaaaaa\nabababababababababa\n";
    for (const char *c = runs; *c; c++) arrpush(corpus, *c);
    arrpush(corpus, 0);
    Bpe *b = learn_text(corpus, 300);
    arrfree(corpus);
    char *model = bpe_serialize(b, NULL);
    for (int t = 0; t < 85; t++) {
        size_t n = t < 80 ? 1 + (size_t)t * 3 : 600;
        char *word = random_word(&seed, n, t % 3 ? "aab" : "ab");
        if (t % 10 == 9) memset(word, 'a', n);
        int *ids = NULL;
        cr_assert_eq(bpe_encode(b, word, &ids), NMT_OK, "%s", err_msg());
        char **want = naive_encode(model, word);
        cr_assert_eq(arrlen(ids), arrlen(want), "word %d (%zu letters): %td tokens, the definition gives %td",
                     t, n, arrlen(ids), arrlen(want));
        for (ptrdiff_t i = 0; i < arrlen(ids); i++) {
            cr_assert_str_eq(bpe_token(b, ids[i]), want[i], "word %d token %td", t, i);
            free(want[i]);
        }
        arrfree(want);
        arrfree(ids);
        free(word);
    }
    free(model);
    bpe_free(b);
}

// One 1 MB word without spaces: each merge used to rescan the whole word
// (learning did not finish in 300 s) and encoding was quadratic (28.6 s at
// 300 KB). The alarm bounds the test at far more than the seconds it needs,
// even under AddressSanitizer, and far less than the old code took.
Test(bpe, one_megabyte_word_learns_and_encodes_in_bounded_time) {
    alarm(60);
    unsigned seed = 99;
    char *word = random_word(&seed, 1 << 20, "abcdefghijklmnopqrstuvwxyz");
    const char *path = write_tmp("long.txt", word, strlen(word));
    Bpe *b = NULL;
    cr_assert_eq(bpe_learn(&b, &path, 1, 4000), NMT_OK, "%s", err_msg());
    cr_assert_eq(bpe_vocab_size(b), 4000);
    int *ids = NULL;
    cr_assert_eq(bpe_encode(b, word, &ids), NMT_OK, "%s", err_msg());
    cr_assert_lt(arrlen(ids), 1 << 19, "4000 ids should cover the word in fewer tokens than letters/2");
    char *back = bpe_decode(b, ids, (size_t)arrlen(ids));
    cr_assert(strcmp(back, word) == 0, "decode(encode(word)) differs");
    free(back);
    arrfree(ids);
    free(word);
    bpe_free(b);
}

// bpe_encode_prefix gives exactly the first max ids of the whole encoding
// and says whether it left any out, at every cut point.
Test(bpe, encode_prefix_is_the_prefix_of_encode) {
    Bpe *b = learn_text(CORPUS, 420);
    const char *line = "Ein Mann  mit\teinem Hut, der 42 Äpfel\xE2\x96\x81isst. ";
    int *all = NULL;
    cr_assert_eq(bpe_encode(b, line, &all), NMT_OK, "%s", err_msg());
    size_t n = (size_t)arrlen(all);
    cr_assert_gt(n, 10);
    for (size_t max = 1; max <= n + 2; max++) {
        int *ids = NULL, cut = -1;
        arrpush(ids, 7); // appends after what is there
        cr_assert_eq(bpe_encode_prefix(b, line, max, &ids, &cut, "f", 1), NMT_OK, "%s", err_msg());
        size_t want = max < n ? max : n;
        cr_assert_eq((size_t)arrlen(ids), 1 + want, "max %zu", max);
        cr_assert_eq(ids[0], 7);
        cr_assert_arr_eq(ids + 1, all, want * sizeof(int), "max %zu", max);
        cr_assert_eq(cut, max < n, "max %zu: cut %d", max, cut);
        arrfree(ids);
    }
    int *ids = NULL, cut;
    cr_assert_eq(bpe_encode_prefix(b, "ok \xC3", 1, &ids, &cut, "in.txt", 3), NMT_ERR_INPUT,
                 "invalid UTF-8 past the limit is still an error");
    cr_assert(strstr(err_msg(), "in.txt:3"), "%s", err_msg());
    arrfree(ids);
    arrfree(all);
    bpe_free(b);
}
