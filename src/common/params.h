// common/params.h — a parameter set as the optimizer, the gradient all-reduce and
// checkpoints see it: one flat buffer of values, one of gradients, and a table
// of named tensors (ranges of those buffers). Nothing here knows the model.
#ifndef NMT_PARAMS_H
#define NMT_PARAMS_H

#include <stddef.h>
#include "common/real.h"

// One named tensor: rows*cols reals at value + offset (and grad + offset).
typedef struct {
    char name[48];
    size_t offset, rows, cols;
    int decay;                         // weight decay applies (not biases, LayerNorm gains)
    real init_bound;                   // uniform(-b, b); 0 = zeros; <0 = ones
} Tensor;

typedef struct {
    real *value, *grad;                // n reals each (tensors 16-aligned; the gaps are zero)
    size_t n;
    const Tensor *tensors;
    size_t ntensors;
} ParamSet;

#endif
