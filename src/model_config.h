// model_config.h — the model a config describes: Config (+ vocabulary sizes) -> ModelShape.
#ifndef NMT_MODEL_CONFIG_H
#define NMT_MODEL_CONFIG_H

#include "config.h"
#include "model.h"
#include "tokenizer.h"

// The model shape implied by a config and its tokenizer.
ModelShape model_shape_from(const Config *c, const Tokenizer *t);
// The same with the vocabulary sizes given (benchmarks on synthetic data).
ModelShape model_shape_sized(const Config *c, int src_vocab, int tgt_vocab);

#endif
