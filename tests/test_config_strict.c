// test_config_strict.c — "say what is wrong, exactly": --set values are parsed
// whole (or taken as strings) and errors in them name `--set KEY`; duplicate
// keys and sections, NUL escapes and data after the closing brace are refused;
// numbers are written back so they read back to the same bits; a directory
// where a file is expected is named as such with its key; adam_eps 0 is
// refused; the word tokenizer has no silent length limit.
#include <criterion/criterion.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "text/tokens.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"

TestSuite(config_strict, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *BASE = "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}%s%s}";

// Parses BASE with `extra` (a section list, without the leading comma) and sets.
static int parse_cfg(Config *c, const char *extra, const char *const *sets, int nset) {
    char buf[4096];
    snprintf(buf, sizeof buf, BASE, extra[0] ? ", " : "", extra);
    err_clear();
    return config_parse(c, buf, "cfg.json", sets, nset);
}

static void refused(const char *extra, const char *const *sets, int nset, const char *needle, const char *not) {
    Config c;
    int rc = parse_cfg(&c, extra, sets, nset);
    if (!rc) config_free(&c);
    cr_assert_eq(rc, NMT_ERR_INPUT, "accepted: %s %s", extra, nset ? sets[0] : "");
    cr_assert(strstr(err_msg(), needle), "message '%s' does not name '%s'", err_msg(), needle);
    if (not) cr_assert(!strstr(err_msg(), not), "message '%s' names '%s'", err_msg(), not);
}

Test(config_strict, set_value_is_parsed_whole) {
    const char *s1[] = {"train.max_steps=5 garbage"};
    refused("", s1, 1, "--set train.max_steps", "cfg.json");
    const char *s2[] = {"model.dropout=0.1x"};
    refused("", s2, 1, "--set model.dropout", "cfg.json");
    const char *s3[] = {"model.tie_output=truex"};
    refused("", s3, 1, "--set model.tie_output", "cfg.json");
    const char *s4[] = {"train.max_steps=[5]"};
    refused("", s4, 1, "--set train.max_steps", "cfg.json");
    // Whole values still work, with surrounding blanks.
    const char *ok[] = {"train.max_steps= 5 ", "model.dropout=1e-1", "model.tie_output=false"};
    Config c;
    cr_assert_eq(parse_cfg(&c, "", ok, 3), 0, "%s", err_msg());
    cr_assert_eq(c.max_steps, 5);
    cr_assert(c.dropout == 0.1);
    cr_assert_eq(c.tie_output, 0);
    config_free(&c);
}

Test(config_strict, set_string_that_starts_like_a_number) {
    const char *sets[] = {"train.checkpoint_dir=2024-run", "data.valid_src=2024", "data.valid_tgt=\"quoted\"",
                          "data.bpe_model=true"};
    Config c;
    cr_assert_eq(parse_cfg(&c, "", sets, 4), 0, "%s", err_msg());
    cr_assert_str_eq(c.checkpoint_dir, "2024-run");
    cr_assert_str_eq(c.valid_src, "2024");
    cr_assert_str_eq(c.valid_tgt, "quoted");
    cr_assert_str_eq(c.bpe_model, "true");
    config_free(&c);
}

Test(config_strict, set_errors_name_the_set_not_the_file) {
    const char *s1[] = {"train.max_steps=abc"};
    refused("", s1, 1, "--set train.max_steps: expected an integer", "cfg.json");
    const char *s2[] = {"model.d_model=7.5"};
    refused("", s2, 1, "--set model.d_model", "cfg.json");
    const char *s3[] = {"model.dropout=2"};
    refused("", s3, 1, "--set model.dropout: 2 is out of range", "cfg.json");
    const char *s4[] = {"model.norm=middle"};
    refused("", s4, 1, "--set model.norm", "cfg.json");
    // The same mistake in the file still names the file.
    refused("\"model\": {\"dropout\": 2}", NULL, 0, "cfg.json: model.dropout", "--set");
}

Test(config_strict, duplicate_keys_and_sections) {
    refused("\"model\": {\"d_model\": 16, \"heads\": 2, \"d_model\": 32}", NULL, 0, "model.d_model", NULL);
    refused("\"model\": {\"d_model\": 16, \"heads\": 2, \"d_model\": 32}", NULL, 0, "duplicate", NULL);
    refused("\"model\": {\"heads\": 2}, \"model\": {\"d_model\": 16}", NULL, 0, "duplicate section 'model'", NULL);
    refused("\"data\": {\"min_freq\": 2}", NULL, 0, "duplicate section 'data'", NULL);
    refused("\"train\": {\"lr\": 0.1, \"lr\": 0.1}", NULL, 0, "duplicate key 'train.lr'", NULL);
    // A --set of a key the file gives is not a duplicate.
    const char *sets[] = {"data.train_src=c", "data.train_src=d"};
    Config c;
    cr_assert_eq(parse_cfg(&c, "", sets, 2), 0, "%s", err_msg());
    cr_assert_str_eq(c.train_src, "d");
    config_free(&c);
}

Test(config_strict, nul_escapes_are_refused) {
    // cJSON would cut the key at the NUL, so "d_model\u0000x" would set d_model.
    refused("\"model\": {\"d_model\\u0000x\": 16, \"heads\": 2}", NULL, 0, "\\u0000", NULL);
    refused("\"model\": {\"d_model\\u0000x\": 16, \"heads\": 2}", NULL, 0, "cfg.json:1:", NULL);
    refused("\"train\": {\"checkpoint_dir\": \"a\\u0000b\"}", NULL, 0, "\\u0000", NULL);
    // An escaped backslash followed by u0000 is six ordinary characters.
    Config c;
    cr_assert_eq(parse_cfg(&c, "\"train\": {\"checkpoint_dir\": \"a\\\\u0000b\"}", NULL, 0), 0, "%s", err_msg());
    cr_assert_str_eq(c.checkpoint_dir, "a\\u0000b");
    config_free(&c);
    const char *sets[] = {"data.valid_src=\"x\\u0000y\"", "data.valid_tgt=y"};
    refused("", sets, 2, "--set data.valid_src", NULL);
}

Test(config_strict, data_after_the_closing_brace) {
    Config c;
    err_clear();
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}\n}", "cfg.json", NULL, 0),
                 NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json:2:1: data after the closing brace"), "%s", err_msg());
    err_clear();
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}} {}", "cfg.json", NULL, 0),
                 NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json:1:48: data after the closing brace (byte 47)"), "%s", err_msg());
    // Control bytes are not JSON's whitespace (cJSON skips them before a value).
    err_clear();
    cr_assert_eq(config_parse(&c, "\x01{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}", "cfg.json", NULL, 0),
                 NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json:1: malformed JSON"), "%s", err_msg());
    // Trailing blank space is fine.
    err_clear();
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}\n \t\n", "cfg.json", NULL, 0),
                 0, "%s", err_msg());
    config_free(&c);
}

