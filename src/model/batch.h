// model/batch.h — what the data layer hands the model: a batch of token ids, padded.
#ifndef NMT_BATCH_H
#define NMT_BATCH_H

#include <stddef.h>
#include "text/tokens.h"

// src (B,S), tgt_in/tgt_out (B,T), padded with TOK_PAD; lengths count real
// tokens (the source's EOS, the target's BOS or EOS included).
typedef struct {
    size_t B, S, T;
    int *src, *src_len;
    int *tgt_in, *tgt_out, *tgt_len;
    size_t ntok;                       // non-pad target tokens
} Batch;

#endif
