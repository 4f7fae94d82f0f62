// model.c — Transformer encoder-decoder composed from ops.
//
// Each sublayer is wrapped the same way:
//   post-norm (the paper): y = LN(x + dropout(F(x)))
//   pre-norm:              y = x + dropout(F(LN(x)))   (+ a final LN per stack)
// Activations live in one arena carved per batch; gradients flow back through
// a few scratch buffers. Every backward accumulates into m->grads.
#include "model.h"
#include "gemm.h"
#include "ops.h"
#include "rng.h"
#include "util.h"

#include <stb/stb_ds.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct EncParams {
    size_t wqkv, bqkv, wo, bo, ln1_w, ln1_b;
    size_t w1, b1, w2, b2, ln2_w, ln2_b;
};
struct DecParams {
    size_t wqkv, bqkv, wo, bo, ln1_w, ln1_b;
    size_t cq_w, cq_b, ckv_w, ckv_b, co_w, co_b, ln2_w, ln2_b;
    size_t w1, b1, w2, b2, ln3_w, ln3_b;
};

// ---------------------------------------------------------------- parameters

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

static void add_layernorm(Model *m, const char *prefix, size_t C, size_t *w, size_t *b) {
    char name[80];
    snprintf(name, sizeof name, "%s.w", prefix);
    *w = add_tensor(m, name, 1, C, 0, -1);
    snprintf(name, sizeof name, "%s.b", prefix);
    *b = add_tensor(m, name, 1, C, 0, 0);
}

