// test_gemm_bf16.c — the bf16 product: its rounding, every kernel's bits
// against the plain C one (which follows bf16_step literally), the product
// against a double sum of the same rounded inputs, and the same bits whatever
// the number of threads.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "common/util.h"

static uint32_t bits_of(float x) {
    uint32_t v;
    memcpy(&v, &x, sizeof v);
    return v;
}
static float from_bits(uint32_t v) {
    float x;
    memcpy(&x, &v, sizeof x);
    return x;
}

Test(bf16, rounds_to_nearest_even) {
    cr_assert_eq(bf16_from_float(1.0f), 0x3f80);
    cr_assert_eq(bf16_from_float(from_bits(0x3f808000)), 0x3f80);  // tie, even below
    cr_assert_eq(bf16_from_float(from_bits(0x3f818000)), 0x3f82);  // tie, even above
    cr_assert_eq(bf16_from_float(from_bits(0x3f808001)), 0x3f81);  // past the tie
    cr_assert_eq(bf16_from_float(from_bits(0x3f807fff)), 0x3f80);
    cr_assert_eq(bf16_from_float(-2.5f), 0xc020);
    cr_assert_eq(bf16_from_float(FLT_MAX), 0x7f80, "past the largest bf16: infinity");
    cr_assert_eq(bf16_from_float(-INFINITY), 0xff80);
    cr_assert_eq(bf16_from_float(from_bits(0x00400000)), 0x0000, "a denormal becomes zero");
    cr_assert_eq(bf16_from_float(from_bits(0x80000001)), 0x8000, "of its sign");
    cr_assert_eq(bf16_from_float(from_bits(0x7f800001)), 0x7fc0, "a signalling NaN becomes quiet");
    cr_assert_eq(bf16_from_float(from_bits(0xffc12345)), 0xffc1);
    cr_assert_eq(bf16_to_float(0x3f80), 1.0f);
    // Every bf16 value comes back unchanged.
    for (uint32_t h = 0; h < 0x10000; h++) {
        float x = bf16_to_float((uint16_t)h);
        if (isnan(x) || (fabsf(x) < FLT_MIN && x != 0)) continue;
        cr_assert_eq(bf16_from_float(x), h, "0x%04x", h);
    }
}

Test(bf16, step_rounds_once_and_flushes) {
    // The exact product, then one rounding: 1 + 2^-24 is a tie, to even (1).
    cr_assert_eq(bf16_step(1.0f, 0x1p-12f, 0x1p-12f), 1.0f);
    cr_assert_eq(bf16_step(1.0f, 0x1.02p-12f, 0x1p-12f), 1.0f + 0x1p-23f);
    // Results below the smallest normal become zero of their sign.
    cr_assert_eq(bits_of(bf16_step(0, 0x1p-70f, 0x1p-60f)), 0u);
    cr_assert_eq(bits_of(bf16_step(0, -0x1p-70f, 0x1p-60f)), 0x80000000u);
    cr_assert_eq(bits_of(bf16_step(0x1p-126f, 0x1p-70f, -0x1p-57f)), 0u, "2^-127: flushed");
}

// ------------------------------------------------------------------ products

static uint64_t lcg;
static float rnd(void) {  // uniform in [-1, 1), and sometimes a wide exponent
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    float x = (float)((double)(lcg >> 40) / (double)(1ull << 23) - 1.0);
    if ((lcg >> 20 & 15) == 0) x *= 1024.0f;
    return x;
}

typedef struct {
    int ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    float *A, *B, *C0, *bias;
} Prob;

// Stored A (M,K) or (K,M) when ta; B (K,N) or (N,K) when tb; rows one value
// wider than needed, the extra value NaN (a read of it poisons the result).
static Prob make(int ta, int tb, size_t M, size_t N, size_t K) {
    Prob p = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K};
    size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    p.lda = ac + 1, p.ldb = bc + 1, p.ldc = N + 1;
    p.A = malloc((ar * p.lda + 1) * sizeof(float));
    p.B = malloc((br * p.ldb + 1) * sizeof(float));
    p.C0 = malloc((M * p.ldc + 1) * sizeof(float));
    p.bias = malloc((N + 1) * sizeof(float));
    cr_assert(p.A && p.B && p.C0 && p.bias);
    for (size_t i = 0; i < ar * p.lda; i++) p.A[i] = i % p.lda < ac ? rnd() : NAN;
    for (size_t i = 0; i < br * p.ldb; i++) p.B[i] = i % p.ldb < bc ? rnd() : NAN;
    for (size_t i = 0; i < M * p.ldc; i++) p.C0[i] = rnd();
    for (size_t j = 0; j < N; j++) p.bias[j] = rnd();
    return p;
}

