// test_untrusted.c — a checkpoint whose checksums are all valid is still
// untrusted input. Each test builds a tiny valid checkpoint in memory, changes
// one section, writes the file again with ckpt_write (so every CRC is valid)
// and checks that loading (for translate and for a resume) and `nmt info`
// refuse it with NMT_ERR_INPUT and a message naming the file and the problem,
// without reading past a buffer (run under ASan) and without allocating what
// the file asks for. Covered: tokenizer header lengths that wrap (-1, 2^64-1)
// for word and BPE, a header that is the last bytes of the file, shared_vocab
// with vocabularies of two sizes, a config that asks for terabytes, tensor
// table / params / optimizer-state sizes that disagree, non-finite weights and
// optimizer state, state counts that are not counts; int8 checkpoints' own
// sections (table, sizes, values) and their round trip; the langid section
// (its header, lengths, profiles) and the config's language codes. Valid checkpoints
// (word, shared word, BPE) still load with the same bits.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "model/shape.h"
#include "optim/optim.h"
#include "model/quant.h"
#include "text/langid.h"
#include "text/tokenizer.h"
#include "common/util.h"
#include "tmpdir.h"
#include "tiny_ckpt.h"

TestSuite(untrusted, .init = make_tmpdir, .fini = remove_tmpdir);

// ---------------------------------------------------------------- sections, edited and written back

typedef struct {
    char name[32];
    char *data;
    uint64_t size;
} Sec;

typedef struct {
    Sec s[16];
    int n;
} Secs;

static void read_secs(const char *path, Secs *out) {
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, path), NMT_OK, "%s", err_msg());
    memset(out, 0, sizeof *out);
    out->n = ckpt_section_count(f);
    cr_assert(out->n <= 16);
    for (int i = 0; i < out->n; i++) {
        Sec *s = &out->s[i];
        snprintf(s->name, sizeof s->name, "%s", ckpt_section_name(f, i));
        const void *p = ckpt_section(f, s->name, &s->size);
        s->data = xmalloc((size_t)s->size + 1);
        memcpy(s->data, p, (size_t)s->size);
        s->data[s->size] = 0;
    }
    ckpt_close(f);
}

static Sec *sec_get(Secs *x, const char *name) {
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->s[i].name, name) == 0) return &x->s[i];
    cr_assert_fail("no section %s", name);
    return NULL;
}

// Replaces a section's bytes (a copy of data).
static void sec_set(Secs *x, const char *name, const void *data, size_t size) {
    Sec *s = sec_get(x, name);
    free(s->data);
    s->data = xmalloc(size + 1);
    memcpy(s->data, data, size);
    s->data[size] = 0;
    s->size = size;
}

static void sec_drop(Secs *x, const char *name) {
    Sec *s = sec_get(x, name);
    free(s->data);
    int i = (int)(s - x->s);
    memmove(&x->s[i], &x->s[i + 1], (size_t)(x->n - i - 1) * sizeof *s);
    x->n--;
}

// Moves a section to the end of the file.
static void sec_last(Secs *x, const char *name) {
    Sec tmp = *sec_get(x, name);
    int i = (int)(sec_get(x, name) - x->s);
    memmove(&x->s[i], &x->s[i + 1], (size_t)(x->n - i - 1) * sizeof tmp);
    x->s[x->n - 1] = tmp;
}

// Appends text to a section.
static void sec_append(Secs *x, const char *name, const char *text) {
    Sec *s = sec_get(x, name);
    size_t n = strlen(text);
    char *more = xmalloc(s->size + n + 1);
    memcpy(more, s->data, s->size);
    memcpy(more + s->size, text, n);
    sec_set(x, name, more, s->size + n);
    free(more);
}

static void write_secs(const char *path, Secs *x) {
    CkptSection cs[16];
    for (int i = 0; i < x->n; i++) cs[i] = (CkptSection){x->s[i].name, x->s[i].data, x->s[i].size};
    cr_assert_eq(ckpt_write(path, cs, x->n), NMT_OK, "%s", err_msg());
    for (int i = 0; i < x->n; i++) free(x->s[i].data);
    x->n = 0;
}

// Replaces the first occurrence of `from` in a text section by `to`.
static void sec_replace(Secs *x, const char *name, const char *from, const char *to) {
    Sec *s = sec_get(x, name);
    char *at = strstr(s->data, from);
    cr_assert_not_null(at, "'%s' not in section %s", from, name);
    size_t n = s->size - strlen(from) + strlen(to), k = (size_t)(at - s->data);
    char *d = xmalloc(n + 1);
    memcpy(d, s->data, k);
    memcpy(d + k, to, strlen(to));
    memcpy(d + k + strlen(to), at + strlen(from), s->size - k - strlen(from));
    d[n] = 0;
    free(s->data);
    s->data = d;
    s->size = n;
}

// ---------------------------------------------------------------- the verdicts