static void round_trip(const char *key, double want, double *field_of_b, Config *a, Config *b) {
    char extra[256];
    const char *dot = strchr(key, '.');
    snprintf(extra, sizeof extra, "\"%.*s\": {\"%s\": %.17g}", (int)(dot - key), key, dot + 1, want);
    cr_assert_eq(parse_cfg(a, extra, NULL, 0), 0, "%s: %s", extra, err_msg());
    char *j = config_to_json(a);
    err_clear();
    cr_assert_eq(config_parse(b, j, "resolved", NULL, 0), 0, "%s", err_msg());
    cr_assert(memcmp(field_of_b, &want, sizeof want) == 0, "%s: %.17g came back as %.17g\n%s", key, want,
              *field_of_b, j);
    char diff[256];
    cr_assert_eq(config_diff(a, b, 0, diff, sizeof diff), 0, "differs: %s", diff);
    free(j);
    config_free(a);
    config_free(b);
}

Test(config_strict, numbers_are_written_back_exactly) {
    Config a, b;
    const double vals[] = {0.30000000000000004, 0.1, 1.0 / 3.0, 5e-4, 1e-9, 0.98, 7.000000000000001, 10, 0.999999999,
                           nextafter(0.9, 1.0), 4.9406564584124654e-324, 2.2250738585072014e-308};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        round_trip("train.lr", vals[i], &b.lr, &a, &b);
        if (vals[i] > 0 && vals[i] <= 1) round_trip("train.adam_eps", vals[i], &b.eps, &a, &b);
    }
    // Short values stay short (a reader's file is not turned into 17 digits).
    cr_assert_eq(parse_cfg(&a, "\"train\": {\"lr\": 0.1, \"warmup_steps\": 300}", NULL, 0), 0);
    char *j = config_to_json(&a);
    cr_assert(strstr(j, "\"warmup_steps\":\t300,"), "%s", j);
    cr_assert(strstr(j, "\"lr\":\t0.1,") || strstr(j, "\"lr\": 0.1,"), "%s", j);
    cr_assert(strstr(j, "\"adam_eps\":\t1e-09,") || strstr(j, "\"adam_eps\": 1e-09,"), "%s", j);
    free(j);
    config_free(&a);
}

