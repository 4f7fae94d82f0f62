// model/model.c — the model's parameters: the table of named tensors (built from
// the layout walk, model/layout.c) with their offsets grouped per layer and
// sublayer, one buffer for values and one for gradients, and their
// initialisation. The passes are in model/layer.c and model/stacks.c.
#include "model/internal.h"
#include "model/layout.h"
#include "model/quant.h"
#include "common/rng.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- parameters

// Where model_create keeps the offset of a tensor of this role (model/internal.h).
static size_t *param_slot(Model *m, const LayoutTensor *t) {
    EncParams *e = t->stack == LAYOUT_ENC && t->layer >= 0 ? &m->enc[t->layer] : NULL;
    DecParams *d = t->stack == LAYOUT_DEC && t->layer >= 0 ? &m->dec[t->layer] : NULL;
    SelfAttnParams *sa = e ? &e->attn : d ? &d->self : NULL;
    FfnParams *f = e ? &e->ffn : d ? &d->ffn : NULL;
    int enc = t->stack == LAYOUT_ENC;
    switch (t->role) {
    case ROLE_SRC_EMB: return &m->src_emb;
    case ROLE_TGT_EMB: return &m->tgt_emb;
    case ROLE_OUT_PROJ: return &m->out_proj;
    case ROLE_SELF_WQKV: return &sa->qkv.w;
    case ROLE_SELF_BQKV: return &sa->qkv.b;
    case ROLE_SELF_WO: return &sa->out.w;
    case ROLE_SELF_BO: return &sa->out.b;
    case ROLE_SELF_REL_K: return &sa->rel_k;
    case ROLE_SELF_REL_V: return &sa->rel_v;
    case ROLE_SELF_LN_W: return &sa->norm.w;
    case ROLE_SELF_LN_B: return &sa->norm.b;
    case ROLE_CROSS_WQ: return &d->cross.q.w;
    case ROLE_CROSS_BQ: return &d->cross.q.b;
    case ROLE_CROSS_WKV: return &d->cross.kv.w;
    case ROLE_CROSS_BKV: return &d->cross.kv.b;
    case ROLE_CROSS_WO: return &d->cross.out.w;
    case ROLE_CROSS_BO: return &d->cross.out.b;
    case ROLE_CROSS_LN_W: return &d->cross.norm.w;
    case ROLE_CROSS_LN_B: return &d->cross.norm.b;
    case ROLE_FFN_W1: return &f->in.w;
    case ROLE_FFN_B1: return &f->in.b;
    case ROLE_FFN_W2: return &f->out.w;
    case ROLE_FFN_B2: return &f->out.b;
    case ROLE_ENC_FFN_LN_W: case ROLE_DEC_FFN_LN_W: return &f->norm.w;
    case ROLE_ENC_FFN_LN_B: case ROLE_DEC_FFN_LN_B: return &f->norm.b;
    case ROLE_FINAL_LN_W: return enc ? &m->enc_lnf_w : &m->dec_lnf_w;
    case ROLE_FINAL_LN_B: return enc ? &m->enc_lnf_b : &m->dec_lnf_b;
    default: return NULL;
    }
}

// One tensor of the layout: into the table, its offset into the parameter
// groups, its range into its layer's span (or the embeddings').
static int add_tensor(void *arg, const LayoutTensor *lt) {
    Model *m = arg;
    Tensor t;
    memset(&t, 0, sizeof t);
    layout_name(lt, t.name, sizeof t.name);  // names are short by construction
    t.offset = lt->offset;
    t.rows = lt->rows;
    t.cols = lt->cols;
    t.decay = lt->decay;
    t.init_bound = lt->init_bound;
    arrput(m->tensors, t);
    *param_slot(m, lt) = lt->offset;
    ParamSpan whole = {lt->offset, lt->size};
    if (lt->role == ROLE_SRC_EMB) m->src_emb_span = whole;
    if (lt->role == ROLE_TGT_EMB) m->tgt_emb_span = whole;
    if (lt->role == ROLE_OUT_PROJ) m->out_proj_span = whole;
    ParamSpan *layer = lt->layer < 0            ? NULL
                       : lt->stack == LAYOUT_ENC ? &m->enc_span[lt->layer]
                                                 : &m->dec_span[lt->layer];
    if (layer) {  // a layer's tensors are contiguous
        if (layer->n == 0) layer->off = lt->offset;
        layer->n = lt->offset + lt->size - layer->off;
    }
    return NMT_OK;
}

int model_create(Model *m, const ModelShape *s) {
    memset(m, 0, sizeof *m);
    m->s = *s;
    m->enc = xcalloc((size_t)s->enc_layers, sizeof *m->enc);
    m->dec = xcalloc((size_t)s->dec_layers, sizeof *m->dec);
    m->enc_span = xcalloc((size_t)s->enc_layers + 1, sizeof *m->enc_span);
    m->dec_span = xcalloc((size_t)s->dec_layers + 1, sizeof *m->dec_span);
    if (layout_walk(s, add_tensor, m, &m->nparams)) {
        model_free(m);
        return err_set(NMT_ERR_INPUT, "the model's parameters do not fit in memory");
    }
    if (s->shared_vocab) {
        m->tgt_emb = m->src_emb;
        m->tgt_emb_span = m->src_emb_span;
    }
    if (s->tie_output) {
        m->out_proj = m->tgt_emb;
        m->out_proj_span = m->tgt_emb_span;
    }
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = xcalloc(m->nparams, sizeof(real));
    if (!s->relative) {
        size_t C = (size_t)s->d_model;
        m->pe = xmalloc((size_t)s->max_len * C * sizeof(real));
        positions_table(m->pe, (size_t)s->max_len, C);
    }
    return NMT_OK;
}

void model_init_params(Model *m, uint64_t seed) {
    for (int i = 0; i < (int)arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        real *p = m->params + t->offset;
        size_t n = t->rows * t->cols;
        uint64_t key = rng_key(seed, 0x1417, (uint64_t)i);
        for (size_t j = 0; j < n; j++) {
            if (t->init_bound > 0) p[j] = (real)((2 * rng_uniform(key, j) - 1) * t->init_bound);
            else p[j] = t->init_bound < 0 ? 1 : 0;
        }
    }
}

void model_free(Model *m) {
    model_quant_free(m);
    arrfree(m->tensors);
    free(m->params);
    free(m->grads);
    free(m->enc);
    free(m->dec);
    free(m->enc_span);
    free(m->dec_span);
    free(m->pe);
    memset(m, 0, sizeof *m);
}

ParamSet model_param_set(Model *m) {
    ParamSet p = {m->params, m->grads, m->nparams, m->tensors, (size_t)arrlen(m->tensors)};
    return p;
}

int model_find_tensor(const Model *m, const char *name) {
    for (int i = 0; i < (int)arrlen(m->tensors); i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

void model_zero_grads(const Model *m, real *dst) { par_zero(dst, m->nparams); }
