// decode/search.h — translation: greedy and beam search over incremental decoding.
#ifndef NMT_DECODE_H
#define NMT_DECODE_H

#include <stddef.h>
#include "model/model.h"

// The incremental decoder's buffers (its key/value cache, activations, the
// transposed output projection: tens of MB), kept from one translate_ids call
// to the next by a caller that decodes call after call (nmt serve): fresh
// ones would be paged in and the projection transposed again at every call.
// They are reused while large enough for the call (the same model and beam),
// else replaced by larger ones; their size never changes a translation's
// bits. One call at a time, and the model's weights must not change while
// its scratch holds buffers for it (the transposed projection is a copy).
typedef struct DecodeScratch DecodeScratch;

typedef struct {
    int beam;               // 1 = greedy
    double alpha;           // length penalty ((5+len)/6)^alpha; 0 = none
    int nbest;              // hypotheses kept per sentence (<= beam)
    int batch;              // sentences decoded together; output does not depend on it
    double max_len_a;       // output length limit: a * source length + b tokens, then EOS
                            // is the only choice (its log-probability charged, as in fairseq)
    int max_len_b;
    int recompute;          // testing: recompute the whole prefix at every step (no cache)
    DecodeScratch *scratch; // NULL: the buffers are the call's own
    // Sampling instead of search: each of a sentence's nbest rows draws its
    // own output, token by token, from the model's distribution (logits / T,
    // cut to the topk most likely and then to the smallest set holding topp
    // of the probability). Sentence i of a call draws from random streams
    // named by (seed, i, sample): the output does not depend on the batch or
    // the threads. beam is not used.
    int sample;
    int topk;               // 0: every token
    double topp;            // 1: every token
    double temperature;     // > 0
    uint64_t seed;
} DecodeOptions;

typedef struct {
    int *ids;               // stb_ds array of target ids, without EOS
    double logprob;         // sum of log-probabilities, EOS included
    double score;           // logprob / length penalty (of the length with EOS)
    int eos;                // 1 when the model chose EOS, 0 when the length limit forced it
                            // (its log-probability is charged either way, as fairseq does)
} Hypothesis;

DecodeOptions decode_defaults(void);

DecodeScratch *decode_scratch_create(void);
void decode_scratch_free(DecodeScratch *s);
// How many times its buffers were (re)built so far.
size_t decode_scratch_builds(const DecodeScratch *s);

// Models decoded as one: at every step the search ranks the weighted mean
// of their log-probabilities (an ensemble, as Marian's --models --weights).
// Every member has its own decoder state; they must share the target
// vocabulary (callers check the tokenizers: text/tokenizer.h). One model
// alone is {&m, NULL, 1}, and its scores are its own log-probabilities.
typedef struct {
    Model *const *m;
    const double *w;    // weights, summing to 1; NULL: equal
    size_t n;
} Ensemble;

// Translates n sources (stb_ds id arrays without EOS). out must hold n * nbest
// hypotheses: sentence i's are out[i*nbest ...], best first. A step whose
// scores are not finite (a model whose weights overflow float) stops it:
// NMT_ERR_RUNTIME naming the sentence; every out[] is still set (the caller
// arrfree()s their ids), but what it holds is no translation.
int translate_ids(Model *m, int *const *src, size_t n, const DecodeOptions *o, Hypothesis *out);
// translate_ids with an ensemble (e->n >= 1); a single member gives
// translate_ids's bits. Members whose target vocabularies differ in size:
// NMT_ERR_INPUT, and every out[] empty.
int translate_ensemble_ids(const Ensemble *e, int *const *src, size_t n, const DecodeOptions *o, Hypothesis *out);

#endif
