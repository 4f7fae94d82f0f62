// test_export.c — safetensors export and import: the round trip is exact for
// every tokenizer kind and with relative positions; the file is what the
// format says (header length, JSON, tensors tiling the data, PyTorch (out, in)
// layouts); and a file that is not right (truncated, overlapping or missing
// tensors, wrong shapes or dtypes, extra tensors, non-finite values, a config
// asking for more than the file holds) is refused with NMT_ERR_INPUT naming
// the file and the tensor, writing nothing.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "train/state.h"
#include "io/ckptfile.h"
#include "io/export.h"
#include "train/import.h"
#include "io/safetensors.h"
#include "tmpdir.h"
#include "tiny_ckpt.h"

TestSuite(export, .init = make_tmpdir, .fini = remove_tmpdir);

// The bytes of a checkpoint section.
static char *section(const char *path, const char *name, size_t *len) {
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, path), NMT_OK, "%s", err_msg());
    uint64_t size;
    const void *p = ckpt_section(f, name, &size);
    cr_assert_not_null(p, "%s: no section %s", path, name);
    *len = (size_t)size;
    char *out = xmalloc(*len + 1);
    memcpy(out, p, *len);
    ckpt_close(f);
    return out;
}

static void same_section(const char *a, const char *b, const char *name) {
    size_t la, lb;
    char *x = section(a, name, &la), *y = section(b, name, &lb);
    cr_assert(la == lb && memcmp(x, y, la) == 0, "section %s differs after the round trip", name);
    free(x);
    free(y);
}

static void round_trip(int kind, const char *extra) {
    const char *ck = tmp_path("a.ckpt"), *st = tmp_path("a.safetensors"), *back = tmp_path("b.ckpt");
    write_tiny_with(ck, kind, extra, NULL, NULL);
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    cr_assert_eq(import_checkpoint(st, NULL, back), NMT_OK, "%s", err_msg());
    same_section(ck, back, "params");
    same_section(ck, back, "tensors");
    same_section(ck, back, "config");
    same_section(ck, back, "tokenizer");
}

Test(export, round_trip_word) { round_trip(K_WORD, ""); }
Test(export, round_trip_shared_vocabulary) { round_trip(K_SHARED, ""); }
Test(export, round_trip_bpe_relative_positions_pre_norm) {
    round_trip(K_BPE, "\"positions\": \"relative\", \"max_relative_position\": 3, \"norm\": \"pre\", ");
}

// The file as the format and PyTorch see it: q_proj is the first third of
// wqkv's columns, transposed to (out, in); a bias is one-dimensional.
Test(export, layout_is_pytorchs) {
    const char *ck = tmp_path("a.ckpt"), *st = tmp_path("a.safetensors");
    real *params;
    size_t n;
    write_tiny(ck, K_WORD, &params, &n);
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    StFile f;
    cr_assert_eq(st_read(&f, st), NMT_OK, "%s", err_msg());
    cr_assert_eq((f.size - 8) % 8, 0);  // the header padded to 8 bytes: the data stays aligned
    Config c;
    Tokenizer t;
    Model m;
    TrainState ts;
    cr_assert_eq(train_state_load(ck, &c, &t, &m, NULL, &ts), NMT_OK);
    const Tensor *wqkv = &m.tensors[model_find_tensor(&m, "enc.0.self_attn.wqkv")];
    const StTensor *q = st_find(&f, "encoder.layers.0.self_attn.q_proj.weight");
    const StTensor *k = st_find(&f, "encoder.layers.0.self_attn.k_proj.weight");
    const StTensor *b = st_find(&f, "decoder.layers.0.encoder_attn.v_proj.bias");
    cr_assert(q && k && b);
    cr_assert(q->ndim == 2 && q->shape[0] == 16 && q->shape[1] == 16 && b->ndim == 1 && b->shape[0] == 16);
    for (size_t o = 0; o < 16; o++)
        for (size_t i = 0; i < 16; i++) {
            float x, y;
            memcpy(&x, q->data + o * 16 + i, sizeof x);
            memcpy(&y, k->data + o * 16 + i, sizeof y);
            cr_assert_eq(x, params[wqkv->offset + i * 48 + o]);
            cr_assert_eq(y, params[wqkv->offset + i * 48 + 16 + o]);
        }
    cr_assert_not_null(st_find(&f, "encoder.embed_tokens.weight"));
    cr_assert_not_null(st_find(&f, "decoder.layers.0.final_layer_norm.weight"));
    cr_assert_null(st_find(&f, "decoder.output_projection.weight"));  // tied
    cr_assert_str_eq(st_meta(&f, "format"), "pt");
    cr_assert_str_eq(st_meta(&f, "nmt.step"), "2");
    cr_assert_not_null(strstr(st_meta(&f, "nmt.config"), "\"d_model\""));
    st_free(&f);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    free(params);
}

