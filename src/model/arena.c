// model/arena.c — the activation arena: one allocation, carved into views per batch.
// Training, validation and incremental decoding (model/decode_state.c) all carve
// their buffers here.
#include "model/internal.h"
#include "kernels/par.h"
#include "common/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Training computes the output layer OUT_ROWS target positions at a time, so
// a training arena holds that many rows of logits rather than all N x V (at
// base: 256 x 32000 floats instead of 1024 x 32000). An inference arena keeps
// one row per position: model_next_logits returns a row per sentence.
enum { OUT_ROWS = 256 };

size_t acts_logits_rows(const Acts *a, size_t nt) {
    return a->with_grads && nt > a->out_rows ? a->out_rows : nt;
}

void acts_set_output_rows(Acts *a, size_t rows) {
    if (rows < 1 || rows > OUT_ROWS) {
        fprintf(stderr, "nmt: internal error: output chunk of %zu rows (1..%d)\n", rows, (int)OUT_ROWS);
        abort();
    }
    a->out_rows = rows;
}

real *arena_take(real **cur, size_t n) {
    real *p = *cur;
    *cur += (n + 15) & ~(size_t)15;
    return p;
}

static void carve_sub(SubActs *s, real **cur, size_t n, size_t C) {
    s->ln = arena_take(cur, n * C);
    s->mean = arena_take(cur, n);
    s->rstd = arena_take(cur, n);
    s->res = arena_take(cur, n * C);
}

// A training arena keeps every layer's activations for the backward pass. An
// inference arena (no backward) gives every layer the same buffers, except
// the decoder's cross keys/values: a layer reads its input (the previous
// layer's output) only before it overwrites the buffer that held it.
static void carve_layers(Acts *a, const ModelShape *s, real **cur, const Dims *d) {
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff, H = (size_t)s->heads;
    int share = !a->with_grads;
    for (int l = 0; l < s->enc_layers; l++) {
        if (share && l > 0) {
            a->enc[l] = a->enc[0];
            continue;
        }
        EncActs *e = &a->enc[l];
        carve_sub(&e->attn, cur, d->ns, C);
        carve_sub(&e->ffn, cur, d->ns, C);
        e->qkv = arena_take(cur, d->ns * 3 * C);
        e->att = arena_take(cur, d->ns * C);
        e->probs = arena_take(cur, H * d->pss);
        e->h = arena_take(cur, d->ns * F);
    }
    for (int l = 0; l < s->dec_layers; l++) {
        if (share && l > 0) {
            a->dec[l] = a->dec[0];
            a->dec[l].kv = arena_take(cur, d->ns * 2 * C);
            continue;
        }
        DecActs *e = &a->dec[l];
        carve_sub(&e->self, cur, d->nt, C);
        carve_sub(&e->cross, cur, d->nt, C);
        carve_sub(&e->ffn, cur, d->nt, C);
        e->qkv = arena_take(cur, d->nt * 3 * C);
        e->att = arena_take(cur, d->nt * C);
        e->probs = arena_take(cur, H * d->ptt);
        e->q = arena_take(cur, d->nt * C);
        e->kv = arena_take(cur, d->ns * 2 * C);
        e->catt = arena_take(cur, d->nt * C);
        e->cprobs = arena_take(cur, H * d->pts);
        e->h = arena_take(cur, d->nt * F);
    }
}

