// kernels/bf16.h — bfloat16 values: the upper 16 bits of a float (sign, the
// same 8-bit exponent, 7 bits of fraction).
#ifndef NMT_BF16_H
#define NMT_BF16_H

#include <stdint.h>
#include <string.h>

// x rounded to nearest even. Zero and denormals become a zero of their sign
// (the products flush them anyway: one rule for every kernel); a NaN stays a
// NaN, made quiet; values past the largest bf16 become infinite.
static inline uint16_t bf16_from_float(float x) {
    uint32_t v;
    memcpy(&v, &x, sizeof v);
    uint32_t rounded = (v + 0x7fffu + ((v >> 16) & 1u)) >> 16;
    if ((v & 0x7f800000u) == 0) return (uint16_t)((v >> 16) & 0x8000u);
    if ((v & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v >> 16) | 0x0040u);
    return (uint16_t)rounded;
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t v = (uint32_t)h << 16;
    float x;
    memcpy(&x, &v, sizeof x);
    return x;
}

// One step of a bf16 product's sum as the AVX-512 BF16 instruction takes it:
// the exact product a*b added to acc and rounded once (to nearest even), a
// result below the smallest normal float flushed to a zero of its sign.
// Every bf16 kernel sums each pair of k as acc = step(step(acc, a[k+1],
// b[k+1]), a[k], b[k]): the odd term first.
static inline float bf16_step(float acc, float a, float b) {
    float r = __builtin_fmaf(a, b, acc);
    return __builtin_fabsf(r) < 0x1p-126f ? __builtin_copysignf(0.0f, r) : r;
}

#endif
