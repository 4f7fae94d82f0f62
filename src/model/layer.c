// model/layer.c — one encoder layer and one decoder layer, forward and backward.
//
// Each sublayer F (self-attention, cross-attention, FFN) is wrapped the same way:
//   post-norm (the paper): y = LN(x + dropout(F(x)))
//   pre-norm:              y = x + dropout(F(LN(x)))   (+ a final LN per stack)
// Every backward accumulates into the pass's gradient sink (Ctx.sink->dst).
#include "model/internal.h"
#include "common/rng.h"

#include <math.h>
#include <string.h>

#define P(off) (c->m->params + (off))
#define G(off) (c->sink->dst + (off))

uint64_t site_key(const Ctx *c, int stack, int layer, int site) {
    return rng_key(c->key, (uint64_t)stack * 1000 + (uint64_t)layer, (uint64_t)site);
}

real drop_rate(const Ctx *c, real p) { return c->train && c->key ? p : 0; }

static size_t width(const Ctx *c) { return (size_t)c->m->s.d_model; }

static AttnShape attn_shape(const Ctx *c, size_t B, size_t Tq, size_t Tk, const int *klen, int causal,
                            size_t ldq, size_t ldk, uint64_t key) {
    const ModelShape *s = &c->m->s;
    AttnShape a = {.B = B, .Tq = Tq, .Tk = Tk, .H = (size_t)s->heads, .D = (size_t)(s->d_model / s->heads),
                   .ldq = ldq, .ldk = ldk, .ldv = ldk, .klen = klen, .causal = causal,
                   .p_drop = drop_rate(c, s->attn_dropout), .drop_key = key, .bf16 = products_bf16(c->m)};
    return a;
}

// A self-attention's shape: attn_shape plus the window and the relative
// position embeddings (their gradients and scratch for the backward pass).
static AttnShape self_shape(const Ctx *c, const SelfAttnParams *p, const Seq *q, int causal, uint64_t key,
                            real *rel_scratch) {
    size_t C = width(c);
    AttnShape a = attn_shape(c, q->B, q->T, q->T, q->len, causal, 3 * C, 3 * C, key);
    a.window = (size_t)c->m->s.window;
    if (c->m->s.relative) {
        a.rel_max = (size_t)c->m->s.max_rel;
        a.rel_k = P(p->rel_k);
        a.rel_v = P(p->rel_v);
        a.drel_k = c->sink ? G(p->rel_k) : NULL;  // a forward-only pass has no gradients
        a.drel_v = c->sink ? G(p->rel_v) : NULL;
        a.rel_scratch = rel_scratch;
    }
    return a;
}

// ---------------------------------------------------------------- forward

// out (N, M) = relu?(in (N, K) . w + b): its arithmetic is product.c's choice.
static void linear(const Ctx *c, real *out, const real *in, const LinearParams *p, size_t N, size_t K, size_t M,
                   int relu) {
    product_linear(c->m, out, in, p->w, p->b, N, K, M, relu);
}

// dinp += dout . w^T, the weight's and bias's gradients: in the arithmetic
// of the layer's forward product.
static void linear_back(const Ctx *c, real *dinp, const LinearParams *p, const real *dout, const real *in, size_t N,
                        size_t K, size_t M) {
    linear_backward(dinp, G(p->w), G(p->b), dout, in, P(p->w), N, K, M, product_kind(c->m, p->w) == PRODUCT_BF16);
}

// Sublayer input: post-norm feeds x itself, pre-norm feeds LN(x).
static const real *sub_input(const Ctx *c, SubActs *s, const real *x, const NormParams *n, size_t N) {
    if (!c->m->s.pre_norm) return x;
    layernorm_forward(s->ln, s->mean, s->rstd, x, P(n->w), P(n->b), N, width(c));
    return s->ln;
}

// Sublayer output, written by F into s->res: dropout and the residual add
// happen in place (the backward pass needs neither F's output nor the mask,
// which it draws again). Returns the layer stream after this sublayer.
static const real *sub_output(const Ctx *c, SubActs *s, const real *x, const NormParams *n, size_t N,
                              uint64_t key) {
    size_t C = width(c);
    dropout_forward(s->res, s->res, N * C, drop_rate(c, c->m->s.dropout), key);
    residual_forward(s->res, x, s->res, N * C);
    if (c->m->s.pre_norm) return s->res;
    layernorm_forward(s->ln, s->mean, s->rstd, s->res, P(n->w), P(n->b), N, C);
    return s->ln;
}

// The stream after a sublayer, as sub_output returned it.
static const real *sub_stream(const Ctx *c, const SubActs *s) { return c->m->s.pre_norm ? s->res : s->ln; }