static void unmake(Prob *p) {
    free(p->A);
    free(p->B);
    free(p->C0);
    free(p->bias);
}

typedef struct {
    float alpha, beta;
    int bias, relu;
} Epilogue;

static float *product(const Prob *p, Epilogue e) {
    float *C = malloc((p->M * p->ldc + 1) * sizeof(float));
    cr_assert(C);
    memcpy(C, p->C0, p->M * p->ldc * sizeof(float));
    gemm_call(&(GemmCall){p->ta, p->tb, p->M, p->N, p->K, e.alpha, p->A, p->lda, p->B, p->ldb, e.beta, C,
                          p->ldc, e.bias ? p->bias : NULL, e.relu, 1});
    return C;
}

// Runs the product with every available kernel: each must give the plain C
// kernel's bytes. Returns that result.
static float *all_kernels_agree(const Prob *p, Epilogue e) {
    Bf16Kernel was = gemm_bf16_kernel();
    cr_assert_eq(gemm_bf16_use_kernel(BF16_KERNEL_PORTABLE), NMT_OK);
    float *want = product(p, e);
    for (int k = BF16_KERNEL_AVX2; k <= BF16_KERNEL_AVX512; k++) {
        if (!gemm_bf16_kernel_available((Bf16Kernel)k)) continue;
        cr_assert_eq(gemm_bf16_use_kernel((Bf16Kernel)k), NMT_OK);
        float *got = product(p, e);
        for (size_t i = 0; i < p->M; i++)
            for (size_t j = 0; j < p->N; j++) {
                float g = got[i * p->ldc + j], w = want[i * p->ldc + j];
                cr_assert(bits_of(g) == bits_of(w), "%s kernel, %zux%zux%zu ta %d tb %d: C(%zu,%zu) %a, want %a",
                          gemm_bf16_kernel_name((Bf16Kernel)k), p->M, p->N, p->K, p->ta, p->tb, i, j, g, w);
            }
        cr_assert(memcmp(got, want, p->M * p->ldc * sizeof(float)) == 0, "outside C's columns changed");
        free(got);
    }
    cr_assert_eq(gemm_bf16_use_kernel(was), NMT_OK);
    return want;
}

static float opa(const Prob *p, size_t i, size_t k) { return p->ta ? p->A[k * p->lda + i] : p->A[i * p->lda + k]; }
static float opb(const Prob *p, size_t k, size_t j) { return p->tb ? p->B[j * p->ldb + k] : p->B[k * p->ldb + j]; }
static double rounded(float x) { return bf16_to_float(bf16_from_float(x)); }

// C against the same product summed in double from the same rounded inputs.
// Every step of the float sum rounds once (relative error at most u = 2^-24),
// so |sum - exact| <= gamma_K * sum |a b| with gamma_K = K u / (1 - K u);
// alpha, beta * C and the bias add one rounding each.
static void near_double(const Prob *p, const float *C, Epilogue e) {
    double u = 0x1p-24, gamma = (double)p->K * u / (1 - (double)p->K * u);
    for (size_t i = 0; i < p->M; i++)
        for (size_t j = 0; j < p->N; j++) {
            double s = 0, mag = 0;
            for (size_t k = 0; k < p->K; k++) {
                double t = rounded(opa(p, i, k)) * rounded(opb(p, k, j));
                s += t;
                mag += fabs(t);
            }
            double add = e.bias ? p->bias[j] : e.beta != 0 ? (double)e.beta * p->C0[i * p->ldc + j] : 0;
            double want = e.alpha * s + add, tol = fabs(e.alpha) * mag * (gamma + 2 * u) + fabs(add) * 2 * u;
            if (e.relu && want < 0) want = 0;
            double got = C[i * p->ldc + j];
            cr_assert(fabs(got - want) <= tol + 1e-30, "C(%zu,%zu) = %.9g, double %.9g (tol %.3g)", i, j, got,
                      want, tol);
        }
}