// Lays out every view from `base`; returns the number of reals used.
// With base == NULL it only measures.
static size_t carve(Acts *a, const Model *m, real *base, const Dims *d) {
    const ModelShape *s = &m->s;
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff, H = (size_t)s->heads, V = (size_t)s->tgt_vocab;
    real *start = base ? base : (real *)(uintptr_t)64, *cur = start;
    a->enc_x0 = arena_take(&cur, d->ns * C);
    a->dec_x0 = arena_take(&cur, d->nt * C);
    carve_layers(a, s, &cur, d);
    a->enc_final = arena_take(&cur, d->ns * C);
    a->enc_fmean = arena_take(&cur, d->ns);
    a->enc_frstd = arena_take(&cur, d->ns);
    a->dec_final = arena_take(&cur, d->nt * C);
    a->dec_fmean = arena_take(&cur, d->nt);
    a->dec_frstd = arena_take(&cur, d->nt);
    a->loss = arena_take(&cur, d->nt);
    a->nll = arena_take(&cur, d->nt);
    a->xent_stats = arena_take(&cur, 2 * d->nt);
    size_t n = d->ns > d->nt ? d->ns : d->nt;
    size_t pmax = d->pss > d->ptt ? d->pss : d->ptt;
    if (d->pts > pmax) pmax = d->pts;
    // Dropout scratch (attention weights, FFN hidden layer); the backward pass
    // uses both as scratch too.
    a->g_probs = arena_take(&cur, H * pmax);
    a->ffn_scratch = arena_take(&cur, n * F);
    if (a->with_grads) a->g_a = arena_take(&cur, n * C);
    // The logits (a chunk of positions, in training) live only inside the
    // output layer, which has finished with them before the other gradient
    // buffers come into use: they share memory.
    real *shared = cur;
    a->logits = arena_take(&cur, acts_logits_rows(a, d->nt) * V);
    real *logits_end = cur;
    cur = shared;
    if (a->with_grads) {
        a->g_b = arena_take(&cur, n * C);
        a->g_c = arena_take(&cur, n * C);
        a->g_d = arena_take(&cur, n * C);
        a->g_e = arena_take(&cur, n * C);
        a->g_enc = arena_take(&cur, d->ns * C);
        a->g_wide = arena_take(&cur, n * 3 * C);
        a->g_wide2 = arena_take(&cur, d->ns * 2 * C);
        a->g_f1 = arena_take(&cur, n * F);
        a->g_rel = NULL;
        if (s->relative)  // the gradient shares of drel_k and drel_v (ops.h)
            a->g_rel = arena_take(&cur, ATTN_REL_PARTS * 2 * (2 * (size_t)s->max_rel + 1) * (C / H));
    }
    if (cur < logits_end) cur = logits_end;
    return (size_t)(cur - start);
}

Acts *acts_create_dims(const Model *m, const Dims *max, int with_grads) {
    Acts *a = xcalloc(1, sizeof *a);
    a->with_grads = with_grads;
    a->out_rows = OUT_ROWS;
    a->enc = xcalloc((size_t)m->s.enc_layers, sizeof *a->enc);
    a->dec = xcalloc((size_t)m->s.dec_layers, sizeof *a->dec);
    a->max = *max;
    a->cap = carve(a, m, NULL, max);
    a->buf = xcalloc(a->cap, sizeof(real));
    return a;
}

size_t self_attn_cols(const ModelShape *s, size_t T, int causal) {
    size_t W = (size_t)s->window, band = causal ? W + 1 : 2 * W + 1;
    return W && band < T ? band : T;
}

Acts *acts_create(const Model *m, size_t max_tokens, size_t max_src, size_t max_tgt, int with_grads) {
    // Bounds: B*S <= max_tokens and S <= max_src, so B*S*S <= max_tokens*max_src, etc.
    Dims d = {max_tokens, max_tokens, max_tokens, max_tokens * self_attn_cols(&m->s, max_src, 0),
              max_tokens * self_attn_cols(&m->s, max_tgt, 1), max_tokens * (max_src < max_tgt ? max_src : max_tgt)};
    return acts_create_dims(m, &d, with_grads);
}

void acts_free(Acts *a) {
    if (!a) return;
    free(a->buf);
    free(a->enc);
    free(a->dec);
    free(a);
}

size_t acts_bytes(const Acts *a) { return a->cap * sizeof(real); }

void acts_carve(Acts *a, const Model *m, const Dims *d) {
    const Dims *x = &a->max;
    if (d->B > x->B || d->ns > x->ns || d->nt > x->nt || d->pss > x->pss || d->ptt > x->ptt || d->pts > x->pts) {
        fprintf(stderr, "nmt: internal error: a batch (B=%zu, %zu source and %zu target rows) exceeds the activation arena\n",
                d->B, d->ns, d->nt);
        abort();
    }
    carve(a, m, a->buf, d);
}

// Zeroing and copying the backward pass's buffers (megabytes at the larger
// shapes) is split over the threads like every other pass.
void par_zero(real *p, size_t n) {
    #pragma omp parallel for schedule(dynamic, 1) if (n > 65536 && n > par_min_elems)
    for (size_t c = 0; c < n; c += 16384) memset(p + c, 0, (n - c < 16384 ? n - c : 16384) * sizeof(real));
}

void par_copy(real *dst, const real *src, size_t n) {
    #pragma omp parallel for schedule(dynamic, 1) if (n > 65536 && n > par_min_elems)
    for (size_t c = 0; c < n; c += 16384) memcpy(dst + c, src + c, (n - c < 16384 ? n - c : 16384) * sizeof(real));
}
