// test_config.c — strict configuration: every kind of mistake is named.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/util.h"

static const char *BASE = "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}, %s}";

static int parse(const char *extra, const char *const *sets, int nset) {
    char buf[2048];
    snprintf(buf, sizeof buf, BASE, extra);
    Config c;
    err_clear();
    int rc = config_parse(&c, buf, "cfg.json", sets, nset);
    if (!rc) config_free(&c);
    return rc;
}

static void expect_error(const char *extra, const char *const *sets, int nset, const char *needle) {
    cr_assert_eq(parse(extra, sets, nset), NMT_ERR_INPUT, "accepted: %s", extra);
    cr_assert(strstr(err_msg(), needle), "message '%s' does not name '%s'", err_msg(), needle);
    cr_assert(strstr(err_msg(), sets ? "" : "cfg.json"), "message '%s' does not name the file", err_msg());
}

Test(config, defaults_are_the_paper_base_model) {
    cr_assert_eq(parse("\"train\": {}", NULL, 0), 0, "%s", err_msg());
    Config c;
    config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}", "x", NULL, 0);
    cr_assert_eq(c.d_model, 512);
    cr_assert_eq(c.heads, 8);
    cr_assert_eq(c.d_ff, 2048);
    cr_assert_eq(c.enc_layers, 6);
    cr_assert(c.beta2 == 0.98 && c.eps == 1e-9 && c.label_smoothing == 0.1);
    config_free(&c);
}

Test(config, errors_name_the_key) {
    expect_error("\"model\": {\"d_modl\": 3}", NULL, 0, "model.d_modl");
    expect_error("\"modle\": {}", NULL, 0, "modle");
    expect_error("\"model\": {\"d_model\": \"big\"}", NULL, 0, "model.d_model");
    expect_error("\"model\": {\"d_model\": 1.5}", NULL, 0, "model.d_model");
    expect_error("\"model\": {\"dropout\": 1.5}", NULL, 0, "model.dropout");
    expect_error("\"model\": {\"norm\": \"middle\"}", NULL, 0, "model.norm");
    expect_error("\"model\": {\"tie_output\": 1}", NULL, 0, "model.tie_output");
    expect_error("\"train\": {\"max_steps\": -1}", NULL, 0, "train.max_steps");
    expect_error("\"model\": {\"d_model\": 100, \"heads\": 8}", NULL, 0, "model.heads");
    // BASE has the data section (a second one is refused as a duplicate): --set.
    const char *no_src[] = {"data.train_src="}, *no_vtgt[] = {"data.valid_src=v"};
    expect_error("\"train\": {}", no_src, 1, "data.train_src");
    expect_error("\"train\": {}", no_vtgt, 1, "data.valid_tgt");
}