// What `nmt info` runs (cli/info.c): checkpoint_describe, then the trainer's
// state parsed; its status.
static int info_verdict(const char *path) {
    CkptInfo in;
    int rc = checkpoint_describe(path, &in);
    TrainState st;
    if (!rc) rc = train_state_from_json(&st, in.st.json, path);
    ckpt_info_free(&in);
    return rc;
}

static void expect_message(const char *path, const char *what, const char *what2, const char *who) {
    cr_assert(strstr(err_msg(), path), "%s: message does not name the file: %s", who, err_msg());
    cr_assert(strstr(err_msg(), what), "%s: message does not say '%s': %s", who, what, err_msg());
    if (what2) cr_assert(strstr(err_msg(), what2), "%s: message does not say '%s': %s", who, what2, err_msg());
}

// A resume, averaging and quantizing (train_state_load) and `nmt info` all
// refuse the file with NMT_ERR_INPUT, naming it and saying `what` (and
// `what2` if given); with `state_only`, the trouble is in the trainer's
// state, which loading for translate (checkpoint_load) does not read beyond
// its step; otherwise that refuses it too.
static void expect_refused_by(const char *path, const char *what, const char *what2, int state_only) {
    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    CkptState cs;
    for (int with_opt = 0; with_opt < 2; with_opt++) {
        err_clear();
        int rc = train_state_load(path, &c, &t, &m, with_opt ? &o : NULL, &st);
        if (rc == NMT_OK) {
            model_free(&m), tokenizer_free(&t), config_free(&c);
            if (with_opt) optim_free(&o);
        }
        cr_assert_eq(rc, NMT_ERR_INPUT, "%s was loaded (%s)", path, with_opt ? "resume" : "average");
        expect_message(path, what, what2, with_opt ? "resume" : "average");
        if (state_only) continue;
        err_clear();
        rc = checkpoint_load(path, &c, &t, &m, with_opt ? &o : NULL, &cs);
        if (rc == NMT_OK) {
            model_free(&m), tokenizer_free(&t), config_free(&c), ckpt_state_free(&cs);
            if (with_opt) optim_free(&o);
        }
        cr_assert_eq(rc, NMT_ERR_INPUT, "%s was loaded (checkpoint_load%s)", path, with_opt ? ", optimizer" : "");
        expect_message(path, what, what2, "checkpoint_load");
    }
    err_clear();
    cr_assert_eq(info_verdict(path), NMT_ERR_INPUT, "info calls %s valid", path);
    cr_assert(strstr(err_msg(), what), "info's message does not say '%s': %s", what, err_msg());
}

static void expect_refused(const char *path, const char *what, const char *what2) {
    expect_refused_by(path, what, what2, 0);
}

// A fresh tiny checkpoint's sections, of the kind.
static const char *fresh(Secs *x, int kind) {
    const char *path = tmp_path("bad.ckpt");
    write_tiny(path, kind, NULL, NULL);
    read_secs(path, x);
    return path;
}

// A tokenizer section of header `head` (printf format taking the part
// lengths' values) over the body of the valid one.
static void set_tokenizer_header(Secs *x, const char *head) {
    Sec *s = sec_get(x, "tokenizer");
    const char *body = strchr(s->data, '\n') + 1;
    size_t blen = s->size - (size_t)(body - s->data);
    char *d = xmalloc(strlen(head) + blen + 1);
    memcpy(d, head, strlen(head));
    memcpy(d + strlen(head), body, blen);
    sec_set(x, "tokenizer", d, strlen(head) + blen);
    free(d);
}

// A header "nmt-tokenizer KIND L0 L1\n" with L0 spelled l0_text (worth l0)
// and L1 such that L0 + L1 wraps around 2^64 to the body's real size: the old
// check (hl + l0 + l1 == len) accepted it. The body loses its last newline
// and the section goes last in the file, so a reader trusting L0 runs off the
// end of the file buffer looking for that newline.
static void wrapping_header(Secs *x, const char *kind, const char *l0_text, uint64_t l0) {
    Sec *s = sec_get(x, "tokenizer");
    cr_assert_eq(s->data[s->size - 1], '\n');
    s->size--;
    const char *body = strchr(s->data, '\n') + 1;
    uint64_t blen = s->size - (uint64_t)(body - s->data);
    uint64_t l1 = blen - l0;  // mod 2^64
    char head[128];
    snprintf(head, sizeof head, "nmt-tokenizer %s %s %llu\n", kind, l0_text, (unsigned long long)l1);
    cr_assert_eq(l0 + l1, blen);
    set_tokenizer_header(x, head);
    sec_last(x, "tokenizer");
}

// ---------------------------------------------------------------- valid files

