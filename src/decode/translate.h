// decode/translate.h — text in, text out: tokenize source lines, decode, detokenize.
#ifndef NMT_TRANSLATE_H
#define NMT_TRANSLATE_H

#include <stddef.h>
#include "decode/search.h"
#include "text/tokenizer.h"

typedef struct {
    size_t sentences, tokens;   // sentences translated, output tokens (EOS included)
    double seconds;             // wall time of decoding (tokenizing excluded)
} TranslateStats;

// Translates n lines. texts receives n*o->nbest malloc'ed strings (best first
// per sentence) and, if scores != NULL, their scores; when the search finds
// fewer than nbest hypotheses for a sentence, the missing ones (last) are ""
// with score -INFINITY, which callers leave out. Source lines longer than
// max_src tokens are truncated with a warning naming what:line. Invalid UTF-8
// is an NMT_ERR_INPUT error naming what:line; scores that are not finite (a
// model that overflows: translate_ids) an NMT_ERR_RUNTIME error naming what;
// then nothing is returned.
int translate_lines(Model *m, const Tokenizer *t, int max_src, char *const *lines, size_t n,
                    const DecodeOptions *o, const char *what, char **texts, double *scores,
                    TranslateStats *stats);
// translate_lines with an ensemble (decode/search.h), also handing over what
// the texts were decoded from (for work on the same hypotheses, such as
// attention maps): src[i] gets line i's source ids as decoded (stb_ds, cut
// to max_src) and hyps[i*nbest + k] the hypotheses; the caller arrfree()s
// src[i] and hyps[...].ids. Either may be NULL. On an error nothing is
// handed over.
int translate_lines_keep(const Ensemble *e, const Tokenizer *t, int max_src, char *const *lines, size_t n,
                         const DecodeOptions *o, const char *what, char **texts, double *scores,
                         TranslateStats *stats, int **src, Hypothesis *hyps);

#endif