int model_create(Model *m, const ModelShape *s) {
    memset(m, 0, sizeof *m);
    m->s = *s;
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff;
    real emb_bound = (real)(sqrt(3.0) / sqrt((double)C));  // std d^-0.5
    m->src_emb = add_tensor(m, "src_emb", (size_t)s->src_vocab, C, 1, emb_bound);
    m->tgt_emb = s->shared_vocab ? m->src_emb : add_tensor(m, "tgt_emb", (size_t)s->tgt_vocab, C, 1, emb_bound);
    m->out_proj = s->tie_output ? m->tgt_emb : add_tensor(m, "out_proj", (size_t)s->tgt_vocab, C, 1, xavier(C, (size_t)s->tgt_vocab));
    m->enc = xcalloc((size_t)s->enc_layers, sizeof *m->enc);
    m->dec = xcalloc((size_t)s->dec_layers, sizeof *m->dec);
    char p[48], q[64];
    for (int l = 0; l < s->enc_layers; l++) {
        EncParams *e = &m->enc[l];
        snprintf(p, sizeof p, "enc.%d.self_attn", l);
        e->wqkv = add_matrix(m, p, "wqkv", C, 3 * C, C);
        e->bqkv = add_vector(m, p, "bqkv", 3 * C, 0);
        e->wo = add_matrix(m, p, "wo", C, C, C);
        e->bo = add_vector(m, p, "bo", C, 0);
        snprintf(q, sizeof q, "enc.%d.ln1", l);
        add_layernorm(m, q, C, &e->ln1_w, &e->ln1_b);
        snprintf(p, sizeof p, "enc.%d.ffn", l);
        e->w1 = add_matrix(m, p, "w1", C, F, F);
        e->b1 = add_vector(m, p, "b1", F, 0);
        e->w2 = add_matrix(m, p, "w2", F, C, C);
        e->b2 = add_vector(m, p, "b2", C, 0);
        snprintf(q, sizeof q, "enc.%d.ln2", l);
        add_layernorm(m, q, C, &e->ln2_w, &e->ln2_b);
    }
    for (int l = 0; l < s->dec_layers; l++) {
        DecParams *d = &m->dec[l];
        snprintf(p, sizeof p, "dec.%d.self_attn", l);
        d->wqkv = add_matrix(m, p, "wqkv", C, 3 * C, C);
        d->bqkv = add_vector(m, p, "bqkv", 3 * C, 0);
        d->wo = add_matrix(m, p, "wo", C, C, C);
        d->bo = add_vector(m, p, "bo", C, 0);
        snprintf(q, sizeof q, "dec.%d.ln1", l);
        add_layernorm(m, q, C, &d->ln1_w, &d->ln1_b);
        snprintf(p, sizeof p, "dec.%d.cross_attn", l);
        d->cq_w = add_matrix(m, p, "wq", C, C, C);
        d->cq_b = add_vector(m, p, "bq", C, 0);
        d->ckv_w = add_matrix(m, p, "wkv", C, 2 * C, C);
        d->ckv_b = add_vector(m, p, "bkv", 2 * C, 0);
        d->co_w = add_matrix(m, p, "wo", C, C, C);
        d->co_b = add_vector(m, p, "bo", C, 0);
        snprintf(q, sizeof q, "dec.%d.ln2", l);
        add_layernorm(m, q, C, &d->ln2_w, &d->ln2_b);
        snprintf(p, sizeof p, "dec.%d.ffn", l);
        d->w1 = add_matrix(m, p, "w1", C, F, F);
        d->b1 = add_vector(m, p, "b1", F, 0);
        d->w2 = add_matrix(m, p, "w2", F, C, C);
        d->b2 = add_vector(m, p, "b2", C, 0);
        snprintf(q, sizeof q, "dec.%d.ln3", l);
        add_layernorm(m, q, C, &d->ln3_w, &d->ln3_b);
    }
    if (s->pre_norm) {
        add_layernorm(m, "enc.ln_final", C, &m->enc_lnf_w, &m->enc_lnf_b);
        add_layernorm(m, "dec.ln_final", C, &m->dec_lnf_w, &m->dec_lnf_b);
    }
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = xcalloc(m->nparams, sizeof(real));
    m->pe = xmalloc((size_t)s->max_len * C * sizeof(real));
    positions_table(m->pe, (size_t)s->max_len, C);
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
    arrfree(m->tensors);
    free(m->params);
    free(m->grads);
    free(m->enc);
    free(m->dec);
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

// ---------------------------------------------------------------- activations

typedef struct {
    real *ln, *mean, *rstd, *res;   // LN output & stats; the sublayer output, then the residual sum in place
} SubActs;

typedef struct {
    SubActs attn, ffn;
    real *qkv, *att, *probs, *h;
} EncActs;

typedef struct {
    SubActs self, cross, ffn;
    real *qkv, *att, *probs, *q, *kv, *catt, *cprobs, *h;
} DecActs;

// Sizes of one carve: real products for a batch, or bounds for the capacity.
typedef struct {
    size_t B, ns, nt, pss, ptt, pts;
} Dims;

struct Acts {
    real *buf;
    size_t cap;                  // reals
    Dims max;
    int with_grads;
    size_t out_rows;             // training: the output layer's chunk of positions
    // views, re-carved per batch
    real *enc_x0, *dec_x0, *enc_final, *enc_fmean, *enc_frstd, *dec_final, *dec_fmean, *dec_frstd;
    EncActs *enc;
    DecActs *dec;
    real *logits, *loss, *nll, *xent_stats;
    // gradient scratch
    real *g_a, *g_b, *g_c, *g_d, *g_e, *g_enc, *g_wide, *g_wide2, *g_f1, *g_probs, *ffn_scratch;
    int *last_ids;
};

// Training computes the output layer OUT_ROWS target positions at a time, so
// a training arena holds that many rows of logits rather than all N x V (at
// base: 256 x 32000 floats instead of 1024 x 32000). An inference arena keeps
// one row per position: model_next_logits returns a row per sentence.
enum { OUT_ROWS = 256 };
static size_t logits_rows(const Acts *a, size_t nt) {
    return a->with_grads && nt > a->out_rows ? a->out_rows : nt;
}

void acts_set_output_rows(Acts *a, size_t rows) {
    if (rows < 1 || rows > OUT_ROWS) {
        fprintf(stderr, "nmt: internal error: output chunk of %zu rows (1..%d)\n", rows, (int)OUT_ROWS);
        abort();
    }
    a->out_rows = rows;
}

static real *take(real **cur, size_t n) {
    real *p = *cur;
    *cur += (n + 15) & ~(size_t)15;
    return p;
}

static void carve_sub(SubActs *s, real **cur, size_t n, size_t C) {
    s->ln = take(cur, n * C);
    s->mean = take(cur, n);
    s->rstd = take(cur, n);
    s->res = take(cur, n * C);
}

// Lays out every view from `base`; returns the number of reals used.
// With base == NULL it only measures.
static size_t carve(Acts *a, const Model *m, real *base, const Dims *d) {
    const ModelShape *s = &m->s;
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff, H = (size_t)s->heads, V = (size_t)s->tgt_vocab;
    real *start = base ? base : (real *)(uintptr_t)64, *cur = start;
    a->enc_x0 = take(&cur, d->ns * C);
    a->dec_x0 = take(&cur, d->nt * C);
    for (int l = 0; l < s->enc_layers; l++) {
        EncActs *e = &a->enc[l];
        carve_sub(&e->attn, &cur, d->ns, C);
        carve_sub(&e->ffn, &cur, d->ns, C);
        e->qkv = take(&cur, d->ns * 3 * C);
        e->att = take(&cur, d->ns * C);
        e->probs = take(&cur, H * d->pss);
        e->h = take(&cur, d->ns * F);
    }
    for (int l = 0; l < s->dec_layers; l++) {
        DecActs *e = &a->dec[l];
        carve_sub(&e->self, &cur, d->nt, C);
        carve_sub(&e->cross, &cur, d->nt, C);
        carve_sub(&e->ffn, &cur, d->nt, C);
        e->qkv = take(&cur, d->nt * 3 * C);
        e->att = take(&cur, d->nt * C);
        e->probs = take(&cur, H * d->ptt);
        e->q = take(&cur, d->nt * C);
        e->kv = take(&cur, d->ns * 2 * C);
        e->catt = take(&cur, d->nt * C);
        e->cprobs = take(&cur, H * d->pts);
        e->h = take(&cur, d->nt * F);
    }
    a->enc_final = take(&cur, d->ns * C);
    a->enc_fmean = take(&cur, d->ns);
    a->enc_frstd = take(&cur, d->ns);
    a->dec_final = take(&cur, d->nt * C);
    a->dec_fmean = take(&cur, d->nt);
    a->dec_frstd = take(&cur, d->nt);
    a->loss = take(&cur, d->nt);
    a->nll = take(&cur, d->nt);
    a->xent_stats = take(&cur, 2 * d->nt);
    size_t n = d->ns > d->nt ? d->ns : d->nt;
    size_t pmax = d->pss > d->ptt ? d->pss : d->ptt;
    if (d->pts > pmax) pmax = d->pts;
    // Dropout scratch (attention weights, FFN hidden layer); the backward pass
    // uses both as scratch too.
    a->g_probs = take(&cur, H * pmax);
    a->ffn_scratch = take(&cur, n * F);
    a->last_ids = (int *)take(&cur, d->B);
    if (a->with_grads) a->g_a = take(&cur, n * C);
    // The logits (a chunk of positions, in training) live only inside the
    // output layer, which has finished with them before the other gradient
    // buffers come into use: they share memory.
    real *shared = cur;
    a->logits = take(&cur, logits_rows(a, d->nt) * V);
    real *logits_end = cur;
    cur = shared;
    if (a->with_grads) {
        a->g_b = take(&cur, n * C);
        a->g_c = take(&cur, n * C);
        a->g_d = take(&cur, n * C);
        a->g_e = take(&cur, n * C);
        a->g_enc = take(&cur, d->ns * C);
        a->g_wide = take(&cur, n * 3 * C);
        a->g_wide2 = take(&cur, d->ns * 2 * C);
        a->g_f1 = take(&cur, n * F);
    }
    if (cur < logits_end) cur = logits_end;
    return (size_t)(cur - start);
}

Acts *acts_create(const Model *m, size_t max_tokens, size_t max_src, size_t max_tgt, int with_grads) {
    Acts *a = xcalloc(1, sizeof *a);
    a->with_grads = with_grads;
    a->out_rows = OUT_ROWS;
    a->enc = xcalloc((size_t)m->s.enc_layers, sizeof *a->enc);
    a->dec = xcalloc((size_t)m->s.dec_layers, sizeof *a->dec);
    // Bounds: B*S <= max_tokens and S <= max_src, so B*S*S <= max_tokens*max_src, etc.
    Dims d = {max_tokens, max_tokens, max_tokens, max_tokens * max_src, max_tokens * max_tgt,
              max_tokens * (max_src < max_tgt ? max_src : max_tgt)};
    a->max = d;
    a->cap = carve(a, m, NULL, &d);
    a->buf = xcalloc(a->cap, sizeof(real));
    return a;
}

void acts_free(Acts *a) {
    if (!a) return;
    free(a->buf);
    free(a->enc);
    free(a->dec);
    free(a);
}

size_t acts_bytes(const Acts *a) { return a->cap * sizeof(real); }

static void acts_carve_batch(Acts *a, const Model *m, const Batch *b) {
    Dims d = {b->B, b->B * b->S, b->B * b->T, b->B * b->S * b->S, b->B * b->T * b->T, b->B * b->T * b->S};
    if (d.ns > a->max.ns || d.nt > a->max.nt || d.pss > a->max.pss || d.ptt > a->max.ptt || d.pts > a->max.pts) {
        fprintf(stderr, "nmt: internal error: batch (B=%zu S=%zu T=%zu) exceeds the activation arena\n", b->B, b->S, b->T);
        abort();
    }
    carve(a, m, a->buf, &d);
}

// ---------------------------------------------------------------- forward

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

// Zeroing and copying the backward pass's buffers (megabytes at the larger
// shapes) is split over the threads like every other pass.
static void zero(real *p, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < n; c += 16384) memset(p + c, 0, (n - c < 16384 ? n - c : 16384) * sizeof(real));
}
static void copy(real *dst, const real *src, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < n; c += 16384) memcpy(dst + c, src + c, (n - c < 16384 ? n - c : 16384) * sizeof(real));
}

