// decode/score.h — forced decoding: the log-probability a model gives each given
// translation of each source sentence (`nmt score`), as fairseq's and
// Marian's scorers do: to filter noisy parallel data or rerank n-best lists.
#ifndef NMT_SCORE_H
#define NMT_SCORE_H

#include <stddef.h>
#include "model/model.h"
#include "text/tokenizer.h"

// logprob[i] = sum of ln p(token) over target i's tokens and its EOS given
// source i (dropout off); ntok[i] = that number of tokens. Sources longer
// than max_src tokens are truncated with a warning naming src_what:line; a
// target longer than the model's positions, or invalid UTF-8 on either
// side, is an NMT_ERR_INPUT error naming the file and line (nothing is
// returned then); a score that is not finite (a model that overflows) is an
// NMT_ERR_RUNTIME error naming src_what:line. Sentences are scored `batch`
// at a time; the result does not depend on it.
int score_lines(Model *m, const Tokenizer *t, int max_src, char *const *src, char *const *tgt, size_t n,
                size_t batch, const char *src_what, const char *tgt_what, double *logprob, size_t *ntok);

#endif
