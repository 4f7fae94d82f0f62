// model/internal.h — inside the model room: parameter groups, the activation arena and
// ONE encoder layer and ONE decoder layer (forward and backward). Training,
// validation, the recompute path and incremental decoding all run these same
// functions; only the model's own files (model.c, model/arena.c, model/layer.c, model/stacks.c,
// model/decode_state.c) include this header.
#ifndef NMT_LAYER_H
#define NMT_LAYER_H

#include "model/model.h"
#include "kernels/ops.h"

// ---------------------------------------------------------------- parameters
// Offsets into Model.params (and, the same, a gradient buffer), one group per sublayer.
typedef struct { size_t w, b; } LinearParams;   // w (in, out), b (out)
typedef struct { size_t w, b; } NormParams;     // LayerNorm gain and bias (C)
// rel_k, rel_v: relative position embeddings (2 max_rel + 1, D), when the model has them.
typedef struct { LinearParams qkv, out; size_t rel_k, rel_v; NormParams norm; } SelfAttnParams;
typedef struct { LinearParams q, kv, out; NormParams norm; } CrossAttnParams;
typedef struct { LinearParams in, out; NormParams norm; } FfnParams;
struct EncParams { SelfAttnParams attn; FfnParams ffn; };
struct DecParams { SelfAttnParams self; CrossAttnParams cross; FfnParams ffn; };

// ---------------------------------------------------------------- activations
// One sublayer's saved values: LN output and statistics; F's output, then
// the residual sum written in place.
typedef struct { real *ln, *mean, *rstd, *res; } SubActs;
typedef struct {
    SubActs attn, ffn;
    real *qkv, *att, *probs, *h;
} EncActs;
typedef struct {
    SubActs self, cross, ffn;
    real *qkv, *att, *probs, *q, *kv, *catt, *cprobs, *h;   // kv: the cross keys/values
} DecActs;

// Sizes of one carve: a batch's real sizes, or the bounds of a capacity.
// ns, nt: source and target rows; pss, ptt, pts: attention weights per head
// (self-attention: rows times self_attn_cols).
typedef struct { size_t B, ns, nt, pss, ptt, pts; } Dims;

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
    real *g_rel;                 // relative positions: gradient shares (ops.h)
};

// An arena for at most `max` (model/arena.c); acts_carve lays out the views for `d`
// (each size <= max, or an internal-error abort).
Acts *acts_create_dims(const Model *m, const Dims *max, int with_grads);
void acts_carve(Acts *a, const Model *m, const Dims *d);
// The rows of logits the arena holds for nt target rows.
size_t acts_logits_rows(const Acts *a, size_t nt);
// Rounds n up to 16 reals and advances *cur: how every arena is carved.
real *arena_take(real **cur, size_t n);

// Zeroing and copying big buffers on all threads (same bits as memset/memcpy).
void par_zero(real *p, size_t n);
void par_copy(real *dst, const real *src, size_t n);

// ---------------------------------------------------------------- products
// The arithmetic of every matrix product of the model is decided in
// product.c: int8 where the model has int8 weights (decoding a quantized
// model), else its precision (float, or bf16 while a trainer asks for it).
typedef enum { PRODUCT_FP32, PRODUCT_BF16, PRODUCT_INT8 } ProductKind;
// The product with the weight at parameter offset w (forward or backward;
// int8 models are never trained).
ProductKind product_kind(const Model *m, size_t w);
// Whether products of two activations (attention) are bf16.
int products_bf16(const Model *m);
// out (N, M) = relu?(in (N, K) . W + bias), W (K, M) at offset w, bias at b.
void product_linear(const Model *m, real *out, const real *in, size_t w, size_t b, size_t N, size_t K, size_t M,
                    int relu);
// logits (n, V) = y (n rows, stride ldy) . out_proj^T.
void product_logits(const Model *m, const real *y, size_t ldy, size_t n, real *logits);

// ---------------------------------------------------------------- one layer
// What a pass does: dropout on (train and key != 0) or off; a backward pass
// accumulates into sink->dst (NULL in a forward-only pass).
typedef struct {
    const Model *m;
    int train;
    uint64_t key;
    const GradSink *sink;
} Ctx;