void model_zero_grads(Model *m) { zero(m->grads, m->nparams); }

// Dropout sites: each (layer, place) draws from its own stream.
enum { SITE_EMB_SRC, SITE_EMB_TGT, SITE_ATTN_OUT, SITE_ATTN_W, SITE_FFN_H, SITE_FFN_OUT,
       SITE_CROSS_OUT, SITE_CROSS_W, SITE_COUNT };
static uint64_t site_key(uint64_t dropout_key, int stack, int layer, int site) {
    return rng_key(dropout_key, (uint64_t)stack * 1000 + (uint64_t)layer, (uint64_t)site);
}

typedef struct {
    const Model *m;
    int train;
    uint64_t key;
} Ctx;

static real rate(const Ctx *c, real p) { return c->train && c->key ? p : 0; }

// Sublayer input: post-norm feeds x itself, pre-norm feeds LN(x).
static const real *sub_input(const Ctx *c, SubActs *s, const real *x, size_t lnw, size_t lnb, size_t N) {
    const Model *m = c->m;
    if (!m->s.pre_norm) return x;
    layernorm_forward(s->ln, s->mean, s->rstd, x, P(lnw), P(lnb), N, (size_t)m->s.d_model);
    return s->ln;
}

// Sublayer output, written by F into s->res: dropout and the residual add
// happen in place (the backward pass needs neither F's output nor the mask,
// which it draws again). Returns the layer stream after this sublayer.
static const real *sub_output(const Ctx *c, SubActs *s, const real *x, size_t lnw, size_t lnb, size_t N, uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model;
    dropout_forward(s->res, s->res, N * C, rate(c, m->s.dropout), key);
    residual_forward(s->res, x, s->res, N * C);
    if (m->s.pre_norm) return s->res;
    layernorm_forward(s->ln, s->mean, s->rstd, s->res, P(lnw), P(lnb), N, C);
    return s->ln;
}

static void ffn_forward(const Ctx *c, real *z, real *h, real *scratch, const real *u,
                        size_t w1, size_t b1, size_t w2, size_t b2, size_t N, uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, F = (size_t)m->s.d_ff;
    linear_relu_forward(h, u, P(w1), P(b1), N, C, F);
    const real *hd = h;
    real p = rate(c, m->s.ffn_dropout);
    if (p > 0) {
        dropout_forward(scratch, h, N * F, p, key);
        hd = scratch;
    }
    linear_forward(z, hd, P(w2), P(b2), N, F, C);
}

static AttnShape attn_shape(const Ctx *c, size_t B, size_t Tq, size_t Tk, const int *klen, int causal,
                            size_t ldq, size_t ldk, uint64_t key) {
    const ModelShape *s = &c->m->s;
    AttnShape a = {B, Tq, Tk, (size_t)s->heads, (size_t)(s->d_model / s->heads), ldq, ldk, ldk, 0, 0, 0,
                   klen, causal, rate(c, s->attn_dropout), key};
    return a;
}

static const real *encoder_forward(const Ctx *c, Acts *a, const Batch *b) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, N = b->B * b->S;
    embed_forward(a->enc_x0, b->src, P(m->src_emb), m->pe, b->B, b->S, C, 0, (real)sqrt((double)C));
    dropout_forward(a->enc_x0, a->enc_x0, N * C, rate(c, m->s.dropout), site_key(c->key, 0, 0, SITE_EMB_SRC));
    const real *x = a->enc_x0;
    for (int l = 0; l < m->s.enc_layers; l++) {
        const EncParams *p = &m->enc[l];
        EncActs *e = &a->enc[l];
        const real *u = sub_input(c, &e->attn, x, p->ln1_w, p->ln1_b, N);
        linear_forward(e->qkv, u, P(p->wqkv), P(p->bqkv), N, C, 3 * C);
        AttnShape as = attn_shape(c, b->B, b->S, b->S, b->src_len, 0, 3 * C, 3 * C, site_key(c->key, 0, l, SITE_ATTN_W));
        attention_forward(e->att, e->probs, a->g_probs, e->qkv, e->qkv + C, e->qkv + 2 * C, &as);
        linear_forward(e->attn.res, e->att, P(p->wo), P(p->bo), N, C, C);
        x = sub_output(c, &e->attn, x, p->ln1_w, p->ln1_b, N, site_key(c->key, 0, l, SITE_ATTN_OUT));
        u = sub_input(c, &e->ffn, x, p->ln2_w, p->ln2_b, N);
        ffn_forward(c, e->ffn.res, e->h, a->ffn_scratch, u, p->w1, p->b1, p->w2, p->b2, N, site_key(c->key, 0, l, SITE_FFN_H));
        x = sub_output(c, &e->ffn, x, p->ln2_w, p->ln2_b, N, site_key(c->key, 0, l, SITE_FFN_OUT));
    }
    if (m->s.pre_norm) {
        layernorm_forward(a->enc_final, a->enc_fmean, a->enc_frstd, x, P(m->enc_lnf_w), P(m->enc_lnf_b), N, C);
        x = a->enc_final;
    }
    return x;
}

