// model/shape.c — the model a config describes.
#include "model/shape.h"
#include "model/layout.h"
#include "common/util.h"

#include <float.h>
#include <math.h>
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

Precision model_precision_from(const Config *c) { return c->precision == PREC_BF16 ? PRECISION_BF16 : PRECISION_FP32; }

static int count_tensor(void *arg, const LayoutTensor *t) {
    (void)t;
    ++*(size_t *)arg;
    return NMT_OK;
}

size_t model_param_count(const ModelShape *s, size_t *ntensors) {
    if (ntensors) *ntensors = 0;
    if (s->d_model < 1 || s->d_ff < 1 || s->enc_layers < 0 || s->dec_layers < 0 || s->src_vocab < 1 || s->tgt_vocab < 1)
        return 0;
    // Relative positions: D = d_model / heads and 2 max_rel + 1 distances per layer.
    if (s->relative && (s->enc_layers > 0 || s->dec_layers > 0) && (s->max_rel < 1 || s->heads < 1)) return 0;
    size_t n, k = 0;
    if (layout_walk(s, count_tensor, &k, &n) || n > SIZE_MAX / sizeof(real)) return 0;
    if (ntensors) *ntensors = k;
    return n;
}

// With W the largest |weight| (LayerNorm gains and biases included), d =
// d_model and n = max(d_model, d_ff), the longest dot product:
// - a LayerNorm output is at most sqrt(d) W + W (a normalized value is at
//   most sqrt(d) in magnitude), and so is an embedding (times sqrt(d), plus a
//   sinusoid of at most 1, for W >= 1);
// - a linear layer on it gives at most n (sqrt(d) + 1) W^2 + W;
// - the LayerNorm after it sums d squared deviations from the mean, each up
//   to (2 |x|)^2: in float only while |x| <= V = sqrt(FLT_MAX / (4 d))
//   (beyond, it has to take its slow path in double, kernels/ops.c), and
//   one more product with such values is near FLT_MAX.
// W is the largest with 2 n (sqrt(d) + 1) W^2 <= V (the 2 covers the bias
// and the residual). d_model 512, d_ff 2048: 2.0e6; the largest shape the
// config admits (65536, 2^20): 8.2e3; trained models stay far below both.
// Weights of all 3e38 are refused; tiny ones (even every weight the
// smallest denormal) are fine: LayerNorm's epsilon keeps them finite.
double model_weight_bound(const ModelShape *s) {
    double d = s->d_model > 1 ? s->d_model : 1, n = s->d_ff > s->d_model ? s->d_ff : d;
    double v = sqrt((double)FLT_MAX / (4 * d));
    return sqrt(v / (2 * n * (sqrt(d) + 1)));
}
