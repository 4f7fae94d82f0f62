// model_config.c — the model a config describes.
#include "model_config.h"

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
    s.dropout = (real)c->dropout;
    s.attn_dropout = (real)c->attn_dropout;
    s.ffn_dropout = (real)c->ffn_dropout;
    return s;
}