static const real *decoder_forward(const Ctx *c, Acts *a, const Batch *b, const real *enc_out) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, N = b->B * b->T, Ns = b->B * b->S;
    embed_forward(a->dec_x0, b->tgt_in, P(m->tgt_emb), m->pe, b->B, b->T, C, 0, (real)sqrt((double)C));
    dropout_forward(a->dec_x0, a->dec_x0, N * C, rate(c, m->s.dropout), site_key(c->key, 1, 0, SITE_EMB_TGT));
    const real *x = a->dec_x0;
    for (int l = 0; l < m->s.dec_layers; l++) {
        const DecParams *p = &m->dec[l];
        DecActs *e = &a->dec[l];
        const real *u = sub_input(c, &e->self, x, p->ln1_w, p->ln1_b, N);
        linear_forward(e->qkv, u, P(p->wqkv), P(p->bqkv), N, C, 3 * C);
        AttnShape as = attn_shape(c, b->B, b->T, b->T, b->tgt_len, 1, 3 * C, 3 * C, site_key(c->key, 1, l, SITE_ATTN_W));
        attention_forward(e->att, e->probs, a->g_probs, e->qkv, e->qkv + C, e->qkv + 2 * C, &as);
        linear_forward(e->self.res, e->att, P(p->wo), P(p->bo), N, C, C);
        x = sub_output(c, &e->self, x, p->ln1_w, p->ln1_b, N, site_key(c->key, 1, l, SITE_ATTN_OUT));

        u = sub_input(c, &e->cross, x, p->ln2_w, p->ln2_b, N);
        linear_forward(e->q, u, P(p->cq_w), P(p->cq_b), N, C, C);
        linear_forward(e->kv, enc_out, P(p->ckv_w), P(p->ckv_b), Ns, C, 2 * C);
        AttnShape cs = attn_shape(c, b->B, b->T, b->S, b->src_len, 0, C, 2 * C, site_key(c->key, 1, l, SITE_CROSS_W));
        attention_forward(e->catt, e->cprobs, a->g_probs, e->q, e->kv, e->kv + C, &cs);
        linear_forward(e->cross.res, e->catt, P(p->co_w), P(p->co_b), N, C, C);
        x = sub_output(c, &e->cross, x, p->ln2_w, p->ln2_b, N, site_key(c->key, 1, l, SITE_CROSS_OUT));

        u = sub_input(c, &e->ffn, x, p->ln3_w, p->ln3_b, N);
        ffn_forward(c, e->ffn.res, e->h, a->ffn_scratch, u, p->w1, p->b1, p->w2, p->b2, N, site_key(c->key, 1, l, SITE_FFN_H));
        x = sub_output(c, &e->ffn, x, p->ln3_w, p->ln3_b, N, site_key(c->key, 1, l, SITE_FFN_OUT));
    }
    if (m->s.pre_norm) {
        layernorm_forward(a->dec_final, a->dec_fmean, a->dec_frstd, x, P(m->dec_lnf_w), P(m->dec_lnf_b), N, C);
        x = a->dec_final;
    }
    return x;
}

// The output projection and the loss over rows of the decoder output y, a
// chunk of at most logits_rows() positions at a time, so only one chunk of
// logits exists. With grad_scale != 0 each chunk's logit gradient (scaled)
// goes at once into g_a, the gradient of y, and into the output projection's
// gradient. *fwd_seconds (if given) gets the time spent on the logits and the
// loss, so that `nmt bench` can still tell forward from backward.
static double output_layer(Model *m, Acts *a, const Batch *b, const real *y, real label_smoothing,
                           real grad_scale, double *nll_sum, double *fwd_seconds) {
    size_t C = (size_t)m->s.d_model, V = (size_t)m->s.tgt_vocab, N = b->B * b->T;
    size_t rows = logits_rows(a, N);
    double t_fwd = 0;
    for (size_t r0 = 0; r0 < N; r0 += rows) {
        size_t n = N - r0 < rows ? N - r0 : rows;
        double t0 = fwd_seconds ? now_seconds() : 0;
        gemm(0, 1, n, V, C, 1, y + r0 * C, C, P(m->out_proj), C, 0, a->logits, V);
        xent_forward(a->loss + r0, a->nll + r0, a->xent_stats + 2 * r0, a->logits, b->tgt_out + r0, n, V,
                     TOK_PAD, label_smoothing);
        if (fwd_seconds) t_fwd += now_seconds() - t0;
        if (grad_scale == 0) continue;
        // The logits have one consumer: their gradient overwrites them.
        xent_backward(a->logits, a->logits, a->xent_stats + 2 * r0, b->tgt_out + r0, n, V, TOK_PAD,
                      label_smoothing, grad_scale);
        GemmCall gx = {0, 0, n, C, V, 1, a->logits, V, P(m->out_proj), C, 0, a->g_a + r0 * C, C, NULL, 0};
        GemmCall gw = {1, 0, V, C, n, 1, a->logits, V, y + r0 * C, C, 1, G(m->out_proj), C, NULL, 0};
        gemm_pair(&gx, &gw);
    }
    if (fwd_seconds) *fwd_seconds = t_fwd;
    double loss = 0, nll = 0;
    for (size_t i = 0; i < N; i++) {  // fixed order: same bits for any thread count
        loss += a->loss[i];
        nll += a->nll[i];
    }
    if (nll_sum) *nll_sum = nll;
    return loss;
}

