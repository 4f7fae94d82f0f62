// common/rng.h — counter-based random numbers.
// Every random draw is a pure function of (seed, stream, index): the same
// numbers whatever the thread count or the order of evaluation, and nothing
// to save for an exact resume. Inline: dropout calls these per element.
#ifndef NMT_RNG_H
#define NMT_RNG_H

#include <stdint.h>

// SplitMix64's finaliser.
static inline uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// A key naming a stream: (seed, a, b) -> 64 bits.
static inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t k = rng_mix64(seed + 0x9e3779b97f4a7c15ULL);
    k = rng_mix64(k ^ (a * 0xd1b54a32d192ed03ULL + 0x632be59bd9b4e019ULL));
    return rng_mix64(k ^ (b * 0x8cb92ba72f3d8dd7ULL + 0x2545f4914f6cdd1dULL));
}

// The index-th output of stream `key` (SplitMix64 indexed directly).
static inline uint64_t rng_u64(uint64_t key, uint64_t index) {
    return rng_mix64(key + (index + 1) * 0x9e3779b97f4a7c15ULL);
}

// Uniform in [0, 1) with 24 random bits (exactly representable as float).
static inline float rng_uniform(uint64_t key, uint64_t index) {
    return (float)(rng_u64(key, index) >> 40) * (1.0f / 16777216.0f);
}

// Dropout: element `index` is kept with probability 1 - p, where
// threshold = rng_threshold(p). Two elements share one 64-bit draw.
static inline uint32_t rng_threshold(double p) {
    double t = p * 4294967296.0;
    return t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
}
static inline int rng_keep(uint64_t key, uint64_t index, uint32_t threshold) {
    uint64_t u = rng_u64(key, index >> 1);
    uint32_t bits = (index & 1) ? (uint32_t)(u >> 32) : (uint32_t)u;
    return bits >= threshold;
}

#endif