Test(untrusted, valid_checkpoints_still_load_bit_for_bit) {
    for (int kind = K_WORD; kind <= K_BPE; kind++) {
        const char *path = tmp_path("ok.ckpt");
        real *want;
        size_t n;
        write_tiny(path, kind, &want, &n);
        Config c;
        Tokenizer t;
        Model m;
        Optimizer o;
        TrainState st;
        cr_assert_eq(train_state_load(path, &c, &t, &m, &o, &st), NMT_OK, "kind %d: %s", kind, err_msg());
        cr_assert_eq(m.nparams, n);
        cr_assert(memcmp(m.params, want, n * sizeof(real)) == 0);
        cr_assert_eq(o.step, 2);
        cr_assert_eq(o.state[1][3], 3);
        optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
        cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
        free(want);
    }
}

// model_param_count, which bounds what loading allocates, follows
// model_create's layout exactly.
Test(untrusted, param_count_matches_model_create) {
    for (int pre = 0; pre < 2; pre++)
        for (int tie = 0; tie < 2; tie++)
            for (int shared = 0; shared <= tie; shared++) {
                ModelShape s;
                memset(&s, 0, sizeof s);
                s.d_model = 24, s.heads = 2, s.d_ff = 40, s.enc_layers = 2, s.dec_layers = 3;
                s.pre_norm = pre, s.tie_output = tie, s.shared_vocab = shared;
                s.src_vocab = 37, s.tgt_vocab = shared ? 37 : 29, s.max_len = 8;
                Model m;
                model_create(&m, &s);
                size_t nt;
                cr_assert_eq(model_param_count(&s, &nt), m.nparams, "pre %d tie %d shared %d", pre, tie, shared);
                cr_assert_eq(nt, (size_t)arrlen(m.tensors));
                model_free(&m);
            }
    ModelShape big;
    memset(&big, 0, sizeof big);
    big.d_model = 65536, big.d_ff = 1 << 20, big.enc_layers = big.dec_layers = 64;
    big.src_vocab = big.tgt_vocab = INT32_MAX;
    size_t n = model_param_count(&big, NULL);
    cr_assert(n == 0 || n > ((size_t)1 << 40));  // counted exactly (64-bit) or refused, never wrapped
    big.d_model = 0;
    cr_assert_eq(model_param_count(&big, NULL), 0);
}

// ---------------------------------------------------------------- the tokenizer section

// `%zu` took "-1": the lengths wrapped to the section size and the
// vocabulary reader ran past the file buffer.
Test(untrusted, tokenizer_length_minus_one) {
    Secs x;
    const char *path = fresh(&x, K_SHARED);
    wrapping_header(&x, "word-shared", "-1", UINT64_MAX);
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
}

Test(untrusted, tokenizer_length_2_64_minus_1_word_and_bpe) {
    Secs x;
    const char *path = fresh(&x, K_SHARED);
    wrapping_header(&x, "word-shared", "18446744073709551615", UINT64_MAX);
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
    // The BPE line reader, with a length of 2^64 - 16.
    path = fresh(&x, K_BPE);
    wrapping_header(&x, "bpe", "18446744073709551600", UINT64_MAX - 15);
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
}

// Lengths too large by a little, past the end of the section (and of the
// file: the tokenizer section is moved to the end).
Test(untrusted, tokenizer_lengths_past_the_section_at_the_end_of_the_file) {
    Secs x;
    const char *path = fresh(&x, K_SHARED);
    Sec *s = sec_get(&x, "tokenizer");
    size_t body = s->size - (size_t)(strchr(s->data, '\n') + 1 - s->data);
    char head[128];
    snprintf(head, sizeof head, "nmt-tokenizer word-shared %zu 0\n", body + 100);
    set_tokenizer_header(&x, head);
    sec_last(&x, "tokenizer");
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
    // A header alone, with nothing after it: no NUL follows the section.
    path = fresh(&x, K_SHARED);
    sec_set(&x, "tokenizer", "nmt-tokenizer word-shared 0 0\n\n\n", 32);
    sec_last(&x, "tokenizer");
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
    path = fresh(&x, K_SHARED);
    sec_set(&x, "tokenizer", "nmt-tokenizer word-shared 1", 27);
    sec_last(&x, "tokenizer");
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
}

// A second part for a kind that has one, and a kind that does not exist.
Test(untrusted, tokenizer_kind_and_parts) {
    Secs x;
    const char *path = fresh(&x, K_SHARED);
    Sec *s = sec_get(&x, "tokenizer");
    size_t body = s->size - (size_t)(strchr(s->data, '\n') + 1 - s->data);
    char head[128];
    snprintf(head, sizeof head, "nmt-tokenizer word-shared %zu 9\n", body - 9);
    set_tokenizer_header(&x, head);
    write_secs(path, &x);
    expect_refused(path, "tokenizer section is malformed", NULL);
    path = fresh(&x, K_SHARED);
    sec_replace(&x, "tokenizer", "word-shared", "wordy-share");
    write_secs(path, &x);
    expect_refused(path, "unknown tokenizer kind 'wordy-share'", NULL);
}

// ---------------------------------------------------------------- config <-> tokenizer