// ---------------------------------------------------------------- refusals

// The exported tiny model as tensors and metadata, to edit and write back.
typedef struct {
    StFile f;
    StTensor *t;
    float **owned;
    StMeta meta[8];
    size_t nmeta;
} Edit;

// The file exported from checkpoint ck, opened for editing.
static void edit_open_file(Edit *e, const char *ck) {
    const char *st = tmp_path("a.safetensors");
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    memset(e, 0, sizeof *e);
    cr_assert_eq(st_read(&e->f, st), NMT_OK, "%s", err_msg());
    for (ptrdiff_t i = 0; i < arrlen(e->f.tensors); i++) {
        StTensor t = e->f.tensors[i];
        size_t n = t.ndim == 1 ? t.shape[0] : t.shape[0] * t.shape[1];
        float *copy = xmalloc((n ? n : 1) * sizeof *copy);
        memcpy(copy, t.data, n * sizeof *copy);
        t.data = copy;
        arrput(e->owned, copy);
        arrput(e->t, t);
    }
    const char *keys[] = {"format", "nmt.config", "nmt.tokenizer", "nmt.step", "nmt.src_lang", "nmt.tgt_lang",
                          "nmt.langid"};
    for (size_t i = 0; i < 7; i++)
        if (st_meta(&e->f, keys[i])) e->meta[e->nmeta++] = (StMeta){keys[i], st_meta(&e->f, keys[i])};
}

static void edit_open_kind(Edit *e, int kind) {
    const char *ck = tmp_path("a.ckpt");
    write_tiny(ck, kind, NULL, NULL);
    edit_open_file(e, ck);
}

static void edit_open(Edit *e) { edit_open_kind(e, K_WORD); }

static void edit_free(Edit *e) {
    for (ptrdiff_t i = 0; i < arrlen(e->owned); i++) free(e->owned[i]);
    arrfree(e->owned);
    arrfree(e->t);
    st_free(&e->f);
}

static StTensor *edit_find(Edit *e, const char *name) {
    for (ptrdiff_t i = 0; i < arrlen(e->t); i++)
        if (strcmp(e->t[i].name, name) == 0) return &e->t[i];
    cr_assert_fail("no tensor %s", name);
    return NULL;
}

// Writes the edited file and checks that importing it fails naming the file and `what`.
static void edit_refused(Edit *e, const char *what) {
    const char *bad = tmp_path("bad.safetensors"), *out = tmp_path("never.ckpt");
    cr_assert_eq(st_write(bad, e->t, (size_t)arrlen(e->t), e->meta, e->nmeta), NMT_OK);
    err_clear();
    cr_assert_eq(import_checkpoint(bad, NULL, out), NMT_ERR_INPUT, "accepted: %s", what);
    cr_assert(strstr(err_msg(), bad) && strstr(err_msg(), what), "message '%s' lacks '%s'", err_msg(), what);
    cr_assert_neq(access(out, F_OK), 0, "a refused import wrote its output");
    edit_free(e);
}

Test(export, missing_tensor) {
    Edit e;
    edit_open(&e);
    StTensor *t = edit_find(&e, "decoder.layers.0.fc2.bias");
    *t = e.t[arrlen(e.t) - 1];
    arrpop(e.t);
    edit_refused(&e, "'decoder.layers.0.fc2.bias' is missing");
}

