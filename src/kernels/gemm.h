// kernels/gemm.h — the one matrix-product entry point of the program.
//
// Row-major, BLAS-like:  C = alpha * op(A) * op(B) + beta * C
//   op(A) is (M,K): A is (M,K) with row stride lda, or (K,M) when trans_a.
//   op(B) is (K,N): B is (K,N) with row stride ldb, or (N,K) when trans_b.
//   C is (M,N) with row stride ldc. beta == 0 means C is not read.
//
// Results are bit-identical whatever the number of OpenMP threads: each output
// element is always summed over K in the same order. Called from inside an
// OpenMP parallel region it runs on the calling thread only.
#ifndef NMT_GEMM_H
#define NMT_GEMM_H

#include <stddef.h>
#include "common/real.h"

// Each element's sum runs over K in order from zero, one term at a time as
// gemm_term adds it; K beyond GEMM_KC is summed in even blocks. Code that must
// give a product's bits without calling gemm (decoding's attention) sums the
// same way, for K <= GEMM_KC, and then multiplies by alpha.
enum { GEMM_KC = 256 };
static inline real gemm_term(real acc, real a, real b) {
#if !defined(NMT_DOUBLE) && defined(__AVX2__) && defined(__FMA__)
    return __builtin_fmaf(a, b, acc);  // the kernels' FMA
#else
    return acc + a * b;
#endif
}

// The micro-kernels: every one sums each element the same way, so which one
// runs never changes a bit. The build has the portable one only (the double
// build, a CPU without AVX2 at build time) or AVX2 and AVX-512, of which the
// CPU running nmt picks one.
typedef enum { GEMM_KERNEL_PORTABLE, GEMM_KERNEL_AVX2, GEMM_KERNEL_AVX512 } GemmKernel;

// The kernel products use. Chosen once per process: AVX-512 where the CPU has
// it at full width (AMD Zen 5 and later by CPUID), AVX2 where it lacks it;
// elsewhere (Zen 4 splits 512-bit operations in two; Intel parts differ) a
// short timing of both tiles, made once, decides.
GemmKernel gemm_kernel(void);
const char *gemm_kernel_name(GemmKernel k);  // "portable", "avx2", "avx512"
// Whether this build, on this CPU, can run k.
int gemm_kernel_available(GemmKernel k);
// Makes products use k from now on (tests, benchmarks, NMT_GEMM_KERNEL):
// NMT_ERR_INPUT, naming it, when it is not available. Not while products run.
int gemm_use_kernel(GemmKernel k);
// What the timing alone would choose (where CPUID settles the choice the
// timing does not run; tests run it everywhere). Changes nothing.
GemmKernel gemm_kernel_by_timing(void);
// The kernel a name ("avx2", ...) gives, or -1.
int gemm_kernel_by_name(const char *name);

void gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K,
          real alpha, const real *A, size_t lda, const real *B, size_t ldb,
          real beta, real *C, size_t ldc);

// The same product as a value, for gemm_pair, with an optional epilogue:
// bias (N values, or NULL) is added to every row in place of beta * C, and
// relu then clamps C at zero (C = max(0, alpha op(A) op(B) + bias)). Done as
// the kernel stores C, this saves the passes over C that filling it with the
// bias first and a separate ReLU would take; the bits are the same.
typedef struct GemmCall {
    int trans_a, trans_b;
    size_t M, N, K;
    real alpha;
    const real *A;
    size_t lda;
    const real *B;
    size_t ldb;
    real beta;
    real *C;
    size_t ldc;
    const real *bias;
    int relu;
    // 1: the bf16 product — A's and B's values rounded to bfloat16 (bf16.h)
    // as they are read, the sums in float, pairs of k at a time (bf16_step).
    // Every bf16 kernel gives the same bits; they differ from the float
    // product's. (In the double build too: values rounded via float.)
    int bf16;
} GemmCall;

void gemm_call(const GemmCall *g);

// The bf16 products' kernels: the AVX-512 BF16 instruction (vdpbf16ps),
// its emulation with AVX2 FMAs, and plain C — the same bits (bf16_step).
// The fastest the CPU runs is chosen once.
typedef enum { BF16_KERNEL_PORTABLE, BF16_KERNEL_AVX2, BF16_KERNEL_AVX512 } Bf16Kernel;
Bf16Kernel gemm_bf16_kernel(void);
const char *gemm_bf16_kernel_name(Bf16Kernel k);  // "portable", "avx2", "avx512bf16"
int gemm_bf16_kernel_available(Bf16Kernel k);
// NMT_ERR_INPUT, naming it, when k is not available. Not while products run.
int gemm_bf16_use_kernel(Bf16Kernel k);
int gemm_bf16_kernel_by_name(const char *name);  // or -1

// Two independent products (neither reads what the other writes). Small ones
// run side by side, one thread each, rather than one after the other on all
// threads: a product too small to split well still keeps a core busy. The
// results are those of two gemm() calls.
void gemm_pair(const GemmCall *a, const GemmCall *b);

// Straightforward triple loop with the same contract; the reference in tests.
void gemm_reference(int trans_a, int trans_b, size_t M, size_t N, size_t K,
                    real alpha, const real *A, size_t lda, const real *B, size_t ldb,
                    real beta, real *C, size_t ldc);

#endif