double model_forward(Model *m, Acts *a, const Batch *b, real label_smoothing,
                     int train, uint64_t dropout_key, double *nll_sum) {
    acts_carve_batch(a, m, b);
    Ctx c = {m, train, dropout_key};
    const real *enc = encoder_forward(&c, a, b);
    const real *y = decoder_forward(&c, a, b, enc);
    return output_layer(m, a, b, y, label_smoothing, 0, nll_sum, NULL);
}

// ---------------------------------------------------------------- backward

// Backward through the sublayer wrapper, in two halves around F's own backward.
// On entry g->gy is the gradient of the stream after the sublayer; after
// sub_backward_end it holds the gradient of the stream before it. In between,
// g->dz is the gradient of F's output and F adds its input gradient into the
// buffer sub_backward_begin returned.
typedef struct {
    real *gy, *dz, *du, *tmp;
} SubGrads;

// Step 1: from the output gradient to dz (and the residual path into dx).
// Returns the buffer F must accumulate its input gradient into.
static real *sub_backward_begin(const Ctx *c, SubActs *s, SubGrads *g, size_t lnw, size_t lnb, size_t N,
                                uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, n = N * C;
    // dz = drop'(.) is written with dropout_forward: the same mask and scale,
    // and no zeroed buffer to add into.
    if (m->s.pre_norm) {
        // y = x + drop(z): dx = gy (kept in place), dz = drop'(gy); F's input is LN(x).
        dropout_forward(g->dz, g->gy, n, rate(c, m->s.dropout), key);
        zero(g->du, n);
        return g->du;
    }
    // y = LN(r), r = x + drop(z): dr into tmp; dx = dr; F's input is x itself.
    zero(g->tmp, n);
    layernorm_backward(g->tmp, G(lnw), G(lnb), g->gy, s->res, P(lnw), s->mean, s->rstd, N, C);
    dropout_forward(g->dz, g->tmp, n, rate(c, m->s.dropout), key);
    real *t = g->gy;  // the stream gradient now lives in tmp
    g->gy = g->tmp;
    g->tmp = t;
    return g->gy;
}

// Step 2 (pre-norm only): du (gradient of LN(x)) back into the stream.
static void sub_backward_end(const Ctx *c, SubActs *s, SubGrads *g, const real *x,
                             size_t lnw, size_t lnb, size_t N) {
    const Model *m = c->m;
    if (!m->s.pre_norm) return;
    layernorm_backward(g->gy, G(lnw), G(lnb), g->du, x, P(lnw), s->mean, s->rstd, N, (size_t)m->s.d_model);
}

static void ffn_backward(const Ctx *c, Acts *a, real *du, const real *dz, const real *h, const real *u,
                         size_t w1, size_t b1, size_t w2, size_t b2, size_t N, uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, F = (size_t)m->s.d_ff, n = N * F;
    real p = rate(c, m->s.ffn_dropout);
    const real *hd = h;
    real *tmp = a->ffn_scratch;  // the forward pass's dropout scratch
    if (p > 0) {
        dropout_forward(tmp, h, n, p, key);  // regenerate the dropped hidden layer
        hd = tmp;
    }
    zero(a->g_f1, n);
    linear_backward(a->g_f1, G(w2), G(b2), dz, hd, P(w2), N, F, C);
    relu_dropout_backward(a->g_f1, h, n, p, key);
    linear_backward(du, G(w1), G(b1), a->g_f1, u, P(w1), N, C, F);
}

// Self-attention backward: dz -> du (gradient of the sublayer input u).
static void self_attn_backward(const Ctx *c, Acts *a, real *du, const real *dz, const real *qkv,
                               const real *att, const real *probs, const real *u,
                               size_t wqkv, size_t bqkv, size_t wo, size_t bo, const AttnShape *as, size_t N) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model;
    real *datt = a->g_c;
    zero(datt, N * C);
    linear_backward(datt, G(wo), G(bo), dz, att, P(wo), N, C, C);
    real *dqkv = a->g_wide;
    zero(dqkv, N * 3 * C);
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, a->g_probs, datt, probs, qkv, qkv + C, qkv + 2 * C, as);
    linear_backward(du, G(wqkv), G(bqkv), dqkv, u, P(wqkv), N, C, 3 * C);
}

// The final LayerNorm of a pre-norm stack: the stream gradient moves to tmp.
static void final_norm_backward(const Ctx *c, SubGrads *g, size_t lnw, size_t lnb, const real *x,
                                const real *mean, const real *rstd, size_t N) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model;
    zero(g->tmp, N * C);
    layernorm_backward(g->tmp, G(lnw), G(lnb), g->gy, x, P(lnw), mean, rstd, N, C);
    real *t = g->gy;
    g->gy = g->tmp;
    g->tmp = t;
}

// x0 = dropout(table[ids] * sqrt(C) + positions): the stream gradient into the table.
static void embedding_backward(const Ctx *c, SubGrads *g, size_t table, const int *ids, size_t N, uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model;
    dropout_forward(g->tmp, g->gy, N * C, rate(c, m->s.dropout), key);  // drop'(gy), written
    embed_backward(G(table), g->tmp, ids, N, C, (real)sqrt((double)C));
}

// The FFN sublayer (wrapper included) of either stack.
static void ffn_sublayer_backward(const Ctx *c, Acts *a, SubGrads *g, SubActs *s, const real *x, const real *h,
                                  size_t lnw, size_t lnb, size_t w1, size_t b1, size_t w2, size_t b2, size_t N,
                                  int stack, int l) {
    int pre = c->m->s.pre_norm;
    real *du = sub_backward_begin(c, s, g, lnw, lnb, N, site_key(c->key, stack, l, SITE_FFN_OUT));
    ffn_backward(c, a, du, g->dz, h, pre ? s->ln : x, w1, b1, w2, b2, N, site_key(c->key, stack, l, SITE_FFN_H));
    sub_backward_end(c, s, g, x, lnw, lnb, N);
}