// shared_vocab with two vocabularies of different sizes: the model has one
// embedding of the source size and target ids beyond it (translate read past
// the parameters, a resume wrote past the gradients). Written with
// checkpoint_save, so the table and parameters agree with that model.
Test(untrusted, shared_vocab_with_vocabularies_of_two_sizes) {
    const char *path = tmp_path("shared.ckpt");
    Config c;
    tiny_config(&c, K_SHARED);
    size_t len;
    char *text = tokenizer_text(K_WORD, &len);  // source 9 ids, target 7
    Tokenizer t;
    cr_assert_eq(tokenizer_deserialize(&t, text, len, "tok"), NMT_OK, "%s", err_msg());
    free(text);
    ModelShape s = model_shape_from(&c, &t);
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 3);
    Optimizer o;
    optim_init(&o, &c, m.nparams);
    TrainState st;
    memset(&st, 0, sizeof st);
    st.step = 1, st.best_valid_loss = INFINITY, st.best_valid_bleu = -1;
    cr_assert_eq(train_state_save(path, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
    expect_refused(path, "shared_vocab", "source 9, target 7");
    // The same sizes but two tables: also not what shared_vocab means.
    Secs x;
    path = fresh(&x, K_SHARED);
    Sec *tok = sec_get(&x, "tokenizer");
    const char *body = strchr(tok->data, '\n') + 1;
    size_t bl = tok->size - (size_t)(body - tok->data);
    char *two = xmalloc(2 * bl + 128);
    int hl = sprintf(two, "nmt-tokenizer word %zu %zu\n", bl, bl);
    memcpy(two + hl, body, bl);
    memcpy(two + hl + bl, body, bl);
    sec_set(&x, "tokenizer", two, (size_t)hl + 2 * bl);
    free(two);
    write_secs(path, &x);
    expect_refused(path, "shared_vocab", "two vocabularies");
}

Test(untrusted, tokenizer_kind_differs_from_the_config) {
    Secs x, y;
    const char *path = fresh(&x, K_WORD);
    const char *bpe = tmp_path("bpe.ckpt");
    write_tiny(bpe, K_BPE, NULL, NULL);
    read_secs(bpe, &y);
    Sec *t = sec_get(&y, "tokenizer");
    sec_set(&x, "tokenizer", t->data, t->size);
    write_secs(bpe, &y);
    write_secs(path, &x);
    expect_refused(path, "BPE tokenizer", "data.tokenizer");
}

// ---------------------------------------------------------------- config <-> parameters

// A config asking for ~32 TB of parameters (every key in its range): refused
// as corrupt before anything is allocated (it used to exit "out of memory").
Test(untrusted, config_asking_for_terabytes) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_replace(&x, "config", "\"d_model\":\t16", "\"d_model\":\t65536");
    sec_replace(&x, "config", "\"d_ff\":\t32", "\"d_ff\":\t1048576");
    sec_replace(&x, "config", "\"encoder_layers\":\t1", "\"encoder_layers\":\t64");
    sec_replace(&x, "config", "\"decoder_layers\":\t1", "\"decoder_layers\":\t64");
    write_secs(path, &x);
    expect_refused(path, "'params'", "the config's model needs");
}

// A config one size off: the parameter section is the wrong size.
Test(untrusted, config_and_params_disagree) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_replace(&x, "config", "\"d_ff\":\t32", "\"d_ff\":\t48");
    write_secs(path, &x);
    expect_refused(path, "'params'", NULL);
    // Not a whole number of reals.
    path = fresh(&x, K_WORD);
    Sec *p = sec_get(&x, "params");
    p->size -= 1;
    write_secs(path, &x);
    expect_refused(path, "'params'", NULL);
}

// ---------------------------------------------------------------- the tensor table

Test(untrusted, tensor_table_mismatches) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_replace(&x, "tensors", "src_emb 9 16", "src_emb -1 16");
    write_secs(path, &x);
    expect_refused(path, "parameter table", "src_emb");
    path = fresh(&x, K_WORD);
    sec_replace(&x, "tensors", "src_emb 9 16", "src_emb 18446744073709551625 16");
    write_secs(path, &x);
    expect_refused(path, "parameter table", "src_emb");
    path = fresh(&x, K_WORD);
    sec_replace(&x, "tensors", "src_emb 9 16 0 1", "src_emb 9 16 0 0");
    write_secs(path, &x);
    expect_refused(path, "src_emb", "weight-decay");
    path = fresh(&x, K_WORD);
    sec_replace(&x, "tensors", "tgt_emb 7 16", "tgt_emb 16 7");
    write_secs(path, &x);
    expect_refused(path, "tgt_emb", "does not match");
    path = fresh(&x, K_WORD);
    sec_append(&x, "tensors", "extra 1 1 0 0\n");
    write_secs(path, &x);
    expect_refused(path, "extra tensors", NULL);
}

// ---------------------------------------------------------------- optimizer state

