// train/init_from.c — fine-tuning (train.init_from): a fresh start that takes a
// trained model's weights and tokenizer. The optimizer, the learning-rate
// schedule and the data order are the fresh run's own (train.c).
#include "train/run.h"
#include "common/util.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "model/shape.h"
#include "text/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The keys that shape the model or its vocabulary (config_diff's model keys:
// model.* but the dropout rates, data.tokenizer, data.vocab_size,
// data.min_freq) must be the checkpoint's: the weights only fit that model.
static int check_model_keys(const Config *there, const Config *here, const char *from) {
    char va[256], vb[256];
    const char *key;
    if (!config_first_diff(there, here, 1, va, vb, sizeof va, &key)) return NMT_OK;
    return err_set(NMT_ERR_INPUT, "train.init_from %s: %s is %s there but %s in the config", from, key, va, vb);
}

// data.bpe_model, when given, must hold the checkpoint's own BPE model: the
// weights were trained with that one, and nothing else is learnt or read.
static int check_bpe_model(const Config *c, const Tokenizer *t, const char *from) {
    if (c->tokenizer != TOK_BPE || !c->bpe_model[0]) return NMT_OK;
    if (!run_file_exists(c->bpe_model))
        return err_set(NMT_ERR_INPUT, "train.init_from %s: data.bpe_model '%s' does not exist: with train.init_from "
                       "the checkpoint's BPE model is used (leave data.bpe_model empty)", from, c->bpe_model);
    Bpe *b = NULL;
    int rc = bpe_load(&b, c->bpe_model);
    if (rc) return err_prefix("data.bpe_model");
    size_t la, lb;
    char *mine = bpe_serialize(b, &la), *theirs = bpe_serialize(t->bpe, &lb);
    int same = la == lb && memcmp(mine, theirs, la) == 0;
    free(mine);
    free(theirs);
    bpe_free(b);
    if (same) return NMT_OK;
    return err_set(NMT_ERR_INPUT, "train.init_from %s: data.bpe_model '%s' is not the checkpoint's BPE model, which "
                   "its weights were trained with (leave data.bpe_model empty: the checkpoint's is used)", from,
                   c->bpe_model);
}

// What the origin checkpoint is, and how its model agrees with the config.
static int check_origin(const Run *r, const Config *there, const Tokenizer *t, const Model *m) {
    const char *from = r->cfg.init_from;
    if (m->quant)
        return err_set(NMT_ERR_INPUT, "train.init_from %s: an int8 checkpoint (made by nmt quantize) is for decoding "
                       "only: start from the float checkpoint it was made from", from);
    int rc = check_model_keys(there, &r->cfg, from);
    if (!rc) rc = check_bpe_model(&r->cfg, t, from);
    if (!rc && strlen(from) >= sizeof r->st.init_from)
        rc = err_set(NMT_ERR_INPUT, "train.init_from: the path is longer than %zu bytes", sizeof r->st.init_from - 1);
    return rc;
}

// The model the config describes (its dropout rates, positions for its
// lengths) holding the loaded weights.
static int take_weights(Run *r, const Model *loaded) {
    ModelShape s = model_shape_from(&r->cfg, &r->tok);
    int rc = model_create(&r->model, &s);
    if (rc) return rc;
    if (r->model.nparams != loaded->nparams)  // the model keys agree, so the layouts must
        return err_set(NMT_ERR_RUNTIME, "train.init_from %s: internal error: %zu parameters there, %zu here",
                       r->cfg.init_from, loaded->nparams, r->model.nparams);
    memcpy(r->model.params, loaded->params, loaded->nparams * sizeof(real));
    return NMT_OK;
}

int run_init_from(Run *r, int *ema) {
    const char *from = r->cfg.init_from;
    // Verified as every checkpoint is; without an optimizer, loading gives the
    // moving average when the checkpoint keeps one (the weights its
    // validation and decoding used).
    CkptInfo in;
    int rc = checkpoint_describe(from, &in);
    if (rc) {
        ckpt_info_free(&in);
        return err_prefix("train.init_from");
    }
    *ema = in.ema;
    r->tok = in.t;  // the tokenizer as the checkpoint stores it, language profiles included
    memset(&in.t, 0, sizeof in.t);
    rc = check_origin(r, &in.c, &r->tok, &in.m);
    if (!rc) rc = take_weights(r, &in.m);
    if (!rc) {
        snprintf(r->st.init_from, sizeof r->st.init_from, "%s", from);
        r->st.init_from_step = in.st.step;
        r->st.init_from_crc32 = (long)crc32_update(0, r->model.params, r->model.nparams * sizeof(real));
    }
    ckpt_info_free(&in);
    return rc;
}