static void encoder_backward(const Ctx *c, Acts *a, const Batch *b, real *gy) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, N = b->B * b->S;
    // Stream buffers g_a/g_e alternate; g_b, g_d hold dz and du; g_c, g_wide,
    // g_wide2, g_f1, g_probs and ffn_scratch are used inside the sublayer backwards.
    SubGrads g = {gy, a->g_b, a->g_d, a->g_e};
    if (m->s.pre_norm)
        final_norm_backward(c, &g, m->enc_lnf_w, m->enc_lnf_b, a->enc[m->s.enc_layers - 1].ffn.res, a->enc_fmean,
                            a->enc_frstd, N);
    for (int l = m->s.enc_layers - 1; l >= 0; l--) {
        const EncParams *p = &m->enc[l];
        EncActs *e = &a->enc[l];
        const real *x_attn = l == 0 ? a->enc_x0 : (m->s.pre_norm ? a->enc[l - 1].ffn.res : a->enc[l - 1].ffn.ln);
        const real *x_ffn = m->s.pre_norm ? e->attn.res : e->attn.ln;
        ffn_sublayer_backward(c, a, &g, &e->ffn, x_ffn, e->h, p->ln2_w, p->ln2_b, p->w1, p->b1, p->w2, p->b2, N, 0, l);
        // Self-attention sublayer
        real *du = sub_backward_begin(c, &e->attn, &g, p->ln1_w, p->ln1_b, N, site_key(c->key, 0, l, SITE_ATTN_OUT));
        AttnShape as = attn_shape(c, b->B, b->S, b->S, b->src_len, 0, 3 * C, 3 * C, site_key(c->key, 0, l, SITE_ATTN_W));
        self_attn_backward(c, a, du, g.dz, e->qkv, e->att, e->probs, m->s.pre_norm ? e->attn.ln : x_attn,
                           p->wqkv, p->bqkv, p->wo, p->bo, &as, N);
        sub_backward_end(c, &e->attn, &g, x_attn, p->ln1_w, p->ln1_b, N);
    }
    embedding_backward(c, &g, m->src_emb, b->src, N, site_key(c->key, 0, 0, SITE_EMB_SRC));
}

// Returns the gradient of the encoder output (in a->g_enc).
static void decoder_backward(const Ctx *c, Acts *a, const Batch *b, real *gy, const real *enc_out) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, N = b->B * b->T, Ns = b->B * b->S;
    SubGrads g = {gy, a->g_b, a->g_d, a->g_e};
    zero(a->g_enc, Ns * C);
    if (m->s.pre_norm)
        final_norm_backward(c, &g, m->dec_lnf_w, m->dec_lnf_b, a->dec[m->s.dec_layers - 1].ffn.res, a->dec_fmean,
                            a->dec_frstd, N);
    for (int l = m->s.dec_layers - 1; l >= 0; l--) {
        const DecParams *p = &m->dec[l];
        DecActs *e = &a->dec[l];
        const real *x_self = l == 0 ? a->dec_x0 : (m->s.pre_norm ? a->dec[l - 1].ffn.res : a->dec[l - 1].ffn.ln);
        const real *x_cross = m->s.pre_norm ? e->self.res : e->self.ln;
        const real *x_ffn = m->s.pre_norm ? e->cross.res : e->cross.ln;
        ffn_sublayer_backward(c, a, &g, &e->ffn, x_ffn, e->h, p->ln3_w, p->ln3_b, p->w1, p->b1, p->w2, p->b2, N, 1, l);
        // Cross-attention: q from the decoder stream, k/v from the encoder output.
        real *du = sub_backward_begin(c, &e->cross, &g, p->ln2_w, p->ln2_b, N, site_key(c->key, 1, l, SITE_CROSS_OUT));
        {
            real *datt = a->g_c;
            zero(datt, N * C);
            linear_backward(datt, G(p->co_w), G(p->co_b), g.dz, e->catt, P(p->co_w), N, C, C);
            real *dq = a->g_wide, *dkv = a->g_wide2;
            zero(dq, N * C);
            zero(dkv, Ns * 2 * C);
            AttnShape cs = attn_shape(c, b->B, b->T, b->S, b->src_len, 0, C, 2 * C, site_key(c->key, 1, l, SITE_CROSS_W));
            attention_backward(dq, dkv, dkv + C, a->g_probs, datt, e->cprobs, e->q, e->kv, e->kv + C, &cs);
            linear_backward(du, G(p->cq_w), G(p->cq_b), dq, m->s.pre_norm ? e->cross.ln : x_cross, P(p->cq_w), N, C, C);
            linear_backward(a->g_enc, G(p->ckv_w), G(p->ckv_b), dkv, enc_out, P(p->ckv_w), Ns, C, 2 * C);
        }
        sub_backward_end(c, &e->cross, &g, x_cross, p->ln2_w, p->ln2_b, N);
        // Masked self-attention
        du = sub_backward_begin(c, &e->self, &g, p->ln1_w, p->ln1_b, N, site_key(c->key, 1, l, SITE_ATTN_OUT));
        AttnShape as = attn_shape(c, b->B, b->T, b->T, b->tgt_len, 1, 3 * C, 3 * C, site_key(c->key, 1, l, SITE_ATTN_W));
        self_attn_backward(c, a, du, g.dz, e->qkv, e->att, e->probs, m->s.pre_norm ? e->self.ln : x_self,
                           p->wqkv, p->bqkv, p->wo, p->bo, &as, N);
        sub_backward_end(c, &e->self, &g, x_self, p->ln1_w, p->ln1_b, N);
    }
    embedding_backward(c, &g, m->tgt_emb, b->tgt_in, N, site_key(c->key, 1, 0, SITE_EMB_TGT));
}