Test(export, wrong_shape) {
    Edit e;
    edit_open(&e);
    StTensor *t = edit_find(&e, "encoder.layers.0.fc1.weight");  // (32, 16) -> (16, 32): same size, transposed
    t->shape[0] = 16, t->shape[1] = 32;
    edit_refused(&e, "'encoder.layers.0.fc1.weight' has shape [16, 32], the config needs [32, 16]");
}

Test(export, extra_tensor) {
    Edit e;
    edit_open(&e);
    StTensor x = *edit_find(&e, "encoder.layers.0.fc1.bias");
    strcpy(x.name, "encoder.layers.0.adapter.bias");
    arrput(e.t, x);
    edit_refused(&e, "tensors, the model has");
}

Test(export, non_finite_value) {
    Edit e;
    edit_open(&e);
    StTensor *t = edit_find(&e, "decoder.layers.0.self_attn.out_proj.weight");
    ((float *)t->data)[5] = NAN;
    edit_refused(&e, "non-finite");
}

// Finite weights too large for any finite forward pass are refused on import
// (model_weight_bound), naming the file and the tensor.
Test(export, absurd_value) {
    Edit e;
    edit_open(&e);
    StTensor *t = edit_find(&e, "decoder.layers.0.fc1.weight");
    for (size_t i = 0; i < t->shape[0] * t->shape[1]; i++) ((float *)t->data)[i] = 3e38f;
    edit_refused(&e, "tensor 'dec.0.ffn.w1' [0, 0] is 3e+38");
}

Test(export, config_asking_for_more_than_the_file_holds) {
    Edit e;
    edit_open(&e);
    size_t len = strlen(e.meta[1].value);
    char *cfg = xmalloc(len + 16), *at;
    memcpy(cfg, e.meta[1].value, len + 1);
    at = strstr(cfg, "\"d_model\":");
    cr_assert_not_null(at);
    char *num = at + strlen("\"d_model\":");
    while (*num == ' ' || *num == '\t') num++;
    char rest[4096];
    snprintf(rest, sizeof rest, "%s", strchr(num, ','));
    sprintf(num, "65536%s", rest);
    e.meta[1].value = cfg;
    edit_refused(&e, "the config's model needs");
    free(cfg);
}

Test(export, no_metadata) {
    Edit e;
    edit_open(&e);
    e.nmeta = 1;
    edit_refused(&e, "no nmt.config and nmt.tokenizer metadata");
}

// Raw bytes: the format's own checks.
static void raw_refused(const char *bytes, size_t n, const char *what) {
    const char *bad = tmp_path("raw.safetensors");
    FILE *f = fopen(bad, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    StFile s;
    err_clear();
    cr_assert_eq(st_read(&s, bad), NMT_ERR_INPUT, "accepted: %s", what);
    cr_assert(strstr(err_msg(), what), "message '%s' lacks '%s'", err_msg(), what);
}

static size_t with_header(char *buf, const char *json, size_t data_bytes) {
    size_t hl = strlen(json);
    uint64_t n = hl;
    memcpy(buf, &n, 8);  // little-endian machine
    memcpy(buf + 8, json, hl);
    memset(buf + 8 + hl, 0, data_bytes);
    return 8 + hl + data_bytes;
}

Test(export, malformed_files) {
    char buf[4096];
    raw_refused("abc", 3, "not a safetensors file");
    uint64_t huge = UINT64_MAX;
    memcpy(buf, &huge, 8);
    raw_refused(buf, 16, "not a safetensors file");
    size_t n = with_header(buf, "[1, 2]", 0);
    raw_refused(buf, n, "not a JSON object");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4);
    raw_refused(buf, n, "only F32");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 12]}}", 8);
    raw_refused(buf, n, "outside the 8 data bytes");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8);
    raw_refused(buf, n, "8 bytes for 3 float32 values");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                         " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8);
    raw_refused(buf, n, "does not start where the previous one ends");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8);
    raw_refused(buf, n, "4 data bytes after the last tensor");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                         " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8);
    raw_refused(buf, n, "named twice");
    n = with_header(buf, "{\"__metadata__\": {\"k\": 3}}", 0);
    raw_refused(buf, n, "is not a string");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4);
    raw_refused(buf, n, "bad shape");
    n = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1], \"data_offsets\": [0, 4]}}", 4);
    raw_refused(buf, n, "3 dimensions");
}