// Self-attention sublayer. Without a cache the keys and values are this
// call's own positions (causal or not); with one (T = 1) they are appended to
// it and the query attends over every cached position.
static const real *self_attn_forward(const Ctx *c, const SelfAttnParams *p, SubActs *s, real *qkv, real *att,
                                     real *probs, real *scratch, const real *x, const Seq *q, int causal,
                                     const KVCache *cache, int stack, int l) {
    size_t C = width(c), N = q->B * q->T;
    const real *u = sub_input(c, s, x, &p->norm, N);
    linear(c, qkv, u, &p->qkv, N, C, 3 * C, 0);
    AttnShape as = self_shape(c, p, q, causal, site_key(c, stack, l, SITE_ATTN_W), NULL);
    const real *k = qkv + C, *v = qkv + 2 * C;
    if (cache) {
        for (size_t r = 0; r < N; r++) {
            size_t slot = cache->slot ? (size_t)cache->slot[r] : r;
            real *kt = cache->k + slot * C * cache->cap + cache->pos;
            for (size_t d = 0; d < C; d++) kt[d * cache->cap] = qkv[r * 3 * C + C + d];
            memcpy(cache->v + (slot * cache->cap + cache->pos) * C, qkv + r * 3 * C + 2 * C, C * sizeof(real));
        }
        as.kv_row = cache->slot;
        as.Tk = cache->pos + 1;
        as.ldk = cache->cap;
        as.ldv = C;
        as.k_transposed = 1;
        as.bsq = 3 * C;
        as.bskv = as.bsk = cache->cap * C;
        as.causal = 0;  // every cached position precedes the query
        as.q0 = cache->pos;
        k = cache->k;
        v = cache->v;
    }
    attention_forward(att, probs, scratch, qkv, k, v, &as);
    linear(c, s->res, att, &p->out, N, C, C, 0);
    return sub_output(c, s, x, &p->norm, N, site_key(c, stack, l, SITE_ATTN_OUT));
}

void cross_kv_forward(const Ctx *c, int l, Acts *a, const real *enc, size_t Ns) {
    const CrossAttnParams *p = &c->m->dec[l].cross;
    size_t C = width(c);
    linear(c, a->dec[l].kv, enc, &p->kv, Ns, C, 2 * C, 0);
}

static const real *cross_attn_forward(const Ctx *c, int l, Acts *a, const real *x, const Seq *q,
                                      const CrossSrc *src) {
    const CrossAttnParams *p = &c->m->dec[l].cross;
    DecActs *e = &a->dec[l];
    size_t C = width(c), N = q->B * q->T;
    const real *u = sub_input(c, &e->cross, x, &p->norm, N);
    linear(c, e->q, u, &p->q, N, C, C, 0);
    AttnShape cs = attn_shape(c, q->B, q->T, src->S, src->len, 0, C, 2 * C, site_key(c, STACK_DEC, l, SITE_CROSS_W));
    cs.kv_group = src->group;
    cs.kv_row = src->row_src;
    const real *k = e->kv;
    if (src->kt) {
        k = src->kt[l];
        cs.k_transposed = 1;
        cs.ldk = src->S;
        cs.bsk = C * src->S;
    }
    attention_forward(e->catt, e->cprobs, a->g_probs, e->q, k, e->kv + C, &cs);
    linear(c, e->cross.res, e->catt, &p->out, N, C, C, 0);
    return sub_output(c, &e->cross, x, &p->norm, N, site_key(c, STACK_DEC, l, SITE_CROSS_OUT));
}

// FFN sublayer: relu(u.w1 + b1), dropped out, .w2 + b2.
static const real *ffn_forward(const Ctx *c, const FfnParams *p, SubActs *s, real *h, real *scratch,
                               const real *x, size_t N, int stack, int l) {
    size_t C = width(c), F = (size_t)c->m->s.d_ff;
    const real *u = sub_input(c, s, x, &p->norm, N);
    linear(c, h, u, &p->in, N, C, F, 1);
    const real *hd = h;
    real pd = drop_rate(c, c->m->s.ffn_dropout);
    if (pd > 0) {
        dropout_forward(scratch, h, N * F, pd, site_key(c, stack, l, SITE_FFN_H));
        hd = scratch;
    }
    linear(c, s->res, hd, &p->out, N, F, C, 0);
    return sub_output(c, s, x, &p->norm, N, site_key(c, stack, l, SITE_FFN_OUT));
}

const real *enc_layer_forward(const Ctx *c, int l, Acts *a, const real *x, const Seq *q) {
    const EncParams *p = &c->m->enc[l];
    EncActs *e = &a->enc[l];
    x = self_attn_forward(c, &p->attn, &e->attn, e->qkv, e->att, e->probs, a->g_probs, x, q, 0, NULL, STACK_ENC, l);
    return ffn_forward(c, &p->ffn, &e->ffn, e->h, a->ffn_scratch, x, q->B * q->T, STACK_ENC, l);
}