double model_forward_backward(Model *m, Acts *a, const Batch *b, real label_smoothing,
                              uint64_t dropout_key, real grad_scale, double *nll_sum,
                              double *fwd_seconds) {
    if (!a->with_grads || grad_scale == 0) {
        fprintf(stderr, "nmt: internal error: model_forward_backward needs a training arena and a gradient scale\n");
        abort();
    }
    double t0 = fwd_seconds ? now_seconds() : 0;
    acts_carve_batch(a, m, b);
    Ctx c = {m, 1, dropout_key};
    const real *enc = encoder_forward(&c, a, b);
    const real *y = decoder_forward(&c, a, b, enc);
    double t_out = 0;
    if (fwd_seconds) *fwd_seconds = now_seconds() - t0;
    double loss = output_layer(m, a, b, y, label_smoothing, grad_scale, nll_sum, fwd_seconds ? &t_out : NULL);
    if (fwd_seconds) *fwd_seconds += t_out;
    size_t C = (size_t)m->s.d_model;
    decoder_backward(&c, a, b, a->g_a, enc);
    // The encoder output's gradient was gathered in g_enc; move it to a stream buffer.
    size_t Ns = b->B * b->S;
    copy(a->g_a, a->g_enc, Ns * C);
    encoder_backward(&c, a, b, a->g_a);
    return loss;
}

// ---------------------------------------------------------------- inference

const real *model_next_logits(Model *m, Acts *a, const Batch *b) {
    // Straightforward: the whole prefix (and the encoder) are recomputed at
    // every step. Incremental decoding with cached keys/values is decode.c's job.
    if (logits_rows(a, b->B * b->T) < b->B) {
        fprintf(stderr, "nmt: internal error: model_next_logits needs an inference arena\n");
        abort();
    }
    acts_carve_batch(a, m, b);
    Ctx c = {m, 0, 0};
    const real *enc = encoder_forward(&c, a, b);
    const real *y = decoder_forward(&c, a, b, enc);
    size_t C = (size_t)m->s.d_model, V = (size_t)m->s.tgt_vocab;
    for (size_t i = 0; i < b->B; i++) {
        size_t t = (size_t)b->tgt_len[i] - 1;
        gemm(0, 1, 1, V, C, 1, y + (i * b->T + t) * C, C, P(m->out_proj), C, 0, a->logits + i * V, V);
    }
    return a->logits;
}

// ---------------------------------------------------------------- incremental decoding

struct DecodeState {
    size_t max_sources, group, max_src, max_tgt, layers, C, B, S, rows;
    Acts *enc;                 // encoder arena (inference)
    real **kv;                 // per decoder layer: cross keys/values (B, S, 2C)
    real **kcache, **vcache;   // per decoder layer: (rows, max_tgt, C)
    real *kv_tmp;              // reorder scratch (rows, max_tgt, C)
    SubActs sub[2];
    real *x, *qkv, *att, *probs, *scratch, *q, *h, *ffn_scratch, *fin, *fmean, *frstd, *logits;
    real *out_t;               // the output projection transposed (C, V)
    int *self_len, *cross_len;
};

DecodeState *decode_state_create(const Model *m, size_t max_sources, size_t group, size_t max_src, size_t max_tgt) {
    const ModelShape *s = &m->s;
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff, H = (size_t)s->heads, V = (size_t)s->tgt_vocab;
    size_t L = (size_t)s->dec_layers, R = max_sources * group;
    DecodeState *d = xcalloc(1, sizeof *d);
    d->max_sources = max_sources;
    d->group = group;
    d->max_src = max_src;
    d->max_tgt = max_tgt;
    d->layers = L;
    d->C = C;
    d->enc = acts_create(m, max_sources * max_src, max_src, 1, 0);
    d->kv = xcalloc(L, sizeof *d->kv);
    d->kcache = xcalloc(L, sizeof *d->kcache);
    d->vcache = xcalloc(L, sizeof *d->vcache);
    for (size_t l = 0; l < L; l++) {
        d->kv[l] = xmalloc(max_sources * max_src * 2 * C * sizeof(real));
        d->kcache[l] = xmalloc(R * max_tgt * C * sizeof(real));
        d->vcache[l] = xmalloc(R * max_tgt * C * sizeof(real));
    }
    d->kv_tmp = xmalloc(R * max_tgt * C * sizeof(real));
    for (int i = 0; i < 2; i++) {
        d->sub[i].ln = xmalloc(R * C * sizeof(real));
        d->sub[i].mean = xmalloc(R * sizeof(real));
        d->sub[i].rstd = xmalloc(R * sizeof(real));
        d->sub[i].res = xmalloc(R * C * sizeof(real));
    }
    size_t pmax = max_tgt > max_src ? max_tgt : max_src;
    d->x = xmalloc(R * C * sizeof(real));
    d->qkv = xmalloc(R * 3 * C * sizeof(real));
    d->att = xmalloc(R * C * sizeof(real));
    d->probs = xmalloc(R * H * pmax * sizeof(real));
    d->scratch = xmalloc(R * H * pmax * sizeof(real));
    d->q = xmalloc(R * C * sizeof(real));
    d->h = xmalloc(R * F * sizeof(real));
    d->ffn_scratch = xmalloc(R * F * sizeof(real));
    d->fin = xmalloc(R * C * sizeof(real));
    d->fmean = xmalloc(R * sizeof(real));
    d->frstd = xmalloc(R * sizeof(real));
    d->logits = xmalloc(R * V * sizeof(real));
    // The logits of a few rows against the (V, C) projection would have the
    // product pack (transpose) all of it at every step; a (C, V) copy made once
    // is read in place. The same sums in the same order: the same bits.
    d->out_t = xmalloc(C * V * sizeof(real));
    const real *w = P(m->out_proj);
    #pragma omp parallel for schedule(static)
    for (size_t v0 = 0; v0 < V; v0 += 16)  // 16 rows of w at a time: whole cache lines both ways
        for (size_t c = 0; c < C; c++)
            for (size_t v = v0; v < V && v < v0 + 16; v++) d->out_t[c * V + v] = w[v * C + c];
    d->self_len = xmalloc(R * sizeof(int));
    d->cross_len = xmalloc(R * sizeof(int));
    return d;
}