// A shape whose product wraps size_t ([2^32, 2^32] times 4 bytes is 2^66,
// which wraps to 0) is refused naming the tensor, not read as an empty tensor.
Test(export, shape_product_overflow) {
    char buf[512];
    size_t n = with_header(buf, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
                                "\"data_offsets\": [0, 0]}}", 0);
    raw_refused(buf, n, "tensor 'w': shape [4294967296, 4294967296] has more values than can be addressed");
    // 2^31 x 2^31 floats: 2^64 bytes, also 0 once wrapped.
    n = with_header(buf, "{\"w\": {\"dtype\": \"F32\", \"shape\": [2147483648, 2147483648], "
                         "\"data_offsets\": [0, 0]}}", 0);
    raw_refused(buf, n, "tensor 'w': shape [2147483648, 2147483648] has more values");
    // The largest that fit are sized honestly: 2^40 x 1 floats need 2^42 bytes.
    n = with_header(buf, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1], "
                         "\"data_offsets\": [0, 4]}}", 4);
    raw_refused(buf, n, "4 bytes for 1099511627776 float32 values");
}

// The header is one JSON object padded with spaces (other whitespace is JSON's
// too); anything else after it is refused, with its offset in the file.
Test(export, header_with_bytes_after_its_json) {
    char buf[256];
    const char *tensor = "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
    char json[160];
    snprintf(json, sizeof json, "%s GARBAGE", tensor);
    size_t n = with_header(buf, json, 4);
    char want[64];
    snprintf(want, sizeof want, "bytes after the header's JSON (at byte %zu;", 8 + strlen(tensor) + 1);
    raw_refused(buf, n, want);
    snprintf(json, sizeof json, "%s{}", tensor);
    raw_refused(buf, with_header(buf, json, 4), "bytes after the header's JSON");
    // NUL padding is not the format's (and not whitespace).
    n = with_header(buf, tensor, 4);
    uint64_t hl = strlen(tensor) + 4;
    memmove(buf + 8 + hl, buf + 8 + strlen(tensor), 4);
    memset(buf + 8 + strlen(tensor), 0, 4);
    memcpy(buf, &hl, 8);
    raw_refused(buf, n + 4, "bytes after the header's JSON");
    // Spaces, tabs and newlines read.
    snprintf(json, sizeof json, "%s \t\r\n   ", tensor);
    n = with_header(buf, json, 4);
    const char *path = tmp_path("padded.safetensors");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    StFile s;
    cr_assert_eq(st_read(&s, path), NMT_OK, "%s", err_msg());
    cr_assert_not_null(st_find(&s, "a"));
    st_free(&s);
}

// A file with metadata and no tensors is a valid safetensors file, read as
// empty (import then names what is missing); found by fuzz_safetensors, whose
// sanitizers caught the sort of an empty (NULL) table.
Test(export, file_without_tensors) {
    char buf[256];
    size_t n = with_header(buf, "{\"__metadata__\": {\"format\": \"pt\"}}", 0);
    const char *path = tmp_path("empty.safetensors");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    StFile s;
    err_clear();
    cr_assert_eq(st_read(&s, path), NMT_OK, "%s", err_msg());
    cr_assert_null(st_find(&s, "encoder.embed_tokens.weight"));
    cr_assert_str_eq(st_meta(&s, "format"), "pt");
    st_free(&s);
}

// ---------------------------------------------------------------- the output file is never destroyed

static const char USER_BYTES[] = "the user's own checkpoint, not to be lost\n";

