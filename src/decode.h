// decode.h — translation: source lines in, target lines out.
#ifndef NMT_DECODE_H
#define NMT_DECODE_H

#include <stddef.h>
#include "model.h"
#include "tokenizer.h"

typedef struct {
    int batch;              // sentences decoded together
    double max_len_a;       // output length limit: a * source length + b
    int max_len_b;
    int max_src;            // longer sources are truncated (with a warning)
} DecodeOptions;

// Greedy decoding of n source id sequences (without EOS). out[i] receives an
// stb_ds array of target ids (without EOS). Output does not depend on `batch`.
void greedy_decode(Model *m, int *const *src, size_t n, const DecodeOptions *o, int **out);

#endif
