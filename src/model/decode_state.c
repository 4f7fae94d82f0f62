// model/decode_state.c — incremental decoding over the training layers (model/layer.c):
// the same decoder stack, one position per row, with a key/value cache.
#include "model/decode_state.h"
#include "kernels/gemm.h"
#include "model/internal.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct DecodeState {
    size_t group, max_tgt, layers, C, B, S, rows;
    Acts *a;                   // the encoder over the sources; the decoder over one position per row
    real *cache_buf;           // every layer's cached keys and values: one block
    KVCache *cache;            // per decoder layer: keys (slots, C, max_tgt), values (slots, max_tgt, C)
    real **cross_kt;           // per decoder layer: the source keys transposed, (max sources, C, max_src)
    real *out_t;               // the output projection transposed (C, V)
    int *self_len, *cross_len; // per row: positions so far, source length
    int *row_src, *next_src;   // per row: its source (select() maps the next step's rows)
    int *slot, *next_slot;     // per row: the cache slot holding its history
    int *free_slots;           // select()'s scratch
    unsigned char *claimed;    // per slot, select()'s scratch
    size_t slots;
    int *src_len;              // per source
};

DecodeState *decode_state_create(const Model *m, size_t max_sources, size_t group, size_t max_src, size_t max_tgt) {
    const ModelShape *s = &m->s;
    size_t C = (size_t)s->d_model, V = (size_t)s->tgt_vocab, L = (size_t)s->dec_layers;
    size_t R = max_sources * group, ns = max_sources * max_src, per = R * max_tgt * C;
    DecodeState *d = xcalloc(1, sizeof *d);
    d->group = group;
    d->max_tgt = max_tgt;
    d->layers = L;
    d->C = C;
    Dims max = {max_sources, ns, R, ns * self_attn_cols(s, max_src, 0), R * max_tgt, R * max_src};
    d->a = acts_create_dims(m, &max, 0);
    d->cache_buf = xmalloc(2 * L * ((per + 15) & ~(size_t)15) * sizeof(real));
    d->cache = xcalloc(L, sizeof *d->cache);
    real *cur = d->cache_buf;
    for (size_t l = 0; l < L; l++) {
        d->cache[l].k = arena_take(&cur, per);
        d->cache[l].v = arena_take(&cur, per);
        d->cache[l].cap = max_tgt;
    }
    d->cross_kt = xcalloc(L, sizeof *d->cross_kt);
    for (size_t l = 0; l < L; l++) d->cross_kt[l] = xmalloc(max_sources * C * max_src * sizeof(real));
    // The logits of a few rows against the (V, C) projection would have the
    // product pack (transpose) all of it at every step; a (C, V) copy made once
    // is read in place. The same sums in the same order: the same bits.
    // (An int8 model has its own layout for the product: no copy.)
    if (!m->quant) {
        d->out_t = xmalloc(C * V * sizeof(real));
        const real *w = m->params + m->out_proj;
        #pragma omp parallel for schedule(dynamic, 4)
        for (size_t v0 = 0; v0 < V; v0 += 16)  // 16 rows of w at a time: whole cache lines both ways
            for (size_t c = 0; c < C; c++)
                for (size_t v = v0; v < V && v < v0 + 16; v++) d->out_t[c * V + v] = w[v * C + c];
    }
    d->self_len = xmalloc(R * sizeof(int));
    d->cross_len = xmalloc(R * sizeof(int));
    d->slots = R;
    d->slot = xmalloc(R * sizeof(int));
    d->next_slot = xmalloc(R * sizeof(int));
    d->free_slots = xmalloc(R * sizeof(int));
    d->claimed = xmalloc(R);
    d->row_src = xmalloc(R * sizeof(int));
    d->next_src = xmalloc(R * sizeof(int));
    d->src_len = xmalloc(max_sources * sizeof(int));
    return d;
}

void decode_state_free(DecodeState *d) {
    if (!d) return;
    acts_free(d->a);
    free(d->cache_buf);
    free(d->cache);
    for (size_t l = 0; d->cross_kt && l < d->layers; l++) free(d->cross_kt[l]);
    free(d->cross_kt);
    free(d->out_t);
    free(d->self_len);
    free(d->cross_len);
    free(d->row_src);
    free(d->slot);
    free(d->next_slot);
    free(d->free_slots);
    free(d->claimed);
    free(d->next_src);
    free(d->src_len);
    free(d);
}