const real *dec_layer_forward(const Ctx *c, int l, Acts *a, const real *x, const Seq *q,
                              const CrossSrc *src, const KVCache *cache) {
    const DecParams *p = &c->m->dec[l];
    DecActs *e = &a->dec[l];
    x = self_attn_forward(c, &p->self, &e->self, e->qkv, e->att, e->probs, a->g_probs, x, q, 1, cache, STACK_DEC, l);
    x = cross_attn_forward(c, l, a, x, q, src);
    return ffn_forward(c, &p->ffn, &e->ffn, e->h, a->ffn_scratch, x, q->B * q->T, STACK_DEC, l);
}

const real *enc_layer_output(const Ctx *c, const Acts *a, int l) {
    return l < 0 ? a->enc_x0 : sub_stream(c, &a->enc[l].ffn);
}

const real *dec_layer_output(const Ctx *c, const Acts *a, int l) {
    return l < 0 ? a->dec_x0 : sub_stream(c, &a->dec[l].ffn);
}

// ---------------------------------------------------------------- backward
// In each sublayer: sub_backward_begin takes g->gy (the gradient after the
// sublayer) to g->dz (the gradient of F's output) and returns the buffer F
// adds its input gradient into; sub_backward_end leaves in g->gy the
// gradient of the stream before the sublayer.

static void swap_stream(SubGrads *g) {
    real *t = g->gy;
    g->gy = g->tmp;
    g->tmp = t;
}

static real *sub_backward_begin(const Ctx *c, SubActs *s, SubGrads *g, const NormParams *n, size_t N,
                                uint64_t key) {
    size_t C = width(c), len = N * C;
    real rate = drop_rate(c, c->m->s.dropout);
    // dz = drop'(.) is written with dropout_forward: the same mask and scale,
    // and no zeroed buffer to add into.
    if (c->m->s.pre_norm) {
        // y = x + drop(z): dx = gy (kept in place), dz = drop'(gy); F's input is LN(x).
        dropout_forward(g->dz, g->gy, len, rate, key);
        par_zero(g->du, len);
        return g->du;
    }
    // y = LN(r), r = x + drop(z): dr into tmp; dx = dr; F's input is x itself.
    par_zero(g->tmp, len);
    layernorm_backward(g->tmp, G(n->w), G(n->b), g->gy, s->res, P(n->w), s->mean, s->rstd, N, C);
    dropout_forward(g->dz, g->tmp, len, rate, key);
    swap_stream(g);
    return g->gy;
}

// Pre-norm only: du (the gradient of LN(x)) back into the stream.
static void sub_backward_end(const Ctx *c, SubActs *s, SubGrads *g, const real *x, const NormParams *n, size_t N) {
    if (!c->m->s.pre_norm) return;
    layernorm_backward(g->gy, G(n->w), G(n->b), g->du, x, P(n->w), s->mean, s->rstd, N, width(c));
}

// F's input: the stream x (post-norm) or LN(x) (pre-norm).
static const real *sub_in(const Ctx *c, const SubActs *s, const real *x) { return c->m->s.pre_norm ? s->ln : x; }

static void self_attn_backward(const Ctx *c, const SelfAttnParams *p, Acts *a, SubGrads *g, SubActs *s,
                               const real *qkv, const real *att, const real *probs, const real *x, const Seq *q,
                               int causal, int stack, int l) {
    size_t C = width(c), N = q->B * q->T;
    real *du = sub_backward_begin(c, s, g, &p->norm, N, site_key(c, stack, l, SITE_ATTN_OUT));
    real *datt = a->g_c, *dqkv = a->g_wide;
    par_zero(datt, N * C);
    linear_back(c, datt, &p->out, g->dz, att, N, C, C);
    par_zero(dqkv, N * 3 * C);
    AttnShape as = self_shape(c, p, q, causal, site_key(c, stack, l, SITE_ATTN_W), a->g_rel);
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, a->g_probs, datt, probs, qkv, qkv + C, qkv + 2 * C, &as);
    linear_back(c, du, &p->qkv, dqkv, sub_in(c, s, x), N, C, 3 * C);
    sub_backward_end(c, s, g, x, &p->norm, N);
}

