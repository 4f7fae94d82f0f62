// rng.h — counter-based random numbers.
// Every random draw is a pure function of (seed, stream, index): the same
// numbers whatever the thread count or the order of evaluation, and nothing
// to save for an exact resume.
#ifndef NMT_RNG_H
#define NMT_RNG_H

#include <stdint.h>

// A 64-bit hash of (key, index). key = rng_key(seed, a, b) names a stream.
uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b);
uint64_t rng_u64(uint64_t key, uint64_t index);
// Uniform in [0, 1) with 24 random bits (exactly representable as float).
float rng_uniform(uint64_t key, uint64_t index);

// Dropout: element `index` is kept with probability 1 - p, where
// threshold = rng_threshold(p). Two elements share one 64-bit draw.
uint32_t rng_threshold(double p);
int rng_keep(uint64_t key, uint64_t index, uint32_t threshold);

#endif
