// model/model.c — the model's parameters: the table of named tensors (grouped per
// layer and sublayer), one buffer for values and one for gradients, and their
// initialisation. The passes are in model/layer.c and model/stacks.c.
#include "model/internal.h"
#include "model/quant.h"
#include "common/rng.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- parameters

// The span of the tensor just added.
static ParamSpan last_span(const Model *m) {
    const Tensor *t = &m->tensors[arrlen(m->tensors) - 1];
    return (ParamSpan){t->offset, m->nparams - t->offset};
}

static size_t add_tensor(Model *m, const char *name, size_t rows, size_t cols, int decay, real bound) {
    Tensor t;
    memset(&t, 0, sizeof t);
    size_t len = strlen(name);
    if (len >= sizeof t.name) len = sizeof t.name - 1;  // names are short by construction
    memcpy(t.name, name, len);
    t.offset = m->nparams;
    t.rows = rows;
    t.cols = cols;
    t.decay = decay;
    t.init_bound = bound;
    arrput(m->tensors, t);
    // Keep every tensor 16-float aligned for the SIMD kernels.
    m->nparams += (rows * cols + 15) & ~(size_t)15;
    return t.offset;
}

static real xavier(size_t fan_in, size_t fan_out) {
    return (real)sqrt(6.0 / (double)(fan_in + fan_out));
}

static size_t add_matrix(Model *m, const char *prefix, const char *what, size_t rows, size_t cols, size_t fan_out) {
    char name[80];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    return add_tensor(m, name, rows, cols, 1, xavier(rows, fan_out));
}

static size_t add_vector(Model *m, const char *prefix, const char *what, size_t n, real init) {
    char name[80];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    return add_tensor(m, name, 1, n, 0, init);
}

static NormParams add_layernorm(Model *m, const char *prefix, size_t C) {
    NormParams n;
    char name[80];
    snprintf(name, sizeof name, "%s.w", prefix);
    n.w = add_tensor(m, name, 1, C, 0, -1);
    snprintf(name, sizeof name, "%s.b", prefix);
    n.b = add_tensor(m, name, 1, C, 0, 0);
    return n;
}

static LinearParams add_linear(Model *m, const char *prefix, const char *w, const char *b, size_t in, size_t out,
                               size_t fan_out) {
    LinearParams p;
    p.w = add_matrix(m, prefix, w, in, out, fan_out);
    p.b = add_vector(m, prefix, b, out, 0);
    return p;
}

// The tensors of one sublayer, named "<stack>.<layer>.<sublayer>.*" and
// "<stack>.<layer>.<norm>.*"; the order of the calls is the checkpoint's order.
static SelfAttnParams add_self_attn(Model *m, const char *stack, int l, const char *norm) {
    size_t C = (size_t)m->s.d_model;
    char p[64];
    SelfAttnParams a;
    snprintf(p, sizeof p, "%s.%d.self_attn", stack, l);
    a.qkv = add_linear(m, p, "wqkv", "bqkv", C, 3 * C, C);
    a.out = add_linear(m, p, "wo", "bo", C, C, C);
    a.rel_k = a.rel_v = 0;
    if (m->s.relative) {  // one embedding per clipped distance, shared by the heads
        size_t D = C / (size_t)m->s.heads, R = 2 * (size_t)m->s.max_rel + 1;
        real bound = (real)(sqrt(3.0) / sqrt((double)D));  // std D^-0.5, as the token embeddings
        a.rel_k = add_matrix(m, p, "rel_k", R, D, 0);
        m->tensors[arrlen(m->tensors) - 1].init_bound = bound;
        a.rel_v = add_matrix(m, p, "rel_v", R, D, 0);
        m->tensors[arrlen(m->tensors) - 1].init_bound = bound;
    }
    snprintf(p, sizeof p, "%s.%d.%s", stack, l, norm);
    a.norm = add_layernorm(m, p, C);
    return a;
}

static CrossAttnParams add_cross_attn(Model *m, int l, const char *norm) {
    size_t C = (size_t)m->s.d_model;
    char p[64];
    CrossAttnParams a;
    snprintf(p, sizeof p, "dec.%d.cross_attn", l);
    a.q = add_linear(m, p, "wq", "bq", C, C, C);
    a.kv = add_linear(m, p, "wkv", "bkv", C, 2 * C, C);
    a.out = add_linear(m, p, "wo", "bo", C, C, C);
    snprintf(p, sizeof p, "dec.%d.%s", l, norm);
    a.norm = add_layernorm(m, p, C);
    return a;
}

static FfnParams add_ffn(Model *m, const char *stack, int l, const char *norm) {
    size_t C = (size_t)m->s.d_model, F = (size_t)m->s.d_ff;
    char p[64];
    FfnParams f;
    snprintf(p, sizeof p, "%s.%d.ffn", stack, l);
    f.in = add_linear(m, p, "w1", "b1", C, F, F);
    f.out = add_linear(m, p, "w2", "b2", F, C, C);
    snprintf(p, sizeof p, "%s.%d.%s", stack, l, norm);
    f.norm = add_layernorm(m, p, C);
    return f;
}

int model_create(Model *m, const ModelShape *s) {
    memset(m, 0, sizeof *m);
    m->s = *s;
    size_t C = (size_t)s->d_model;
    real emb_bound = (real)(sqrt(3.0) / sqrt((double)C));  // std d^-0.5
    m->src_emb = add_tensor(m, "src_emb", (size_t)s->src_vocab, C, 1, emb_bound);
    m->src_emb_span = last_span(m);
    m->tgt_emb = s->shared_vocab ? m->src_emb : add_tensor(m, "tgt_emb", (size_t)s->tgt_vocab, C, 1, emb_bound);
    m->tgt_emb_span = last_span(m);
    m->out_proj = s->tie_output ? m->tgt_emb : add_tensor(m, "out_proj", (size_t)s->tgt_vocab, C, 1, xavier(C, (size_t)s->tgt_vocab));
    m->out_proj_span = last_span(m);
    m->enc = xcalloc((size_t)s->enc_layers, sizeof *m->enc);
    m->dec = xcalloc((size_t)s->dec_layers, sizeof *m->dec);
    m->enc_span = xcalloc((size_t)s->enc_layers + 1, sizeof *m->enc_span);
    m->dec_span = xcalloc((size_t)s->dec_layers + 1, sizeof *m->dec_span);
    for (int l = 0; l < s->enc_layers; l++) {
        m->enc_span[l].off = m->nparams;
        m->enc[l].attn = add_self_attn(m, "enc", l, "ln1");
        m->enc[l].ffn = add_ffn(m, "enc", l, "ln2");
        m->enc_span[l].n = m->nparams - m->enc_span[l].off;
    }
    for (int l = 0; l < s->dec_layers; l++) {
        m->dec_span[l].off = m->nparams;
        m->dec[l].self = add_self_attn(m, "dec", l, "ln1");
        m->dec[l].cross = add_cross_attn(m, l, "ln2");
        m->dec[l].ffn = add_ffn(m, "dec", l, "ln3");
        m->dec_span[l].n = m->nparams - m->dec_span[l].off;
    }
    if (s->pre_norm) {
        NormParams e = add_layernorm(m, "enc.ln_final", C), d = add_layernorm(m, "dec.ln_final", C);
        m->enc_lnf_w = e.w;
        m->enc_lnf_b = e.b;
        m->dec_lnf_w = d.w;
        m->dec_lnf_b = d.b;
    }
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = xcalloc(m->nparams, sizeof(real));
    if (!s->relative) {
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

void model_zero_grads(Model *m) { par_zero(m->grads, m->nparams); }