// A truncated Adam moment was ignored by translate and by info.
Test(untrusted, optimizer_state_size_is_checked_by_every_load) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    Sec *v = sec_get(&x, "adam_v");
    v->size -= 64;
    write_secs(path, &x);
    expect_refused(path, "'adam_v'", "bytes");
    // Half of Adam's state.
    path = fresh(&x, K_WORD);
    sec_drop(&x, "adam_m");
    write_secs(path, &x);
    expect_refused(path, "adam_m", NULL);
}

// A weights-only checkpoint (no optimizer state) is valid: translate and info
// load it, a resume is refused for want of the state.
Test(untrusted, weights_only_checkpoint) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_drop(&x, "adam_m");
    sec_drop(&x, "adam_v");
    write_secs(path, &x);
    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(path, &c, &t, &m, NULL, &st), NMT_OK, "%s", err_msg());
    model_free(&m), tokenizer_free(&t), config_free(&c);
    cr_assert_eq(train_state_load(path, &c, &t, &m, &o, &st), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "no 'adam_m' section"), "%s", err_msg());
    cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
}

// ---------------------------------------------------------------- values

static void poison(Secs *x, const char *section, size_t at, real v) {
    Sec *s = sec_get(x, section);
    cr_assert((at + 1) * sizeof(real) <= s->size);
    memcpy(s->data + at * sizeof(real), &v, sizeof v);
}

Test(untrusted, non_finite_weights_name_the_tensor) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    // tgt_emb (7 x 16) follows src_emb (9 x 16 = 144 reals, 144 with padding).
    poison(&x, "params", 144 + 2 * 16 + 5, NAN);
    poison(&x, "params", 144 + 3 * 16, INFINITY);
    write_secs(path, &x);
    expect_refused(path, "'params'", "tensor 'tgt_emb' [2, 5] is nan");
    path = fresh(&x, K_WORD);
    poison(&x, "adam_v", 1, -INFINITY);
    write_secs(path, &x);
    expect_refused(path, "'adam_v'", "tensor 'src_emb' [0, 1] is -inf");
}

// Finite but absurd weights: every load refuses a weight beyond
// model_weight_bound (it overflows float within one layer), naming the file
// and the tensor; the moving average (the weights translate uses) too. The
// optimizer's other state is only required finite.
Test(untrusted, absurd_weights_are_refused) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    poison(&x, "params", 3, (real)3e38);
    write_secs(path, &x);
    expect_refused(path, "'params'", "tensor 'src_emb' [0, 3] is 3e+38");
    path = fresh(&x, K_WORD);
    poison(&x, "params", 144 + 16 + 1, (real)-2e8);  // tgt_emb [1, 1]; the bound at d_model 16 is 8.5e7
    write_secs(path, &x);
    expect_refused(path, "values beyond +-8.49e+07", "tensor 'tgt_emb' [1, 1] is -2e+08");
    path = fresh(&x, K_WORD);
    poison(&x, "params", 3, (real)8e7);  // within the bound: loads
    poison(&x, "adam_v", 3, (real)3e38);  // the optimizer's state: only finite
    write_secs(path, &x);
    cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
    // Every weight the smallest denormal: loads (and translates: test_translate.c).
    path = fresh(&x, K_WORD);
    Sec *p = sec_get(&x, "params");
    for (size_t i = 0; i < p->size / sizeof(real); i++) poison(&x, "params", i, (real)0x1p-149);
    write_secs(path, &x);
    cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
}

// ---------------------------------------------------------------- the state section

Test(untrusted, state_counts_must_be_counts) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "\"step\":2", "\"step\":1e300");
    write_secs(path, &x);
    expect_refused(path, "step", "not a count");
    path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "\"batch_pos\":2", "\"batch_pos\":2.5");
    write_secs(path, &x);
    expect_refused_by(path, "batch_pos", NULL, 1);
    path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "\"elapsed\":0", "\"elapsed\":1e999");
    write_secs(path, &x);
    expect_refused_by(path, "elapsed", "finite", 1);
}

// The checkpoint itself reads the state's step (the optimizer's state
// belongs to it): a state that is no JSON object, or has no step, is refused
// by every load, translate's included.
Test(untrusted, state_must_be_an_object_with_a_step) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "{", "[");
    write_secs(path, &x);
    expect_refused(path, "state section is not a JSON object", NULL);
    path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "\"step\":2", "\"steps\":2");
    write_secs(path, &x);
    expect_refused(path, "state section lacks step", NULL);
    path = fresh(&x, K_WORD);
    sec_replace(&x, "state", "\"epoch\":0", "\"epochs\":0");
    write_secs(path, &x);
    expect_refused_by(path, "state section lacks step/epoch/batch_pos", NULL, 1);
}

// The state is one JSON object and nothing after it but whitespace (cJSON
// alone stops at the closing brace and ignores the rest).
Test(untrusted, state_with_bytes_after_its_json) {
    Secs x;
    const char *path = fresh(&x, K_WORD);
    sec_append(&x, "state", " \n{\"step\":9}");
    write_secs(path, &x);
    expect_refused(path, "state section: bytes after the JSON object (at byte", NULL);
    path = fresh(&x, K_WORD);
    sec_append(&x, "state", " \t\r\n");  // whitespace is fine
    write_secs(path, &x);
    cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
}