Test(config_strict, read_file_text_names_a_directory) {
    err_clear();
    cr_assert_null(read_file_text(tmpdir, NULL));
    cr_assert(strstr(err_msg(), tmpdir) && strstr(err_msg(), "is a directory"), "%s", err_msg());
}

static const char *write_cfg(const char *name, const char *src) {
    char text[512];
    snprintf(text, sizeof text, "{\"data\": {\"train_src\": \"%s\", \"train_tgt\": \"%s\"}}", src, src);
    return write_tmp(name, text);
}

Test(config_strict, directory_where_a_file_is_expected_names_the_key) {
    const char *dir = tmp_path("d");
    cr_assert_eq(mkdir(dir, 0755), 0);
    const char *cfg = write_cfg("c.json", dir);
    Config c;
    err_clear();
    cr_assert_eq(config_load(&c, cfg, NULL, 0), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "c.json: data.train_src: ") && strstr(err_msg(), "is a directory"), "%s", err_msg());
    // Given by --set: the --set is named.
    const char *file = write_tmp("s.txt", "a b\n");
    const char *cfg2 = write_cfg("c2.json", file);
    char set[256];
    snprintf(set, sizeof set, "data.valid_src=%s", dir);
    char set2[256];
    snprintf(set2, sizeof set2, "data.valid_tgt=%s", file);
    const char *sets[] = {set, set2};
    err_clear();
    cr_assert_eq(config_load(&c, cfg2, sets, 2), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "--set data.valid_src: ") && strstr(err_msg(), "is a directory"), "%s", err_msg());
    // A checkpoint directory that is a file.
    snprintf(set, sizeof set, "train.checkpoint_dir=%s", file);
    const char *sets2[] = {set};
    err_clear();
    cr_assert_eq(config_load(&c, cfg2, sets2, 1), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "--set train.checkpoint_dir: ") && strstr(err_msg(), "is not a directory"), "%s",
              err_msg());
    // The config file itself.
    err_clear();
    cr_assert_eq(config_load(&c, dir, NULL, 0), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "is a directory"), "%s", err_msg());
    // Files that are fine, or missing (the trainer names those), pass.
    err_clear();
    cr_assert_eq(config_load(&c, cfg2, NULL, 0), 0, "%s", err_msg());
    config_free(&c);
}

Test(config_strict, adam_eps_zero_is_refused) {
    refused("\"train\": {\"adam_eps\": 0}", NULL, 0, "cfg.json: train.adam_eps", NULL);
    refused("\"train\": {\"adam_eps\": 0}", NULL, 0, "divides 0 by 0", NULL);
    const char *sets[] = {"train.adam_eps=0"};
    refused("", sets, 1, "--set train.adam_eps", "cfg.json");
    Config c;
    cr_assert_eq(parse_cfg(&c, "\"train\": {\"adam_eps\": 1e-300}", NULL, 0), 0, "%s", err_msg());
    config_free(&c);
}

// A word of n bytes: 'w' repeated, then `tail`.
static char *long_word(size_t n, const char *tail) {
    size_t t = strlen(tail);
    char *w = xmalloc(n + 1);
    memset(w, 'w', n - t);
    memcpy(w + n - t, tail, t);
    w[n] = 0;
    return w;
}