void model_decode_begin(Model *m, DecodeState *d, const int *src, const int *src_len, size_t B, size_t S) {
    d->B = B;
    d->S = S;
    d->rows = B * d->group;
    Dims dims = {B, B * S, d->rows, B * S * self_attn_cols(&m->s, S, 0), d->rows * d->max_tgt, d->rows * S};
    acts_carve(d->a, m, &dims);
    Ctx c = {m, 0, 0, NULL};
    Seq q = {B, S, src_len};
    const real *enc = encoder_forward(&c, d->a, src, &q);
    decoder_cross_kv(&c, d->a, enc, B * S);
    // Each step reads every source key of a query: transposed once here, the
    // keys of a head are read along rows (attention_forward, k_transposed).
    size_t C = d->C;
    for (size_t l = 0; l < d->layers; l++) {
        const real *kv = d->a->dec[l].kv;
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < S; j++)
                for (size_t e = 0; e < C; e++) d->cross_kt[l][(b * C + e) * S + j] = kv[(b * S + j) * 2 * C + e];
    }
    for (size_t b = 0; b < B; b++) d->src_len[b] = src_len[b];
    for (size_t r = 0; r < d->rows; r++) {
        d->slot[r] = (int)r;
        d->row_src[r] = (int)(r / d->group);
        d->cross_len[r] = src_len[r / d->group];
    }
}

const real *model_decode_step(Model *m, DecodeState *d, const int *tokens, size_t t) {
    size_t C = (size_t)m->s.d_model, R = d->rows, V = (size_t)m->s.tgt_vocab;
    for (size_t r = 0; r < R; r++) d->self_len[r] = (int)t + 1;
    for (int l = 0; l < m->s.dec_layers; l++) {
        d->cache[l].pos = t;
        d->cache[l].slot = d->slot;
    }
    Ctx c = {m, 0, 0, NULL};
    Seq q = {R, 1, d->self_len};
    CrossSrc src = {d->S, d->group, d->cross_len, d->cross_kt, d->row_src};
    const real *y = decoder_forward(&c, d->a, tokens, &q, t, &src, d->cache);
    // A float model's step reads the projection's transposed copy (rows of
    // out_t, the same sums and bits); the other kinds go the common way.
    if (product_kind(m, m->out_proj) == PRODUCT_FP32) gemm(0, 0, R, V, C, 1, y, C, d->out_t, V, 0, d->a->logits, V);
    else product_logits(m, y, C, R, d->a->logits);
    return d->a->logits;
}

const real *model_decode_cross_attention(const DecodeState *d) {
    // The last attention a step computes is the last layer's cross-attention.
    return d->a->dec[d->layers - 1].cprobs;
}

// Row r of the next step continues row from[r] (positions 0..len-1 of its
// caches, and its source). A row's history stays in its cache slot: the
// first child of a row takes the slot over, and only further children (a
// hypothesis that forks) get a copy in a slot nobody continues. Greedy search
// and finished hypotheses copy nothing.
void model_decode_select(DecodeState *d, const int *from, size_t n, size_t len) {
    size_t row = d->max_tgt * d->C, cap = d->max_tgt;
    memset(d->claimed, 0, d->slots);
    for (size_t r = 0; r < n; r++) {
        int s = d->slot[from[r]];
        d->next_slot[r] = d->claimed[s] ? -1 : s;
        d->claimed[s] = 1;
    }
    size_t nfree = 0;
    for (size_t s = 0; s < d->slots; s++)
        if (!d->claimed[s]) d->free_slots[nfree++] = (int)s;
    for (size_t r = 0; r < n; r++) {
        if (d->next_slot[r] >= 0) continue;
        size_t to = (size_t)d->free_slots[--nfree], src = (size_t)d->slot[from[r]];
        d->next_slot[r] = (int)to;
        for (size_t l = 0; l < d->layers && len > 0; l++) {
            memcpy(d->cache[l].v + to * row, d->cache[l].v + src * row, len * d->C * sizeof(real));
            // keys, transposed: positions 0..len-1 of each of C rows (short: a loop, not memcpy calls)
            const real *ks = d->cache[l].k + src * row;
            real *kd = d->cache[l].k + to * row;
            for (size_t e = 0; e < d->C; e++)
                for (size_t j = 0; j < len; j++) kd[e * cap + j] = ks[e * cap + j];
        }
    }
    for (size_t r = 0; r < n; r++) d->next_src[r] = d->row_src[from[r]];
    for (size_t r = 0; r < n; r++) {
        d->slot[r] = d->next_slot[r];
        d->row_src[r] = d->next_src[r];
        d->cross_len[r] = d->src_len[d->row_src[r]];
    }
    d->rows = n;
}