static size_t dir_entries(void) {
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    size_t n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

// Importing the edited file into an existing user.ckpt fails naming `what`
// (and the file), and user.ckpt is byte for byte what it was, with nothing
// left beside it. (Before: a file import's checks passed but the load of what
// was written failed removed user.ckpt.)
static void edit_keeps_output(Edit *e, const char *what) {
    const char *bad = tmp_path("bad.safetensors");
    cr_assert_eq(st_write(bad, e->t, (size_t)arrlen(e->t), e->meta, e->nmeta), NMT_OK);
    const char *out = write_tmp("user.ckpt", USER_BYTES);
    size_t before = dir_entries(), n;
    err_clear();
    cr_assert_eq(import_checkpoint(bad, NULL, out), NMT_ERR_INPUT, "accepted: %s", what);
    cr_assert(strstr(err_msg(), what), "message '%s' lacks '%s'", err_msg(), what);
    char *kept = read_file_text(out, &n);
    cr_assert(kept && n == strlen(USER_BYTES) && memcmp(kept, USER_BYTES, n) == 0, "user.ckpt was %s",
              kept ? "changed" : "removed");
    free(kept);
    cr_assert_eq(dir_entries(), before, "a file was left beside user.ckpt");
    edit_free(e);
}

// A shared-vocabulary config with a tokenizer of two (equal-sized)
// vocabularies: the tensors are the shared model's, so only the checkpoint's
// load found it. Import now refuses it itself, naming model.shared_vocab.
Test(export, shared_vocab_with_two_vocabularies_keeps_the_output) {
    Edit e;
    edit_open_kind(&e, K_SHARED);
    char v[256], tok[1024];
    put_vocab(v, sizeof v, 6);
    snprintf(tok, sizeof tok, "nmt-tokenizer word %zu %zu\n%s%s", strlen(v), strlen(v), v, v);
    e.meta[2].value = tok;
    edit_keeps_output(&e, "model.shared_vocab is true but the tokenizer section holds two vocabularies");
}

// An nmt.step past what a checkpoint holds exactly (10^15 - 1; 2^53 + 1
// passed import's checks, the state's JSON rounds it) or past strtol's range
// is refused by import, naming nmt.step; so is one that is not a count.
Test(export, step_out_of_range_keeps_the_output) {
    const char *steps[] = {"99999999999999999999", "9007199254740993", "1000000000000000", "-1", "12abc", ""};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        Edit e;
        edit_open(&e);
        e.meta[3].value = steps[i];
        edit_keeps_output(&e, "nmt.step");
    }
}