// Cross-attention: q from the decoder stream, k/v from the encoder output
// enc (Ns, C), whose gradient is added into a->g_enc.
static void cross_attn_backward(const Ctx *c, int l, Acts *a, SubGrads *g, const real *x, const Seq *q,
                                const CrossSrc *src, const real *enc, size_t Ns) {
    const CrossAttnParams *p = &c->m->dec[l].cross;
    DecActs *e = &a->dec[l];
    size_t C = width(c), N = q->B * q->T;
    real *du = sub_backward_begin(c, &e->cross, g, &p->norm, N, site_key(c, STACK_DEC, l, SITE_CROSS_OUT));
    real *datt = a->g_c, *dq = a->g_wide, *dkv = a->g_wide2;
    par_zero(datt, N * C);
    linear_back(c, datt, &p->out, g->dz, e->catt, N, C, C);
    par_zero(dq, N * C);
    par_zero(dkv, Ns * 2 * C);
    AttnShape cs = attn_shape(c, q->B, q->T, src->S, src->len, 0, C, 2 * C, site_key(c, STACK_DEC, l, SITE_CROSS_W));
    attention_backward(dq, dkv, dkv + C, a->g_probs, datt, e->cprobs, e->q, e->kv, e->kv + C, &cs);
    linear_back(c, du, &p->q, dq, sub_in(c, &e->cross, x), N, C, C);
    linear_back(c, a->g_enc, &p->kv, dkv, enc, Ns, C, 2 * C);
    sub_backward_end(c, &e->cross, g, x, &p->norm, N);
}

static void ffn_backward(const Ctx *c, const FfnParams *p, Acts *a, SubGrads *g, SubActs *s, const real *h,
                         const real *x, size_t N, int stack, int l) {
    size_t C = width(c), F = (size_t)c->m->s.d_ff, n = N * F;
    real *du = sub_backward_begin(c, s, g, &p->norm, N, site_key(c, stack, l, SITE_FFN_OUT));
    uint64_t key = site_key(c, stack, l, SITE_FFN_H);
    real pd = drop_rate(c, c->m->s.ffn_dropout);
    const real *hd = h;
    if (pd > 0) {  // regenerate the dropped hidden layer in the forward pass's scratch
        dropout_forward(a->ffn_scratch, h, n, pd, key);
        hd = a->ffn_scratch;
    }
    par_zero(a->g_f1, n);
    linear_back(c, a->g_f1, &p->out, g->dz, hd, N, F, C);
    relu_dropout_backward(a->g_f1, h, n, pd, key);
    linear_back(c, du, &p->in, a->g_f1, sub_in(c, s, x), N, C, F);
    sub_backward_end(c, s, g, x, &p->norm, N);
}

void enc_layer_backward(const Ctx *c, int l, Acts *a, SubGrads *g, const Seq *q) {
    const EncParams *p = &c->m->enc[l];
    EncActs *e = &a->enc[l];
    const real *x_attn = enc_layer_output(c, a, l - 1), *x_ffn = sub_stream(c, &e->attn);
    ffn_backward(c, &p->ffn, a, g, &e->ffn, e->h, x_ffn, q->B * q->T, STACK_ENC, l);
    self_attn_backward(c, &p->attn, a, g, &e->attn, e->qkv, e->att, e->probs, x_attn, q, 0, STACK_ENC, l);
}

void dec_layer_backward(const Ctx *c, int l, Acts *a, SubGrads *g, const Seq *q, const CrossSrc *src,
                        const real *enc, size_t Ns) {
    const DecParams *p = &c->m->dec[l];
    DecActs *e = &a->dec[l];
    const real *x_self = dec_layer_output(c, a, l - 1);
    const real *x_cross = sub_stream(c, &e->self), *x_ffn = sub_stream(c, &e->cross);
    ffn_backward(c, &p->ffn, a, g, &e->ffn, e->h, x_ffn, q->B * q->T, STACK_DEC, l);
    cross_attn_backward(c, l, a, g, x_cross, q, src, enc, Ns);
    self_attn_backward(c, &p->self, a, g, &e->self, e->qkv, e->att, e->probs, x_self, q, 1, STACK_DEC, l);
}

void final_norm_backward(const Ctx *c, SubGrads *g, const NormParams *p, const real *x, const real *mean,
                         const real *rstd, size_t N) {
    size_t C = width(c);
    par_zero(g->tmp, N * C);
    layernorm_backward(g->tmp, G(p->w), G(p->b), g->gy, x, P(p->w), mean, rstd, N, C);
    swap_stream(g);
}

// x0 = dropout(table[ids] * sqrt(C) + positions): the stream gradient into the table.
void embedding_backward(const Ctx *c, SubGrads *g, size_t table, const int *ids, size_t N, uint64_t key) {
    size_t C = width(c);
    dropout_forward(g->tmp, g->gy, N * C, drop_rate(c, c->m->s.dropout), key);  // drop'(gy), written
    embed_backward(G(table), g->tmp, ids, N, C, (real)sqrt((double)C));
}
