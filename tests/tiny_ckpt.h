// tiny_ckpt.h — for tests: a tiny valid checkpoint (word, shared word or BPE
// tokenizer; d_model 16, 1+1 layers) built in memory and written with
// train_state_save.
#ifndef NMT_TEST_TINY_CKPT_H
#define NMT_TEST_TINY_CKPT_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/state.h"
#include "io/checkpoint.h"
#include "model/shape.h"
#include "optim/optim.h"
#include "text/langid.h"
#include "text/tokenizer.h"
#include "common/util.h"


enum { K_WORD, K_SHARED, K_BPE };

static const char *const WORDS[] = {"a", "b", "c", "d", "e", "f", "g"};

// One vocabulary text: the specials and the first n words.
static inline void put_vocab(char *out, size_t cap, int n) {
    snprintf(out, cap, "<pad>\n<unk>\n<s>\n</s>\n");
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s\n", WORDS[i]);
    }
}

static const char BPE_MODEL[] = "nmt-bpe 1\nsize 261\nchars 1\n\xe2\x96\x81\nmerges 0\nend\n";

// The tokenizer section of a kind (word: source 4+5 ids, target 4+3 ids).
static inline char *tokenizer_text(int kind, size_t *len) {
    char v0[256], v1[256], *s = xmalloc(1024);
    if (kind == K_BPE) {
        snprintf(s, 1024, "nmt-tokenizer bpe %zu 0\n%s", strlen(BPE_MODEL), BPE_MODEL);
    } else if (kind == K_SHARED) {
        put_vocab(v0, sizeof v0, 6);
        snprintf(s, 1024, "nmt-tokenizer word-shared %zu 0\n%s", strlen(v0), v0);
    } else {
        put_vocab(v0, sizeof v0, 5);
        put_vocab(v1, sizeof v1, 3);
        snprintf(s, 1024, "nmt-tokenizer word %zu %zu\n%s%s", strlen(v0), strlen(v1), v0, v1);
    }
    *len = strlen(s);
    return s;
}

// extra: more model keys, e.g. "\"positions\": \"relative\", " (or "").
static inline void tiny_config_with(Config *c, int kind, const char *extra) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"d_model\": 16, \"heads\": 2, \"d_ff\": 32, \"encoder_layers\": 1, \"decoder_layers\": 1,"
             " %s\"shared_vocab\": %s, \"tie_output\": true},"
             " \"data\": {\"train_src\": \"s.txt\", \"train_tgt\": \"t.txt\", \"tokenizer\": \"%s\", \"vocab_size\": %d},"
             " \"train\": {\"checkpoint_dir\": \"ck\"}}",
             extra, kind == K_SHARED ? "true" : "false", kind == K_BPE ? "bpe" : "word", kind == K_BPE ? 300 : 0);
    cr_assert_eq(config_parse(c, json, "tiny", NULL, 0), NMT_OK, "%s", err_msg());
}

static inline void tiny_config(Config *c, int kind) { tiny_config_with(c, kind, ""); }

// Writes a valid training checkpoint (Adam state, step 2) of the kind (and
// extra model keys) to path; *out_params (may be NULL) gets a copy of its weights.
static inline void write_tiny_with(const char *path, int kind, const char *extra, real **out_params, size_t *out_n) {
    Config c;
    tiny_config_with(&c, kind, extra);
    size_t len;
    char *text = tokenizer_text(kind, &len);
    Tokenizer t;
    cr_assert_eq(tokenizer_deserialize(&t, text, len, "tiny tokenizer"), NMT_OK, "%s", err_msg());
    free(text);
    ModelShape s = model_shape_from(&c, &t);
    Model m;
    model_create(&m, &s);
    model_init_params(&m, 7);
    Optimizer o;
    optim_init(&o, &c, m.nparams);
    for (size_t i = 0; i < o.n; i++) o.state[0][i] = (real)(i % 7) * 0.25f, o.state[1][i] = (real)(i % 5);
    o.step = 2;
    TrainState st;
    memset(&st, 0, sizeof st);
    st.step = 2, st.epoch = 0, st.batch_pos = 2, st.best_valid_loss = INFINITY, st.best_valid_bleu = -1;
    cr_assert_eq(train_state_save(path, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    if (out_params) {
        *out_params = xmalloc(m.nparams * sizeof(real));
        memcpy(*out_params, m.params, m.nparams * sizeof(real));
        *out_n = m.nparams;
    }
    optim_free(&o);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
}

static inline void write_tiny(const char *path, int kind, real **out_params, size_t *out_n) {
    write_tiny_with(path, kind, "", out_params, out_n);
}

// A tiny word checkpoint with the languages de -> en and language profiles
// (of two short sentences a side), as a fresh training run writes them.
static inline void write_tiny_languages(const char *path) {
    write_tiny(path, K_WORD, NULL, NULL);
    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(path, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    cr_assert_null(t.src_profile);
    snprintf(c.src_lang, sizeof c.src_lang, "de");
    snprintf(c.tgt_lang, sizeof c.tgt_lang, "en");
    const char *de[] = {"Ein Hund läuft über die Straße.", "Zwei Kinder spielen."}, *en[] = {"A dog runs.", "Two kids."};
    t.src_profile = langid_build(de, 2);
    t.tgt_profile = langid_build(en, 2);
    cr_assert_eq(train_state_save(path, &c, &t, &m, &o, &st), NMT_OK, "%s", err_msg());
    optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
}

#endif
