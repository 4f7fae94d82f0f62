// model/stacks.c — the whole model over a batch: embeddings, the encoder and decoder
// stacks (model/layer.c), the output layer and the loss; forward for validation and
// the recompute path, forward + backward for a training step. Incremental
// decoding (model/decode_state.c) runs the same stacks.
#include "model/internal.h"
#include "kernels/gemm.h"
#include "common/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define P(off) (m->params + (off))

// x0 = dropout(table[ids] * sqrt(C) + positions t0..), (B*T, C).
static const real *embed(const Ctx *c, real *x0, const int *ids, size_t table, size_t B, size_t T, size_t t0,
                         uint64_t key) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model;
    embed_forward(x0, ids, P(table), m->pe, B, T, C, t0, (real)sqrt((double)C));
    dropout_forward(x0, x0, B * T * C, drop_rate(c, m->s.dropout), key);
    return x0;
}

// A pre-norm stack ends with a LayerNorm; a post-norm stack's layers end with one.
static const real *final_norm(const Ctx *c, real *out, real *mean, real *rstd, const real *x, size_t w, size_t b,
                              size_t N) {
    const Model *m = c->m;
    if (!m->s.pre_norm) return x;
    layernorm_forward(out, mean, rstd, x, P(w), P(b), N, (size_t)m->s.d_model);
    return out;
}

const real *encoder_forward(const Ctx *c, Acts *a, const int *src, const Seq *q) {
    const Model *m = c->m;
    const real *x = embed(c, a->enc_x0, src, m->src_emb, q->B, q->T, 0, site_key(c, STACK_ENC, 0, SITE_EMB_SRC));
    for (int l = 0; l < m->s.enc_layers; l++) x = enc_layer_forward(c, l, a, x, q);
    return final_norm(c, a->enc_final, a->enc_fmean, a->enc_frstd, x, m->enc_lnf_w, m->enc_lnf_b, q->B * q->T);
}

void decoder_cross_kv(const Ctx *c, Acts *a, const real *enc, size_t Ns) {
    for (int l = 0; l < c->m->s.dec_layers; l++) cross_kv_forward(c, l, a, enc, Ns);
}

const real *decoder_forward(const Ctx *c, Acts *a, const int *tokens, const Seq *q, size_t t0, const CrossSrc *src,
                            const KVCache *caches) {
    const Model *m = c->m;
    const real *x = embed(c, a->dec_x0, tokens, m->tgt_emb, q->B, q->T, t0, site_key(c, STACK_DEC, 0, SITE_EMB_TGT));
    for (int l = 0; l < m->s.dec_layers; l++) x = dec_layer_forward(c, l, a, x, q, src, caches ? &caches[l] : NULL);
    return final_norm(c, a->dec_final, a->dec_fmean, a->dec_frstd, x, m->dec_lnf_w, m->dec_lnf_b, q->B * q->T);
}

// Carves the arena for a batch and runs both stacks; returns the decoder output.
static const real *forward(const Ctx *c, Acts *a, const Batch *b, const real **enc_out) {
    const ModelShape *ms = &c->m->s;
    Dims d = {b->B, b->B * b->S, b->B * b->T, b->B * b->S * self_attn_cols(ms, b->S, 0),
              b->B * b->T * self_attn_cols(ms, b->T, 1), b->B * b->T * b->S};
    acts_carve(a, c->m, &d);
    Seq src = {b->B, b->S, b->src_len}, tgt = {b->B, b->T, b->tgt_len};
    CrossSrc cs = {b->S, 1, b->src_len, NULL, NULL};
    const real *enc = encoder_forward(c, a, b->src, &src);
    decoder_cross_kv(c, a, enc, b->B * b->S);
    if (enc_out) *enc_out = enc;
    return decoder_forward(c, a, b->tgt_in, &tgt, 0, &cs, NULL);
}

