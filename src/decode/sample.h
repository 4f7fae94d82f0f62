// decode/sample.h — drawing one token from a model's distribution, as
// fairseq's --sampling does: temperature, then top-k, then top-p (nucleus).
#ifndef NMT_SAMPLE_H
#define NMT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int topk;            // keep the k most likely (0: all)
    double topp;         // then the fewest, most likely first, holding this much probability (1: all)
    double temperature;  // the scores are divided by it (> 0)
} SampleRule;

// A scratch for sample_pick over up to n scores (a thread's own).
typedef struct {
    double *p;
    int *order;
    size_t cap;
} SampleScratch;
void sample_scratch_reserve(SampleScratch *s, size_t n);
void sample_scratch_free(SampleScratch *s);

// Picks an index of lp[0..n) (log-probabilities, or any scores whose softmax
// is the distribution) with probability softmax(lp / temperature) restricted
// by the rule and renormalised; u in [0, 1) is the random draw. Ties rank
// the lower index first, so the choice is a function of (lp, rule, u) alone.
size_t sample_pick(const double *lp, size_t n, const SampleRule *rule, double u, SampleScratch *s);

// The index-th uniform double in [0, 1) of stream key (53 random bits).
double sample_uniform(uint64_t key, uint64_t index);

#endif