// The query side of a layer call: B sequences of T positions (N = B*T rows);
// len (B): real positions of each (keys at or after len[b] are padding).
typedef struct {
    size_t B, T;
    const int *len;
} Seq;

// A decoder layer's self-attention cache (incremental decoding): the keys of
// every position so far transposed, (slots, C, cap), and the values (slots,
// cap, C). With a cache the layer runs ONE new position per row (T = 1),
// position `pos`, whose key and value it appends before attending over
// positions 0..pos.
typedef struct {
    real *k, *v;
    size_t cap, pos;
    const int *slot;   // row r's history is in block slot[r] of k and v (NULL: block r)
} KVCache;

// What the decoder's cross-attention reads: the source keys/values already in
// DecActs.kv (cross_kv_forward), (Bs, S, 2C); query sequence b reads source
// b / group, or row_src[b] when given; len: per query sequence, the source
// length. Decoding also gives each layer's keys transposed, (Bs, C, S) (kt[l];
// NULL: read them from kv).
typedef struct {
    size_t S, group;
    const int *len;
    real *const *kt;
    const int *row_src;
} CrossSrc;

// Dropout sites: each (stack, layer, site) draws from its own stream.
enum { SITE_EMB_SRC, SITE_EMB_TGT, SITE_ATTN_OUT, SITE_ATTN_W, SITE_FFN_H, SITE_FFN_OUT,
       SITE_CROSS_OUT, SITE_CROSS_W, SITE_COUNT };
enum { STACK_ENC = 0, STACK_DEC = 1 };
uint64_t site_key(const Ctx *c, int stack, int layer, int site);
real drop_rate(const Ctx *c, real p);

// Forward: x (N, C) is the stream before the layer; returns the stream after
// it (a view into e). cache may be NULL (training: keys from this call's
// positions, causal mask).
const real *enc_layer_forward(const Ctx *c, int l, Acts *a, const real *x, const Seq *q);
const real *dec_layer_forward(const Ctx *c, int l, Acts *a, const real *x, const Seq *q,
                              const CrossSrc *src, const KVCache *cache);
// The cross-attention keys/values of decoder layer l from the encoder output
// enc (Ns, C) into a->dec[l].kv.
void cross_kv_forward(const Ctx *c, int l, Acts *a, const real *enc, size_t Ns);
// The stream after layer l (a view into a), and before layer 0 (x0).
const real *enc_layer_output(const Ctx *c, const Acts *a, int l);
const real *dec_layer_output(const Ctx *c, const Acts *a, int l);

// Backward through the sublayer wrappers: the stream gradient moves between
// buffers; gy is the gradient of the stream after the current point.
typedef struct {
    real *gy, *dz, *du, *tmp;
} SubGrads;
// Backward of layer l (training arena, after a forward with the same ctx):
// g->gy holds the gradient of the layer's output and, on return, of its input.
// The decoder layer adds the encoder output's gradient into a->g_enc.
void enc_layer_backward(const Ctx *c, int l, Acts *a, SubGrads *g, const Seq *q);
void dec_layer_backward(const Ctx *c, int l, Acts *a, SubGrads *g, const Seq *q, const CrossSrc *src,
                        const real *enc, size_t Ns);
// The final LayerNorm of a pre-norm stack, and the embeddings, backward.
void final_norm_backward(const Ctx *c, SubGrads *g, const NormParams *p, const real *x, const real *mean,
                         const real *rstd, size_t N);
void embedding_backward(const Ctx *c, SubGrads *g, size_t table, const int *ids, size_t N, uint64_t key);

// ---------------------------------------------------------------- the stacks (model/stacks.c)
// Encoder over src (B, T) ids: embeddings, layers, final norm; returns its output (B*T, C).
const real *encoder_forward(const Ctx *c, Acts *a, const int *src, const Seq *q);
// Every decoder layer's cross-attention keys/values from the encoder output (Ns, C).
void decoder_cross_kv(const Ctx *c, Acts *a, const real *enc, size_t Ns);
// Decoder over tokens (B, T) at positions t0..: returns its output (B*T, C).
// caches: one per layer (incremental decoding, T = 1) or NULL.
const real *decoder_forward(const Ctx *c, Acts *a, const int *tokens, const Seq *q, size_t t0, const CrossSrc *src,
                            const KVCache *caches);

#endif