void decode_state_free(DecodeState *d) {
    if (!d) return;
    acts_free(d->enc);
    for (size_t l = 0; l < d->layers; l++) {
        free(d->kv[l]);
        free(d->kcache[l]);
        free(d->vcache[l]);
    }
    free(d->kv);
    free(d->kcache);
    free(d->vcache);
    free(d->kv_tmp);
    for (int i = 0; i < 2; i++) {
        free(d->sub[i].ln);
        free(d->sub[i].mean);
        free(d->sub[i].rstd);
        free(d->sub[i].res);
    }
    free(d->x); free(d->qkv); free(d->att); free(d->probs); free(d->scratch); free(d->q);
    free(d->h); free(d->ffn_scratch); free(d->fin); free(d->fmean); free(d->frstd); free(d->logits);
    free(d->out_t);
    free(d->self_len); free(d->cross_len);
    free(d);
}

void model_decode_begin(Model *m, DecodeState *d, const int *src, const int *src_len, size_t B, size_t S) {
    size_t C = (size_t)m->s.d_model;
    Batch b = {B, S, 1, (int *)src, (int *)src_len, NULL, NULL, NULL, 0};
    acts_carve_batch(d->enc, m, &b);
    Ctx c = {m, 0, 0};
    const real *enc = encoder_forward(&c, d->enc, &b);
    for (size_t l = 0; l < d->layers; l++)
        linear_forward(d->kv[l], enc, P(m->dec[l].ckv_w), P(m->dec[l].ckv_b), B * S, C, 2 * C);
    d->B = B;
    d->S = S;
    d->rows = B * d->group;
    for (size_t r = 0; r < d->rows; r++) d->cross_len[r] = src_len[r / d->group];
}

const real *model_decode_step(Model *m, DecodeState *d, const int *tokens, size_t t) {
    const ModelShape *s = &m->s;
    size_t C = (size_t)s->d_model, H = (size_t)s->heads, D = C / H, R = d->rows, V = (size_t)s->tgt_vocab;
    Ctx c = {m, 0, 0};
    embed_forward(d->x, tokens, P(m->tgt_emb), m->pe, R, 1, C, t, (real)sqrt((double)C));
    for (size_t r = 0; r < R; r++) d->self_len[r] = (int)t + 1;
    const real *x = d->x;
    for (size_t l = 0; l < d->layers; l++) {
        const DecParams *p = &m->dec[l];
        SubActs *sa = &d->sub[l % 2];
        // Masked self-attention over the cached prefix (all rows have t+1 positions).
        const real *u = sub_input(&c, sa, x, p->ln1_w, p->ln1_b, R);
        linear_forward(d->qkv, u, P(p->wqkv), P(p->bqkv), R, C, 3 * C);
        for (size_t r = 0; r < R; r++) {
            memcpy(d->kcache[l] + (r * d->max_tgt + t) * C, d->qkv + r * 3 * C + C, C * sizeof(real));
            memcpy(d->vcache[l] + (r * d->max_tgt + t) * C, d->qkv + r * 3 * C + 2 * C, C * sizeof(real));
        }
        AttnShape as = {R, 1, t + 1, H, D, 3 * C, C, C, 3 * C, d->max_tgt * C, 0, d->self_len, 0, 0, 0};
        attention_forward(d->att, d->probs, d->scratch, d->qkv, d->kcache[l], d->vcache[l], &as);
        linear_forward(sa->res, d->att, P(p->wo), P(p->bo), R, C, C);
        x = sub_output(&c, sa, x, p->ln1_w, p->ln1_b, R, 0);
        // Cross-attention over the encoder output of each row's source.
        sa = &d->sub[(l + 1) % 2];
        u = sub_input(&c, sa, x, p->ln2_w, p->ln2_b, R);
        linear_forward(d->q, u, P(p->cq_w), P(p->cq_b), R, C, C);
        AttnShape cs = {R, 1, d->S, H, D, C, 2 * C, 2 * C, C, d->S * 2 * C, d->group, d->cross_len, 0, 0, 0};
        attention_forward(d->att, d->probs, d->scratch, d->q, d->kv[l], d->kv[l] + C, &cs);
        linear_forward(sa->res, d->att, P(p->co_w), P(p->co_b), R, C, C);
        x = sub_output(&c, sa, x, p->ln2_w, p->ln2_b, R, 0);
        // FFN
        sa = &d->sub[l % 2];
        u = sub_input(&c, sa, x, p->ln3_w, p->ln3_b, R);
        ffn_forward(&c, sa->res, d->h, d->ffn_scratch, u, p->w1, p->b1, p->w2, p->b2, R, 0);
        x = sub_output(&c, sa, x, p->ln3_w, p->ln3_b, R, 0);
    }
    if (s->pre_norm) {
        layernorm_forward(d->fin, d->fmean, d->frstd, x, P(m->dec_lnf_w), P(m->dec_lnf_b), R, C);
        x = d->fin;
    }
    gemm(0, 0, R, V, C, 1, x, C, d->out_t, V, 0, d->logits, V);
    return d->logits;
}

const real *model_decode_cross_attention(const DecodeState *d) {
    // The last attention a step computes is the last layer's cross-attention.
    return d->probs;
}

void model_decode_reorder(DecodeState *d, const int *from, size_t t) {
    size_t R = d->rows, row = d->max_tgt * d->C, used = (t + 1) * d->C;
    // Gather each cache into the spare buffer, which then becomes the cache;
    // the old cache is the spare for the next one (all have the same size).
    for (size_t l = 0; l < d->layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            real **cache = kv ? &d->vcache[l] : &d->kcache[l];
            for (size_t r = 0; r < R; r++) memcpy(d->kv_tmp + r * row, *cache + (size_t)from[r] * row, used * sizeof(real));
            real *old = *cache;
            *cache = d->kv_tmp;
            d->kv_tmp = old;
        }
}
