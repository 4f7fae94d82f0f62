// model/decode_state.h — incremental decoding: the encoder runs once per batch of
// sources, each decoder layer's cross-attention keys/values are computed once,
// and self-attention keys/values are cached step by step. The decoder layers
// are the training ones (model/layer.c), run with a cache; the buffers are carved
// from one activation arena plus one cache block.
#ifndef NMT_DECODE_STATE_H
#define NMT_DECODE_STATE_H

#include <stddef.h>
#include "model/model.h"

// `rows` decoding rows read source row / group (group = beam size).
typedef struct DecodeState DecodeState;
DecodeState *decode_state_create(const Model *m, size_t max_sources, size_t group, size_t max_src, size_t max_tgt);
void decode_state_free(DecodeState *d);
// Encodes B sources (src (B,S) padded, src_len (B) with EOS) for B*group rows.
void model_decode_begin(Model *m, DecodeState *d, const int *src, const int *src_len, size_t B, size_t S);
// Feeds tokens (one per current row) at position t (0 = BOS) and returns the
// logits of the next position, (rows, tgt_vocab), pointing into the state.
const real *model_decode_step(Model *m, DecodeState *d, const int *tokens, size_t t);
// After a step: the last decoder layer's cross-attention weights, (rows, heads, S).
const real *model_decode_cross_attention(const DecodeState *d);
// The rows of the next step: row r (r < n) continues row from[r] of the
// current ones, the first len positions of its history and its source. How
// beam search follows parents and drops finished hypotheses, so that only
// live rows are computed (n at most the rows begin() made).
void model_decode_select(DecodeState *d, const int *from, size_t n, size_t len);

#endif
