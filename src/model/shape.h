// model/shape.h — the model a config describes: Config (+ vocabulary sizes) -> ModelShape.
#ifndef NMT_MODEL_CONFIG_H
#define NMT_MODEL_CONFIG_H

#include "common/config.h"
#include "model/model.h"
#include "text/tokenizer.h"

// The model shape implied by a config and its tokenizer.
ModelShape model_shape_from(const Config *c, const Tokenizer *t);
// The same with the vocabulary sizes given (benchmarks on synthetic data).
ModelShape model_shape_sized(const Config *c, int src_vocab, int tgt_vocab);
// The precision of the products a config's training passes use (train.precision).
Precision model_precision_from(const Config *c);
// The number of reals model_create allocates for s (its nparams, tensor
// padding included) and the number of tensors, computed without allocating
// and with every product and sum checked: 0 when the shape is invalid (a size
// below 1) or the count does not fit in size_t bytes of reals. Checkpoint
// loading compares it with the file's parameter section before model_create.
size_t model_param_count(const ModelShape *s, size_t *ntensors);
// The largest weight magnitude a model of this shape may hold (loading and
// saving refuse larger ones): a weight beyond it overflows float within one
// layer and the LayerNorm after it (shape.c says how it is derived). Below it
// a forward pass can still overflow through many layers; the decoder stops
// on the scores that makes.
double model_weight_bound(const ModelShape *s);

#endif
