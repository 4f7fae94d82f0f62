// model/model.h — the Transformer encoder-decoder: parameter table, activations,
// forward and backward passes.
#ifndef NMT_MODEL_H
#define NMT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "model/batch.h"
#include "common/params.h"
#include "common/real.h"

typedef struct {
    int d_model, heads, d_ff, enc_layers, dec_layers;
    int pre_norm, tie_output, shared_vocab;
    int src_vocab, tgt_vocab;
    int max_len;                       // longest sequence (positions table)
    int relative;                      // relative positions (Shaw et al.) instead of the table
    int max_rel;                       // relative: distances clipped to -max_rel..max_rel
    int window;                        // self-attention within this distance (0 = all)
    real dropout, attn_dropout, ffn_dropout;
} ModelShape;

// The arithmetic of a model's matrix products (model/product.c decides each
// product's kind: int8 where the model has int8 weights, else this). bf16:
// the inputs of every product rounded to bfloat16, the sums in float; every
// other operation, the parameters and their gradients stay float.
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } Precision;
const char *precision_name(Precision p);   // "fp32", "bf16"
int precision_by_name(const char *name);   // a Precision, or -1

typedef struct EncParams EncParams;
typedef struct DecParams DecParams;
typedef struct { size_t off, n; } ParamSpan;  // a range of the parameter buffer

typedef struct {
    ModelShape s;
    Tensor *tensors;                   // stb_ds array
    size_t nparams;
    real *params, *grads;              // one contiguous buffer each (grads: the optimizer's)
    size_t src_emb, tgt_emb, out_proj; // offsets (equal when tied)
    size_t enc_lnf_w, enc_lnf_b, dec_lnf_w, dec_lnf_b;
    EncParams *enc;
    DecParams *dec;
    real *pe;                          // (max_len, d_model); NULL with relative positions
    ParamSpan *enc_span, *dec_span;    // each layer's parameters: contiguous, encoder then decoder
    ParamSpan src_emb_span, tgt_emb_span, out_proj_span;  // equal when shared or tied
    // int8 decoding weights (quant.h), or NULL: a float model. A quantized
    // model decodes and computes losses; it is never trained.
    struct QuantModel *quant;
    // Products of float models: FP32 unless a trainer asks for BF16 (a
    // loaded model decodes in float: it is not part of the model's file).
    Precision precision;
} Model;

typedef struct Acts Acts;

// Where a backward pass puts its gradients: dst (nparams reals; accumulated
// into) and, when ready != NULL, ready(arg, off, n) as each part [off, off +
// n) of dst is final in that pass: it does not change again. The announcement
// order: the output projection (untied) after the output layer, each decoder
// layer, the target embedding (not shared) after the decoder, each encoder
// layer, the source embedding at the end; the final norms are never announced.
typedef struct {
    real *dst;
    void (*ready)(void *arg, size_t off, size_t n);
    void *arg;
} GradSink;

// The attention weights one query of a self-attention over T positions
// keeps (attn_cols in ops.h): T, or with a window, its band when narrower.
size_t self_attn_cols(const ModelShape *s, size_t T, int causal);

int model_create(Model *m, const ModelShape *s);   // allocates, does not initialise
void model_init_params(Model *m, uint64_t seed);
void model_free(Model *m);
int model_find_tensor(const Model *m, const char *name);  // index or -1
void model_zero_grads(const Model *m, real *dst);  // dst (nparams reals) = 0, on all threads
// The parameters as the optimizer sees them (views of m's buffers and table).
ParamSet model_param_set(Model *m);

// Activation arena for batches of at most max_tokens tokens per side, sequences
// of at most max_src / max_tgt tokens; with_grads=0 gives inference only.
Acts *acts_create(const Model *m, size_t max_tokens, size_t max_src, size_t max_tgt, int with_grads);
void acts_free(Acts *a);
// The number of target positions whose logits a training arena holds at once
// (default 256; 1..256). For tests, which use it to cut tiny batches into chunks.
void acts_set_output_rows(Acts *a, size_t rows);
size_t acts_bytes(const Acts *a);

// The loss only: returns the sum of label-smoothed losses over non-pad target
// tokens; *nll_sum gets the sum of -log p(gold). dropout_key = 0 or train = 0
// disables dropout.
double model_forward(Model *m, Acts *a, const Batch *b, real label_smoothing,
                     int train, uint64_t dropout_key, double *nll_sum);
// After model_forward: -log p(gold) of every target row (B*T; 0 on padding),
// a view into the arena.
const real *model_row_nll(const Acts *a);
// A training step's forward and backward passes (dropout on unless
// dropout_key = 0): returns what model_forward(train = 1) returns and
// accumulates the gradients of (loss_sum * grad_scale, grad_scale != 0) into
// g->dst, announcing its parts to g->ready (GradSink); m is not changed. The
// output layer's forward and backward run together, a chunk of positions at
// a time, so the N x V logits never exist at once. a: a training
// arena (with_grads = 1). *fwd_seconds (may be NULL) gets the time spent in
// forward computations.
double model_forward_backward(const Model *m, Acts *a, const Batch *b, real label_smoothing,
                              uint64_t dropout_key, real grad_scale, const GradSink *g, double *nll_sum,
                              double *fwd_seconds);

// Inference: logits for the last target position of every row (b->tgt_in with
// b->T columns, each row's length in b->tgt_len). Result (B, tgt_vocab) points
// into the arena, an inference arena (with_grads = 0).
const real *model_next_logits(Model *m, Acts *a, const Batch *b);

#endif