// The output projection and the loss over rows of the decoder output y, a
// chunk of at most acts_logits_rows() positions at a time, so only one chunk
// of logits exists. With grad_scale != 0 each chunk's logit gradient (scaled)
// goes at once into g_a, the gradient of y, and into the output projection's
// gradient in g (NULL when grad_scale = 0). *fwd_seconds (if given) gets the
// time spent on the logits and the loss, so that `nmt bench` can still tell
// forward from backward.
static double output_layer(const Model *m, Acts *a, const Batch *b, const real *y, real label_smoothing,
                           real grad_scale, real *g, double *nll_sum, double *fwd_seconds) {
    size_t C = (size_t)m->s.d_model, V = (size_t)m->s.tgt_vocab, N = b->B * b->T;
    size_t rows = acts_logits_rows(a, N);
    double t_fwd = 0;
    for (size_t r0 = 0; r0 < N; r0 += rows) {
        size_t n = N - r0 < rows ? N - r0 : rows;
        double t0 = fwd_seconds ? now_seconds() : 0;
        product_logits(m, y + r0 * C, C, n, a->logits);
        xent_forward(a->loss + r0, a->nll + r0, a->xent_stats + 2 * r0, a->logits, b->tgt_out + r0, n, V,
                     TOK_PAD, label_smoothing);
        if (fwd_seconds) t_fwd += now_seconds() - t0;
        if (grad_scale == 0) continue;
        // The logits have one consumer: their gradient overwrites them.
        xent_backward(a->logits, a->logits, a->xent_stats + 2 * r0, b->tgt_out + r0, n, V, TOK_PAD,
                      label_smoothing, grad_scale);
        int bf16 = product_kind(m, m->out_proj) == PRODUCT_BF16;
        GemmCall gx = {0, 0, n, C, V, 1, a->logits, V, P(m->out_proj), C, 0, a->g_a + r0 * C, C, NULL, 0, bf16};
        GemmCall gw = {1, 0, V, C, n, 1, a->logits, V, y + r0 * C, C, 1, g + m->out_proj, C, NULL, 0, bf16};
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
    Ctx c = {m, train, dropout_key, NULL};
    const real *y = forward(&c, a, b, NULL);
    return output_layer(m, a, b, y, label_smoothing, 0, NULL, nll_sum, NULL);
}

const real *model_row_nll(const Acts *a) { return a->nll; }

// ---------------------------------------------------------------- backward
// Stream buffers g_a/g_e alternate; g_b and g_d hold dz and du; g_c, g_wide,
// g_wide2, g_f1, g_probs and ffn_scratch are scratch inside the sublayers.

// Part s of the gradient is final in this pass: tell the sink.
static void announce(const Ctx *c, ParamSpan s) {
    if (c->sink->ready) c->sink->ready(c->sink->arg, s.off, s.n);
}

static void encoder_backward(const Ctx *c, Acts *a, const Batch *b, real *gy) {
    const Model *m = c->m;
    size_t N = b->B * b->S;
    Seq q = {b->B, b->S, b->src_len};
    SubGrads g = {gy, a->g_b, a->g_d, a->g_e};
    NormParams fin = {m->enc_lnf_w, m->enc_lnf_b};
    if (m->s.pre_norm)
        final_norm_backward(c, &g, &fin, enc_layer_output(c, a, m->s.enc_layers - 1), a->enc_fmean, a->enc_frstd, N);
    for (int l = m->s.enc_layers - 1; l >= 0; l--) {
        enc_layer_backward(c, l, a, &g, &q);
        announce(c, m->enc_span[l]);
    }
    embedding_backward(c, &g, m->src_emb, b->src, N, site_key(c, STACK_ENC, 0, SITE_EMB_SRC));
    announce(c, m->src_emb_span);
}

// Leaves the gradient of the encoder output in a->g_enc.
static void decoder_backward(const Ctx *c, Acts *a, const Batch *b, real *gy, const real *enc) {
    const Model *m = c->m;
    size_t C = (size_t)m->s.d_model, N = b->B * b->T, Ns = b->B * b->S;
    Seq q = {b->B, b->T, b->tgt_len};
    CrossSrc src = {b->S, 1, b->src_len, NULL, NULL};
    SubGrads g = {gy, a->g_b, a->g_d, a->g_e};
    NormParams fin = {m->dec_lnf_w, m->dec_lnf_b};
    par_zero(a->g_enc, Ns * C);
    if (m->s.pre_norm)
        final_norm_backward(c, &g, &fin, dec_layer_output(c, a, m->s.dec_layers - 1), a->dec_fmean, a->dec_frstd, N);
    for (int l = m->s.dec_layers - 1; l >= 0; l--) {
        dec_layer_backward(c, l, a, &g, &q, &src, enc, Ns);
        announce(c, m->dec_span[l]);
    }
    embedding_backward(c, &g, m->tgt_emb, b->tgt_in, N, site_key(c, STACK_DEC, 0, SITE_EMB_TGT));
    if (!m->s.shared_vocab) announce(c, m->tgt_emb_span);
}

double model_forward_backward(const Model *m, Acts *a, const Batch *b, real label_smoothing,
                              uint64_t dropout_key, real grad_scale, const GradSink *g, double *nll_sum,
                              double *fwd_seconds) {
    if (!a->with_grads || grad_scale == 0 || !g || !g->dst) {
        fprintf(stderr, "nmt: internal error: model_forward_backward needs a training arena, a gradient scale "
                        "and a gradient destination\n");
        abort();
    }
    double t0 = fwd_seconds ? now_seconds() : 0;
    Ctx c = {m, 1, dropout_key, g};
    const real *enc;
    const real *y = forward(&c, a, b, &enc);
    double t_out = 0;
    if (fwd_seconds) *fwd_seconds = now_seconds() - t0;
    double loss = output_layer(m, a, b, y, label_smoothing, grad_scale, g->dst, nll_sum, fwd_seconds ? &t_out : NULL);
    if (!m->s.tie_output) announce(&c, m->out_proj_span);
    if (fwd_seconds) *fwd_seconds += t_out;
    decoder_backward(&c, a, b, a->g_a, enc);
    // The encoder output's gradient was gathered in g_enc; move it to a stream buffer.
    par_copy(a->g_a, a->g_enc, b->B * b->S * (size_t)m->s.d_model);
    encoder_backward(&c, a, b, a->g_a);
    return loss;
}

// ---------------------------------------------------------------- inference

const real *model_next_logits(Model *m, Acts *a, const Batch *b) {
    // Straightforward: the whole prefix (and the encoder) are recomputed at
    // every step. Incremental decoding with cached keys/values is model/decode_state.c's.
    if (acts_logits_rows(a, b->B * b->T) < b->B) {
        fprintf(stderr, "nmt: internal error: model_next_logits needs an inference arena\n");
        abort();
    }
    Ctx c = {m, 0, 0, NULL};
    const real *y = forward(&c, a, b, NULL);
    size_t C = (size_t)m->s.d_model, V = (size_t)m->s.tgt_vocab;
    for (size_t i = 0; i < b->B; i++) {
        size_t t = (size_t)b->tgt_len[i] - 1;
        product_logits(m, y + (i * b->T + t) * C, C, 1, a->logits + i * V);
    }
    return a->logits;
}