// ---------------------------------------------------------------- languages and language profiles

// The tiny checkpoint with languages and profiles (write_tiny_languages);
// x (may be NULL) gets its sections.
static const char *with_languages(Secs *x) {
    const char *path = tmp_path("lang.ckpt");
    write_tiny_languages(path);
    if (x) read_secs(path, x);
    return path;
}

static void expect_profile_text(const LangProfile *p, const char *want_prefix) {
    cr_assert_not_null(p);
    char *t = langid_to_text(p);
    cr_assert(strncmp(t, want_prefix, strlen(want_prefix)) == 0, "'%.60s' is not '%s...'", t, want_prefix);
    free(t);
}

Test(untrusted, languages_and_profiles_round_trip) {
    Secs x;
    const char *path = with_languages(&x);
    Sec lid = *sec_get(&x, "langid");
    cr_assert(strncmp(lid.data, "nmt-langid-pair ", 16) == 0, "%.40s", lid.data);
    // Every load keeps them: a resume, decoding, and nmt info.
    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(path, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    cr_assert_str_eq(c.src_lang, "de");
    cr_assert_str_eq(c.tgt_lang, "en");
    // 42 letters in 9 words: 42 unigrams, 42 + 9 bigrams, 42 trigrams.
    expect_profile_text(t.src_profile, "nmt-langid 1 ");
    cr_assert_not_null(strstr(lid.data, "\ntotal 42 51 42\n"), "%.120s", lid.data);
    // Saved again: the same section, byte for byte.
    const char *again = tmp_path("again.ckpt");
    cr_assert_eq(train_state_save(again, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
    Secs y;
    read_secs(again, &y);
    Sec *lid2 = sec_get(&y, "langid");
    cr_assert(lid2->size == lid.size && memcmp(lid2->data, lid.data, lid.size) == 0);
    write_secs(tmp_path("discard.ckpt"), &y);
    write_secs(tmp_path("discard.ckpt"), &x);
    Loaded l;
    cr_assert_eq(checkpoint_load_decoding(&l, path, 1), NMT_OK, "%s", err_msg());  // int8 at load too
    cr_assert_str_eq(l.c.src_lang, "de");
    cr_assert_not_null(l.t.src_profile);
    cr_assert_not_null(l.t.tgt_profile);
    const LangProfile *const both[2] = {l.t.src_profile, l.t.tgt_profile};
    double conf[2];
    langid_rank(both, 2, "Die Kinder laufen über die Straße", conf);
    cr_assert(conf[0] > conf[1], "de %g en %g", conf[0], conf[1]);
    loaded_free(&l);
    CkptInfo in;
    cr_assert_eq(checkpoint_describe(path, &in), NMT_OK, "%s", err_msg());
    cr_assert(in.t.src_profile && !strcmp(in.c.tgt_lang, "en"));
    ckpt_info_free(&in);
}

// Checkpoints from before the languages: no langid section, no codes.
Test(untrusted, checkpoint_without_languages_loads) {
    Secs x;
    const char *path = with_languages(&x);
    sec_drop(&x, "langid");
    sec_replace(&x, "config", "\"src_lang\":\t\"de\",", "");
    sec_replace(&x, "config", "\"tgt_lang\":\t\"en\"", "\"max_tgt_len\": 100");  // the key before it, again
    sec_replace(&x, "config", "\"max_tgt_len\":\t100,", "");
    write_secs(path, &x);
    Loaded l;
    cr_assert_eq(checkpoint_load_decoding(&l, path, 0), NMT_OK, "%s", err_msg());
    cr_assert_str_eq(l.c.src_lang, "");
    cr_assert_str_eq(l.c.tgt_lang, "");
    cr_assert_null(l.t.src_profile);
    cr_assert_null(l.t.tgt_profile);
    loaded_free(&l);
    cr_assert_eq(info_verdict(path), NMT_OK, "%s", err_msg());
}

Test(untrusted, malformed_langid_section) {
    Secs x;
    const char *path = with_languages(&x);
    sec_replace(&x, "langid", "nmt-langid-pair", "nmt-langid-pairs");
    write_secs(path, &x);
    expect_refused(path, "(langid section): malformed language profiles", "nmt-langid-pair SRC_LEN TGT_LEN");
    // Lengths that do not fill the section, or wrap around 2^64 to its size,
    // with the section last in the file.
    const char *heads[] = {"nmt-langid-pair 0 0\n", "nmt-langid-pair 18446744073709551615 1\n",
                           "nmt-langid-pair 1 18446744073709551615\n", "nmt-langid-pair 99999999999999999999999 0\n",
                           "nmt-langid-pair 5", "", "nmt-langid-pair -1 5\n"};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        path = with_languages(&x);
        Sec *s = sec_get(&x, "langid");
        const char *body = strchr(s->data, '\n') + 1;
        size_t blen = s->size - (size_t)(body - s->data);
        char *d = xmalloc(strlen(heads[i]) + blen + 1);
        memcpy(d, heads[i], strlen(heads[i]));
        memcpy(d + strlen(heads[i]), body, blen);
        sec_set(&x, "langid", d, i == 4 || i == 5 ? strlen(heads[i]) : strlen(heads[i]) + blen);
        free(d);
        sec_last(&x, "langid");
        write_secs(path, &x);
        expect_refused(path, "(langid section): malformed language profiles", NULL);
    }
    // A profile that is malformed: named, with its line.
    path = with_languages(&x);
    sec_replace(&x, "langid", "distinct", "distinkt");  // the same length
    write_secs(path, &x);
    expect_refused(path, "(langid section), source profile: malformed language profile at line 3", "distinct");
    path = with_languages(&x);
    sec_replace(&x, "langid", "\n1 _ki\n", "\n1 _KI\n");
    write_secs(path, &x);
    expect_refused(path, "(langid section), source profile: malformed language profile at line", "never makes");
    // A NUL byte in the target's profile.
    path = with_languages(&x);
    Sec *s = sec_get(&x, "langid");
    s->data[s->size - 2] = 0;
    write_secs(path, &x);
    expect_refused(path, "(langid section), target profile: malformed language profile", NULL);
}

// The config section's languages are checked as a config file's.
Test(untrusted, bad_language_codes_in_the_config_section) {
    Secs x;
    const char *path = with_languages(&x);
    sec_replace(&x, "config", "\"de\"", "\"German\"");
    write_secs(path, &x);
    expect_refused(path, "(config section): data.src_lang: \"German\" is not a language code", NULL);
    path = with_languages(&x);
    sec_replace(&x, "config", "\"en\"", "\"de\"");
    write_secs(path, &x);
    expect_refused(path, "data.src_lang and data.tgt_lang are both \"de\"", NULL);
    path = with_languages(&x);
    sec_replace(&x, "config", "\"en\"", "\"\"");
    write_secs(path, &x);
    expect_refused(path, "data.tgt_lang is missing", NULL);
}

// A vocabulary word of any length loads (vocab_build keeps long words whole),
// and serializes back to the same bytes.
Test(untrusted, long_vocabulary_word_round_trips) {
    size_t n = 3000;
    static const char SPECIALS[] = "<pad>\n<unk>\n<s>\n</s>\na\n";
    char *text = xmalloc(n + 256), *p = text;
    p += sprintf(p, "nmt-tokenizer word-shared %zu 0\n%s", strlen(SPECIALS) + n + 1, SPECIALS);
    memset(p, 'x', n);
    p[n] = '\n';
    p += n + 1;
    size_t len = (size_t)(p - text);
    Tokenizer t;
    cr_assert_eq(tokenizer_deserialize(&t, text, len, "long"), NMT_OK, "%s", err_msg());
    cr_assert_eq(tokenizer_vocab_size(&t, SIDE_SRC), 6);
    cr_assert_eq(strlen(tokenizer_token(&t, SIDE_SRC, 5)), n);
    size_t len2;
    char *again = tokenizer_serialize(&t, &len2);
    cr_assert(len2 == len && memcmp(again, text, len) == 0);
    free(again);
    tokenizer_free(&t);
    free(text);
}

// ---------------------------------------------------------------- int8 checkpoints

// The tiny model quantized and saved as an int8 checkpoint; its sections.
static const char *fresh_int8(Secs *x) {
    const char *path = tmp_path("q.ckpt");
    write_tiny(path, K_WORD, NULL, NULL);
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    cr_assert_eq(train_state_load(path, &c, &t, &m, NULL, &st), NMT_OK, "%s", err_msg());
    cr_assert_eq(model_quantize(&m, "test"), NMT_OK, "%s", err_msg());
    cr_assert_eq(train_state_save(path, &c, &t, &m, NULL, &st), NMT_OK, "%s", err_msg());
    model_free(&m), tokenizer_free(&t), config_free(&c);
    read_secs(path, x);
    return path;
}

// Loading for translate and `nmt info` refuse it saying `what`; a resume
// refuses every int8 checkpoint.
static void expect_int8_refused(const char *path, const char *what) {
    Config c;
    Tokenizer t;
    Model m;
    CkptState st;
    err_clear();
    int rc = checkpoint_load(path, &c, &t, &m, NULL, &st);
    if (rc == NMT_OK) model_free(&m), tokenizer_free(&t), config_free(&c), ckpt_state_free(&st);
    cr_assert_eq(rc, NMT_ERR_INPUT, "%s was loaded", path);
    cr_assert(strstr(err_msg(), path) && strstr(err_msg(), what), "message does not say '%s': %s", what, err_msg());
    err_clear();
    cr_assert_eq(info_verdict(path), NMT_ERR_INPUT, "info calls %s valid", path);
    cr_assert(strstr(err_msg(), what), "info's message does not say '%s': %s", what, err_msg());
}

Test(untrusted, int8_checkpoint_round_trips_and_refuses_a_resume) {
    Secs x;
    const char *path = fresh_int8(&x);
    for (int i = 0; i < x.n; i++) free(x.s[i].data);
    // The quantized model, in memory and from the file: the same values.
    const char *fpath = tmp_path("f.ckpt");
    write_tiny(fpath, K_WORD, NULL, NULL);
    Config c0, c;
    Tokenizer t0, t;
    Model m0, m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(fpath, &c0, &t0, &m0, NULL, &st), NMT_OK, "%s", err_msg());
    cr_assert_eq(model_quantize(&m0, "test"), NMT_OK, "%s", err_msg());
    cr_assert_eq(train_state_load(path, &c, &t, &m, NULL, &st), NMT_OK, "%s", err_msg());
    cr_assert_not_null(m.quant);
    cr_assert_eq(m.quant->n, m0.quant->n);
    cr_assert(memcmp(m.params, m0.params, m.nparams * sizeof(real)) == 0, "dequantized values differ");
    for (size_t i = 0; i < m.quant->n; i++) {
        const QMatrix *a = &m.quant->t[i].q, *b = &m0.quant->t[i].q;
        cr_assert(a->n == b->n && a->k == b->k && memcmp(a->q, b->q, a->n * a->kp) == 0, "tensor %zu", i);
        cr_assert(memcmp(a->scale, b->scale, a->n * sizeof(float)) == 0, "tensor %zu scales", i);
    }
    model_free(&m), tokenizer_free(&t), config_free(&c);
    model_free(&m0), tokenizer_free(&t0), config_free(&c0);
    cr_assert_eq(train_state_load(path, &c, &t, &m, &o, &st), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "an int8 checkpoint (made by nmt quantize)"), "%s", err_msg());
}