Test(export, largest_step_is_imported_exactly) {
    Edit e;
    edit_open(&e);
    e.meta[3].value = "999999999999999";
    const char *st = tmp_path("big.safetensors"), *out = tmp_path("big.ckpt");
    cr_assert_eq(st_write(st, e.t, (size_t)arrlen(e.t), e.meta, e.nmeta), NMT_OK);
    cr_assert_eq(import_checkpoint(st, NULL, out), NMT_OK, "%s", err_msg());
    Loaded l;
    cr_assert_eq(checkpoint_load_decoding(&l, out, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(l.step, 999999999999999L, "step %ld", l.step);
    loaded_free(&l);
    edit_free(&e);
}

// Whatever import's own checks miss, what it wrote is loaded before it
// replaces anything: a checkpoint that does not load back leaves the existing
// output as it was and no temporary (a state whose step is not a count here).
Test(export, write_that_does_not_load_back_keeps_the_output) {
    const char *ck = tmp_path("a.ckpt"), *st = tmp_path("a.safetensors");
    write_tiny(ck, K_WORD, NULL, NULL);
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    Loaded l;
    cr_assert_eq(import_safetensors(st, NULL, &l), NMT_OK, "%s", err_msg());
    const char *out = write_tmp("user.ckpt", USER_BYTES);
    size_t before = dir_entries(), n;
    err_clear();
    cr_assert_eq(import_write(out, &l, "{\"step\": 1e300}"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), out) && strstr(err_msg(), "left as it was") && strstr(err_msg(), "not a count"), "%s",
              err_msg());
    char *kept = read_file_text(out, &n);
    cr_assert(kept && n == strlen(USER_BYTES) && memcmp(kept, USER_BYTES, n) == 0, "user.ckpt was %s",
              kept ? "changed" : "removed");
    free(kept);
    cr_assert_eq(dir_entries(), before, "a file was left beside user.ckpt");
    loaded_free(&l);
}

// ---------------------------------------------------------------- languages

// The metadata value of key (which must be there), to change in place.
static StMeta *edit_meta(Edit *e, const char *key) {
    for (size_t i = 0; i < e->nmeta; i++)
        if (strcmp(e->meta[i].key, key) == 0) return &e->meta[i];
    cr_assert_fail("no metadata %s", key);
    return NULL;
}

static void edit_drop_meta(Edit *e, const char *key) {
    StMeta *m = edit_meta(e, key);
    *m = e->meta[--e->nmeta];
}

static void edit_open_languages(Edit *e) {
    const char *ck = tmp_path("lang.ckpt");
    write_tiny_languages(ck);
    edit_open_file(e, ck);
}

Test(export, languages_and_profiles_round_trip) {
    const char *ck = tmp_path("lang.ckpt"), *st = tmp_path("a.safetensors"), *back = tmp_path("b.ckpt");
    write_tiny_languages(ck);
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    StFile f;
    cr_assert_eq(st_read(&f, st), NMT_OK, "%s", err_msg());
    cr_assert_str_eq(st_meta(&f, "nmt.src_lang"), "de");
    cr_assert_str_eq(st_meta(&f, "nmt.tgt_lang"), "en");
    size_t len;
    char *lid = section(ck, "langid", &len);
    cr_assert_not_null(st_meta(&f, "nmt.langid"));
    cr_assert(strlen(st_meta(&f, "nmt.langid")) == len && memcmp(st_meta(&f, "nmt.langid"), lid, len) == 0);
    free(lid);
    st_free(&f);
    cr_assert_eq(import_checkpoint(st, NULL, back), NMT_OK, "%s", err_msg());
    same_section(ck, back, "config");
    same_section(ck, back, "tokenizer");
    same_section(ck, back, "langid");
    // A checkpoint without them exports without them.
    write_tiny(ck, K_WORD, NULL, NULL);
    cr_assert_eq(export_safetensors(ck, st), NMT_OK, "%s", err_msg());
    cr_assert_eq(st_read(&f, st), NMT_OK, "%s", err_msg());
    cr_assert(!st_meta(&f, "nmt.src_lang") && !st_meta(&f, "nmt.tgt_lang") && !st_meta(&f, "nmt.langid"));
    st_free(&f);
}

// nmt.src_lang / nmt.tgt_lang record the languages in a config that has none.
Test(export, language_metadata_fills_a_config_without_languages) {
    Edit e;
    edit_open(&e);
    e.meta[e.nmeta++] = (StMeta){"nmt.src_lang", "pt-BR"};
    e.meta[e.nmeta++] = (StMeta){"nmt.tgt_lang", "fr"};
    const char *in = tmp_path("m.safetensors"), *out = tmp_path("m.ckpt");
    cr_assert_eq(st_write(in, e.t, (size_t)arrlen(e.t), e.meta, e.nmeta), NMT_OK);
    edit_free(&e);
    cr_assert_eq(import_checkpoint(in, NULL, out), NMT_OK, "%s", err_msg());
    Loaded l;
    cr_assert_eq(checkpoint_load_decoding(&l, out, 0), NMT_OK, "%s", err_msg());
    cr_assert_str_eq(l.c.src_lang, "pt-BR");
    cr_assert_str_eq(l.c.tgt_lang, "fr");
    cr_assert_null(l.t.src_profile);
    loaded_free(&l);
}

Test(export, bad_language_metadata) {
    Edit e;
    edit_open_languages(&e);
    edit_drop_meta(&e, "nmt.tgt_lang");
    edit_refused(&e, "nmt.src_lang without nmt.tgt_lang");
    edit_open_languages(&e);
    edit_meta(&e, "nmt.src_lang")->value = "German";
    edit_refused(&e, "nmt.src_lang \"German\" and nmt.tgt_lang \"en\" are not two language codes");
    edit_open_languages(&e);
    edit_meta(&e, "nmt.tgt_lang")->value = "de";
    edit_refused(&e, "are not two language codes");
    edit_open_languages(&e);
    edit_meta(&e, "nmt.langid")->value = "nmt-langid-pair 1 5\nabc";  // 3 bytes short
    edit_refused(&e, "nmt.langid: malformed language profiles");
    edit_open_languages(&e);
    char *bad = xstrdup(edit_meta(&e, "nmt.langid")->value);
    *strstr(bad, "\ntotal ") = '\t';  // the same length: the source profile's header line
    edit_meta(&e, "nmt.langid")->value = bad;
    edit_refused(&e, "nmt.langid, source profile: malformed language profile at line 1");
    free(bad);
}