Test(config_strict, word_tokenizer_has_no_silent_length_limit) {
    // 1022 bytes then "é" (2 bytes): a cut at 1023 bytes splits the character.
    char *a = long_word(1024, "\xc3\xa9");
    char *b = long_word(5000, "b");
    char *b2 = long_word(5000, "c");  // shares b's first 4999 bytes
    size_t len = 2 * strlen(a) + strlen(b) + 64;
    char *text = xmalloc(len);
    snprintf(text, len, "%s x x\n%s x %s\n", a, b, a);
    const char *path = write_tmp("long.txt", text);
    Vocab *v = NULL;
    err_clear();
    cr_assert_eq(vocab_build(&v, &path, 1, 1, 0), 0, "%s", err_msg());
    // Every word whole: x (3), a (2), b (1); nothing cut, no broken UTF-8.
    cr_assert_eq(vocab_size(v), TOK_SPECIALS + 3, "size %d", vocab_size(v));
    cr_assert_str_eq(vocab_token(v, TOK_SPECIALS), "x");
    cr_assert_str_eq(vocab_token(v, TOK_SPECIALS + 1), a);
    cr_assert_str_eq(vocab_token(v, TOK_SPECIALS + 2), b);
    for (int i = 0; i < vocab_size(v); i++)
        cr_assert(utf8_valid(vocab_token(v, i), strlen(vocab_token(v, i))), "id %d is not valid UTF-8", i);
    // Encoding looks the whole word up: b2 differs from b only past byte 1023.
    size_t ln = strlen(b) + strlen(b2) + strlen(a) + 8;
    char *line = xmalloc(ln);
    snprintf(line, ln, "%s %s %s", b, b2, a);
    int *ids = NULL;
    vocab_encode(v, line, &ids);
    cr_assert_eq(arrlen(ids), 3);
    cr_assert_eq(ids[0], TOK_SPECIALS + 2);
    cr_assert_eq(ids[1], TOK_UNK);
    cr_assert_eq(ids[2], TOK_SPECIALS + 1);
    arrfree(ids);
    free(line);
    // And they go through the checkpoint's serialised form whole.
    size_t slen = 0;
    char *ser = vocab_serialize(v, &slen);
    Vocab *w = NULL;
    cr_assert_eq(vocab_deserialize(&w, ser, slen, "vocab"), 0, "%s", err_msg());
    cr_assert_eq(vocab_size(w), vocab_size(v));
    cr_assert_str_eq(vocab_token(w, TOK_SPECIALS + 1), a);
    cr_assert_str_eq(vocab_token(w, TOK_SPECIALS + 2), b);
    vocab_free(w);
    free(ser);
    free(text);
    free(a);
    free(b);
    free(b2);
    vocab_free(v);
}

// Rules between keys name where each value came from: the file, a --set, or both.
Test(config_strict, two_key_errors_name_the_set_that_gave_a_value) {
    refused("\"model\": {\"d_model\": 100, \"heads\": 3}", NULL, 0, "cfg.json: model.d_model (100)", "--set");
    const char *heads[] = {"model.heads=3"};
    refused("\"model\": {\"d_model\": 100}", heads, 1, "cfg.json, --set model.heads: model.d_model (100) must be divisible",
            "--set model.d_model");
    const char *both[] = {"model.d_model=100", "model.heads=3"};
    refused("", both, 2, "--set model.d_model, --set model.heads: ", "cfg.json");
    const char *len[] = {"data.max_src_len=50"};
    refused("\"train\": {\"batch_tokens\": 30}", len, 1, "cfg.json, --set data.max_src_len: train.batch_tokens (30)", NULL);
    const char *valid[] = {"data.valid_src=v.de"};
    refused("", valid, 1, "cfg.json, --set data.valid_src: data.valid_src and data.valid_tgt", NULL);
    const char *bpe[] = {"data.tokenizer=bpe", "data.vocab_size=10"};
    refused("", bpe, 2, "--set data.vocab_size, --set data.tokenizer: data.vocab_size (10)", "cfg.json");
    const char *dir[] = {"train.checkpoint_dir="};
    refused("", dir, 1, "--set train.checkpoint_dir: train.checkpoint_dir must not be empty", "cfg.json");
}