Test(config, malformed_json_names_the_line) {
    Config c;
    err_clear();
    cr_assert_eq(config_parse(&c, "{\n\"model\": {\n\"d_model\": ,\n}}", "cfg.json", NULL, 0), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json:3"), "%s", err_msg());
}

Test(config, set_overrides) {
    const char *ok[] = {"train.max_steps=7", "model.norm=pre", "train.checkpoint_dir=/tmp/x y", "model.dropout=0.25"};
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {\"max_steps\": 3}");
    Config c;
    err_clear();
    cr_assert_eq(config_parse(&c, buf, "cfg.json", ok, 4), 0, "%s", err_msg());
    cr_assert_eq(c.max_steps, 7);
    cr_assert_eq(c.norm, NORM_PRE);
    cr_assert_str_eq(c.checkpoint_dir, "/tmp/x y");
    cr_assert(c.dropout == 0.25);
    config_free(&c);
    const char *bad[] = {"train.max_stepz=7"};
    expect_error("\"train\": {}", bad, 1, "train.max_stepz");
    const char *bad2[] = {"train.max_steps=lots"};
    expect_error("\"train\": {}", bad2, 1, "train.max_steps");
    const char *bad3[] = {"novalue"};
    expect_error("\"train\": {}", bad3, 1, "novalue");
}

Test(config, resolved_json_round_trips) {
    const char *sets[] = {"model.d_model=64", "model.heads=4", "train.lr=0.001"};
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {}");
    Config a, b;
    cr_assert_eq(config_parse(&a, buf, "x", sets, 3), 0);
    char *j = config_to_json(&a);
    cr_assert_eq(config_parse(&b, j, "y", NULL, 0), 0, "%s", err_msg());
    char diff[256];
    cr_assert_eq(config_diff(&a, &b, 0, diff, sizeof diff), 0, "differs: %s", diff);
    b.d_model = 128;
    cr_assert_eq(config_diff(&a, &b, 1, diff, sizeof diff), 1);
    cr_assert_str_eq(diff, "model.d_model");
    free(j);
    config_free(&a);
    config_free(&b);
}

// data.src_lang / data.tgt_lang: codes as LibreTranslate names them, both or
// neither, not the same; written back and compared like other keys.
static void langs_ok(const char *src, const char *tgt) {
    char s[64], t[64];
    snprintf(s, sizeof s, "data.src_lang=%s", src);
    snprintf(t, sizeof t, "data.tgt_lang=%s", tgt);
    const char *sets[] = {s, t};
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {}");
    Config a, b;
    err_clear();
    cr_assert_eq(config_parse(&a, buf, "cfg.json", sets, 2), 0, "%s -> %s: %s", src, tgt, err_msg());
    cr_assert_str_eq(a.src_lang, src);
    cr_assert_str_eq(a.tgt_lang, tgt);
    char *j = config_to_json(&a);
    cr_assert_eq(config_parse(&b, j, "y", NULL, 0), 0, "%s", err_msg());
    cr_assert_str_eq(b.src_lang, src);
    cr_assert_str_eq(b.tgt_lang, tgt);
    free(j);
    config_free(&a);
    config_free(&b);
}

static void langs_refused(const char *src, const char *tgt, const char *needle) {
    char s[64], t[64];
    snprintf(s, sizeof s, "data.src_lang=%s", src);
    snprintf(t, sizeof t, "data.tgt_lang=%s", tgt);
    const char *both[] = {s, t};
    expect_error("\"train\": {}", both, 2, needle);
}

Test(config, language_codes) {
    langs_ok("de", "en");
    langs_ok("pt-BR", "zh-Hans");
    langs_ok("kab", "es-419");  // ISO 639-3; a region of digits
    langs_ok("", "");           // not recorded: what the resolved config says then
    Config c;
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}", "x", NULL, 0), 0);
    cr_assert_str_eq(c.src_lang, "");  // the default
    cr_assert_str_eq(c.tgt_lang, "");
    config_free(&c);
    const char *bad[] = {"e", "deut", "DE", "De", "de-", "de-B", "de-Hansx", "de_DE", "de-B R", "d1", " de", "de ",
                         "-de", "de-BR-x", "\xc3\xa9n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        langs_refused(bad[i], "en", "--set data.src_lang");
        cr_assert(strstr(err_msg(), "is not a language code"), "%s", err_msg());
        langs_refused("en", bad[i], "--set data.tgt_lang");
    }
    // In the file, the message names the file and the key.
    err_clear();
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\", \"src_lang\": 7, "
                              "\"tgt_lang\": \"en\"}}", "cfg.json", NULL, 0), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json: data.src_lang"), "%s", err_msg());
}