Test(untrusted, int8_sections_are_checked) {
    Secs x;
    const char *path = fresh_int8(&x);
    sec_replace(&x, "quant", "int8 per-output-symmetric", "int4 per-output-symmetric");
    write_secs(path, &x);
    expect_int8_refused(path, "does not start with");

    path = fresh_int8(&x);
    sec_replace(&x, "quant", "tgt_emb 7 16", "tgt_emb 7 15");
    write_secs(path, &x);
    expect_int8_refused(path, "section 'quant' lists 'tgt_emb' 7x15 where the model has 'tgt_emb' 7x16");

    path = fresh_int8(&x);
    sec_append(&x, "quant", "extra 1 1\n");
    write_secs(path, &x);
    expect_int8_refused(path, "lists tensors the model does not have");

    path = fresh_int8(&x);
    sec_get(&x, "qweights")->size -= 1;
    write_secs(path, &x);
    expect_int8_refused(path, "section 'qweights' holds");

    path = fresh_int8(&x);
    sec_get(&x, "qweights")->data[5] = (char)-128;
    write_secs(path, &x);
    expect_int8_refused(path, "holds -128 at byte 5");

    path = fresh_int8(&x);
    float bad = -1;
    memcpy(sec_get(&x, "qscales")->data + 4 * sizeof(float), &bad, sizeof bad);
    write_secs(path, &x);
    expect_int8_refused(path, "section 'qscales' holds -1 at 4");

    path = fresh_int8(&x);
    real nan = NAN;
    memcpy(sec_get(&x, "fparams")->data + 3 * sizeof(real), &nan, sizeof nan);
    write_secs(path, &x);
    expect_int8_refused(path, "section 'fparams' holds a non-finite value at 3");

    // Scales and float values that make weights beyond model_weight_bound.
    path = fresh_int8(&x);
    float huge = 3e38f;
    memcpy(sec_get(&x, "qscales")->data + 2 * sizeof(float), &huge, sizeof huge);
    write_secs(path, &x);
    expect_int8_refused(path, "section 'qscales' holds 3e+38 at 2: weights up to 3.81e+40, beyond the +-8.49e+07");

    path = fresh_int8(&x);
    real big = (real)1e30;
    memcpy(sec_get(&x, "fparams")->data + 3 * sizeof(real), &big, sizeof big);
    write_secs(path, &x);
    expect_int8_refused(path, "section 'fparams' holds 1e+30 at 3, beyond the +-8.49e+07");

    path = fresh_int8(&x);
    sec_drop(&x, "fparams");
    write_secs(path, &x);
    expect_int8_refused(path, "no 'fparams' section");
}

// A config that asks for a huge model over small int8 sections is refused
// before anything of that size is allocated.
Test(untrusted, int8_config_asking_for_terabytes) {
    Secs x;
    const char *path = fresh_int8(&x);
    sec_replace(&x, "config", "\"d_model\":\t16", "\"d_model\":\t65536");
    sec_replace(&x, "config", "\"d_ff\":\t32", "\"d_ff\":\t1048576");
    write_secs(path, &x);
    expect_int8_refused(path, "the int8 sections are too small for the config's model");
}