Test(gemm_bf16, every_kernel_same_bits_and_near_double) {
    lcg = 11;
    const size_t shapes[][3] = {{1, 1, 1},    {6, 32, 2},   {7, 33, 3},   {13, 70, 17},
                                {64, 64, 64}, {5, 100, 513}, {150, 40, 1030}, {37, 300, 255}};
    const Epilogue eps[] = {{1, 0, 0, 0}, {0.125f, 0, 0, 0}, {1, 1, 0, 0}, {0.5f, 0.75f, 0, 0},
                            {1, 0, 1, 0}, {1, 0, 1, 1},      {1, 1, 0, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int layout = 0; layout < 4; layout++) {
            Prob p = make(layout & 1, layout >> 1, shapes[s][0], shapes[s][1], shapes[s][2]);
            Epilogue e = eps[(s + (size_t)layout) % (sizeof eps / sizeof *eps)];
            float *C = all_kernels_agree(&p, e);
            near_double(&p, C, e);
            free(C);
            unmake(&p);
        }
}

// The values the instruction treats specially: denormal inputs and results,
// infinities, and sums whose rounding depends on the order of the pair.
Test(gemm_bf16, kernels_agree_at_the_edges) {
    const float special[] = {0x1p-127f, -0x1p-130f, 0x1p-100f, 0x1p-60f, 0x1p100f, -0x1p120f, 3.0f, 1.0f,
                             0x1p-24f, 0x1.8p-24f, -0x1p-23f, 65504.0f, 0, -0.0f, 0x1p-126f, 1e-38f};
    size_t ns = sizeof special / sizeof *special;
    lcg = 3;
    Prob p = make(0, 0, 13, 47, 9);
    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < 13 * p.lda; i++)
            if (i % p.lda < 9) p.A[i] = rnd() < 0 ? special[(size_t)(lcg >> 33) % ns] : rnd();
        for (size_t i = 0; i < 9 * p.ldb; i++)
            if (i % p.ldb < 47) p.B[i] = rnd() < 0 ? special[(size_t)(lcg >> 33) % ns] : rnd();
        float *C = all_kernels_agree(&p, (Epilogue){1, 0, 0, 0});
        free(C);
    }
    unmake(&p);
}

// A sum whose rounding depends on the order within a pair: the first pair
// gives 1 (its odd term), then the second pair's odd term -2^-22 and even
// term 3 * 2^-26. Odd first: (1 - 2^-22) + 3 * 2^-26 = 0x1.fffffap-1; even
// first would give 0x1.fffff8p-1. Every kernel takes the odd term first.
Test(gemm_bf16, odd_term_of_a_pair_first) {
    float A[4] = {0, 1, 0x3p-26f, -0x1p-22f}, B[4] = {1, 1, 1, 1}, C[1];
    Bf16Kernel was = gemm_bf16_kernel();
    for (int k = BF16_KERNEL_PORTABLE; k <= BF16_KERNEL_AVX512; k++) {
        if (!gemm_bf16_kernel_available((Bf16Kernel)k)) continue;
        cr_assert_eq(gemm_bf16_use_kernel((Bf16Kernel)k), NMT_OK);
        gemm_call(&(GemmCall){0, 0, 1, 1, 4, 1, A, 4, B, 1, 0, C, 1, NULL, 0, 1});
        cr_assert_eq(C[0], 0x1.fffffap-1f, "%s: %a", gemm_bf16_kernel_name((Bf16Kernel)k), C[0]);
    }
    cr_assert_eq(gemm_bf16_use_kernel(was), NMT_OK);
}

Test(gemm_bf16, same_bits_whatever_the_threads) {
    lcg = 5;
    const size_t shapes[][3] = {{517, 300, 600}, {64, 2000, 256}, {1000, 96, 130}, {2048, 256, 1024}};
    for (int layout = 0; layout < 4; layout++) {
        const size_t *s = shapes[layout];
        Prob p = make(layout & 1, layout >> 1, s[0], s[1], s[2]);
        Epilogue e = {1, 0.5f, 0, 0};
        omp_set_num_threads(1);
        float *c1 = product(&p, e);
        omp_set_num_threads(2);
        float *c2 = product(&p, e);
        omp_set_num_threads(3);
        float *c3 = product(&p, e);
        size_t bytes = p.M * p.ldc * sizeof(float);
        cr_assert(memcmp(c1, c2, bytes) == 0, "1 vs 2 threads (layout %d)", layout);
        cr_assert(memcmp(c1, c3, bytes) == 0, "1 vs 3 threads (layout %d)", layout);
        free(c1);
        free(c2);
        free(c3);
        unmake(&p);
    }
    omp_set_num_threads(2);
}

Test(gemm_bf16, kernel_choice) {
    cr_assert(gemm_bf16_kernel_available(gemm_bf16_kernel()));
    cr_assert(gemm_bf16_kernel_available(BF16_KERNEL_PORTABLE));
    if (__builtin_cpu_supports("avx512bf16"))
        cr_assert_eq(gemm_bf16_kernel(), BF16_KERNEL_AVX512, "a CPU with AVX-512 BF16 uses it");
    for (int k = BF16_KERNEL_PORTABLE; k <= BF16_KERNEL_AVX512; k++)
        cr_assert_eq(gemm_bf16_kernel_by_name(gemm_bf16_kernel_name((Bf16Kernel)k)), k);
    cr_assert_eq(gemm_bf16_kernel_by_name("bf16"), -1);
}
