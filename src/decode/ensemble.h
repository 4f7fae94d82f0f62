// decode/ensemble.h — the checkpoints of an ensemble, loaded for decoding
// (translate, eval, score, serve): each model is its own, they must share
// one vocabulary, and the first one's tokenizer and config serve them all.
#ifndef NMT_ENSEMBLE_H
#define NMT_ENSEMBLE_H

#include <stddef.h>
#include "decode/search.h"
#include "io/checkpoint.h"

typedef struct {
    Loaded *l;      // n loaded checkpoints
    char **path;    // their files, as given (copies)
    Model **m;      // &l[k].m
    double *w;      // weights, normalised to sum 1
    size_t n;
    Ensemble e;     // {m, w, n}: what the search takes
} Members;

// Loads n >= 1 checkpoints (int8: quantized at load, as checkpoint_load_decoding).
// weights: the text of --weights, "W1,W2,..." (n numbers >= 0, some > 0;
// normalised here), or NULL for equal ones; anything else is NMT_ERR_INPUT
// naming --weights and the value. A tokenizer that is not byte for byte the first one's (another
// vocabulary or BPE model), or languages that disagree, is an NMT_ERR_INPUT
// error naming both files; a checkpoint error names its file. Nothing is
// returned half-built.
int members_load(Members *s, char *const *paths, size_t n, const char *weights, int int8);
void members_free(Members *s);

#endif