Test(config, language_codes_go_together) {
    const char *src_only[] = {"data.src_lang=de"}, *tgt_only[] = {"data.tgt_lang=en"};
    expect_error("\"train\": {}", src_only, 1, "data.tgt_lang is missing");
    expect_error("\"train\": {}", tgt_only, 1, "data.src_lang is missing");
    langs_refused("de", "de", "data.src_lang and data.tgt_lang are both \"de\"");
    Config c;
    err_clear();
    cr_assert_eq(config_parse(&c, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\", \"src_lang\": \"de\"}}",
                              "cfg.json", NULL, 0), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "cfg.json: data.tgt_lang is missing"), "%s", err_msg());
    // The languages are not model keys: a resume may record or change them.
    const char *de_en[] = {"data.src_lang=de", "data.tgt_lang=en"};
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {}");
    Config a, b;
    cr_assert_eq(config_parse(&a, buf, "x", de_en, 2), 0);
    cr_assert_eq(config_parse(&b, buf, "x", NULL, 0), 0);
    char diff[256];
    cr_assert_eq(config_diff(&a, &b, 1, diff, sizeof diff), 0, "%s", diff);
    cr_assert_eq(config_diff(&a, &b, 0, diff, sizeof diff), 2);
    cr_assert_str_eq(diff, "data.src_lang, data.tgt_lang");
    config_free(&a);
    config_free(&b);
}

// train.init_from: "" by default (a run from scratch); a path from the file or
// a --set, written back and compared like other keys, but not a model key
// (config_diff's model keys are what fine-tuning compares); not a number.
Test(config, init_from_key) {
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {\"init_from\": \"runs/base/last.ckpt\"}");
    Config a, b, d;
    cr_assert_eq(config_parse(&d, "{\"data\": {\"train_src\": \"a\", \"train_tgt\": \"b\"}}", "x", NULL, 0), 0);
    cr_assert_str_eq(d.init_from, "");
    cr_assert_eq(config_parse(&a, buf, "x", NULL, 0), 0, "%s", err_msg());
    cr_assert_str_eq(a.init_from, "runs/base/last.ckpt");
    char *j = config_to_json(&a);
    cr_assert(strstr(j, "\"init_from\":\t\"runs/base/last.ckpt\""), "%s", j);
    const char *set[] = {"train.init_from=other.ckpt"};
    cr_assert_eq(config_parse(&b, j, "y", set, 1), 0, "%s", err_msg());
    cr_assert_str_eq(b.init_from, "other.ckpt");
    char diff[256];
    cr_assert_eq(config_diff(&a, &b, 1, diff, sizeof diff), 0, "a model key: %s", diff);
    cr_assert_eq(config_diff(&a, &b, 0, diff, sizeof diff), 1);
    cr_assert_str_eq(diff, "train.init_from");
    free(j);
    config_free(&a);
    config_free(&b);
    config_free(&d);
    expect_error("\"train\": {\"init_from\": 3}", NULL, 0, "train.init_from");
}

// config_first_diff: the first differing key in the table's order, with both
// values as JSON text; model_only skips the others (dropout, train.*).
Test(config, first_diff_names_key_and_values) {
    char buf[512];
    snprintf(buf, sizeof buf, BASE, "\"train\": {}");
    Config a, b;
    cr_assert_eq(config_parse(&a, buf, "x", NULL, 0), 0);
    const char *sets[] = {"model.dropout=0.3", "model.norm=pre", "model.d_ff=32", "train.lr=0.1"};
    cr_assert_eq(config_parse(&b, buf, "x", sets, 4), 0, "%s", err_msg());
    char va[64] = "", vb[64] = "";
    const char *key = NULL;
    cr_assert_eq(config_first_diff(&a, &b, 1, va, vb, sizeof va, &key), 1);
    cr_assert_str_eq(key, "model.d_ff");
    cr_assert_str_eq(va, "2048");
    cr_assert_str_eq(vb, "32");
    b.d_ff = a.d_ff;
    cr_assert_eq(config_first_diff(&a, &b, 1, va, vb, sizeof va, &key), 1);
    cr_assert_str_eq(key, "model.norm");
    cr_assert_str_eq(va, "\"post\"");
    cr_assert_str_eq(vb, "\"pre\"");
    b.norm = a.norm;
    cr_assert_eq(config_first_diff(&a, &b, 1, va, vb, sizeof va, &key), 0);
    cr_assert_eq(config_first_diff(&a, &b, 0, va, vb, sizeof va, &key), 1);
    cr_assert_str_eq(key, "model.dropout");
    config_free(&a);
    config_free(&b);
}
