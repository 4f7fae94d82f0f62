// model/shape.c — the model a config describes.
#include "model/shape.h"

#include <stdint.h>
#include <string.h>

ModelShape model_shape_from(const Config *c, const Tokenizer *t) {
    return model_shape_sized(c, tokenizer_vocab_size(t, SIDE_SRC), tokenizer_vocab_size(t, SIDE_TGT));
}

ModelShape model_shape_sized(const Config *c, int src_vocab, int tgt_vocab) {
    ModelShape s;
    memset(&s, 0, sizeof s);
    s.d_model = c->d_model;
    s.heads = c->heads;
    s.d_ff = c->d_ff;
    s.enc_layers = c->enc_layers;
    s.dec_layers = c->dec_layers;
    s.pre_norm = c->norm == NORM_PRE;
    s.tie_output = c->tie_output;
    s.shared_vocab = c->shared_vocab;
    s.src_vocab = src_vocab;
    s.tgt_vocab = tgt_vocab;
    // Positions for the longest sentence the config admits (+ BOS/EOS), and never fewer than 1024.
    int longest = c->max_src_len > c->max_tgt_len ? c->max_src_len : c->max_tgt_len;
    s.max_len = longest + 2 > 1024 ? longest + 2 : 1024;
    s.relative = c->positions == POS_RELATIVE;
    s.max_rel = c->max_rel_pos;
    s.window = c->attn_window;
    s.dropout = (real)c->dropout;
    s.attn_dropout = (real)c->attn_dropout;
    s.ffn_dropout = (real)c->ffn_dropout;
    return s;
}

// Adds one tensor the way model_create lays it out (16-real aligned);
// an overflow clears ok.
typedef struct { size_t n, tensors; int ok; } Count;
static void count_tensor(Count *k, size_t rows, size_t cols) {
    if (!k->ok) return;
    k->tensors++;
    if (rows && cols > SIZE_MAX / rows) { k->ok = 0; return; }
    size_t e = rows * cols;
    if (e > SIZE_MAX - 15) { k->ok = 0; return; }
    e = (e + 15) & ~(size_t)15;
    if (e > SIZE_MAX - k->n) { k->ok = 0; return; }
    k->n += e;
}

static void count_linear(Count *k, size_t in, size_t out) {
    count_tensor(k, in, out);
    count_tensor(k, 1, out);
}

size_t model_param_count(const ModelShape *s, size_t *ntensors) {
    if (ntensors) *ntensors = 0;
    if (s->d_model < 1 || s->d_ff < 1 || s->enc_layers < 0 || s->dec_layers < 0 || s->src_vocab < 1 || s->tgt_vocab < 1)
        return 0;
    size_t C = (size_t)s->d_model, F = (size_t)s->d_ff;
    Count k = {0, 0, 1};
    count_tensor(&k, (size_t)s->src_vocab, C);                        // src_emb
    if (!s->shared_vocab) count_tensor(&k, (size_t)s->tgt_vocab, C);  // tgt_emb
    if (!s->tie_output) count_tensor(&k, (size_t)s->tgt_vocab, C);    // out_proj
    if (C > SIZE_MAX / 3) return 0;
    for (int l = 0; l < s->enc_layers + s->dec_layers && k.ok; l++) {
        int dec = l >= s->enc_layers;
        count_linear(&k, C, 3 * C);  // self-attention wqkv, bqkv
        count_linear(&k, C, C);      // wo, bo
        if (s->relative) {           // rel_k, rel_v
            if (s->max_rel < 1 || s->heads < 1) return 0;
            size_t D = C / (size_t)s->heads, R = 2 * (size_t)s->max_rel + 1;
            count_tensor(&k, R, D);
            count_tensor(&k, R, D);
        }
        count_linear(&k, 1, C);      // its norm (w, b: two vectors of C)
        if (dec) {
            count_linear(&k, C, C);      // cross-attention wq, bq
            count_linear(&k, C, 2 * C);  // wkv, bkv
            count_linear(&k, C, C);      // wo, bo
            count_linear(&k, 1, C);      // its norm
        }
        count_linear(&k, C, F);  // ffn w1, b1
        count_linear(&k, F, C);  // w2, b2
        count_linear(&k, 1, C);  // its norm
    }
    if (s->pre_norm) {
        count_linear(&k, 1, C);
        count_linear(&k, 1, C);
    }
    if (!k.ok || k.n > SIZE_MAX / sizeof(real)) return 0;
    if (ntensors) *ntensors = k.tensors;
    return k.n;
}
