// bench/gemm.h — GFLOP/s of gemm() at the model's shapes, side by side with
// OpenBLAS when libopenblas.so.0 can be loaded at run time (`nmt bench gemm`).
#ifndef NMT_BENCH_GEMM_H
#define NMT_BENCH_GEMM_H

#include <stddef.h>
#include "common/real.h"

typedef struct {
    size_t M, N, K;
    size_t ld;  // > 0: A and B rows are this wide (one attention head of a wider matrix)
} GemmShape;

enum { GEMM_BENCH_MAX_REPS = 1000 };

// The shapes timed by default (the model's products); *n gets their count.
const GemmShape *bench_gemm_default_shapes(size_t *n);

// "MxNxK", each 1..1048576 and each matrix at most 2^28 elements (which also
// keeps OpenBLAS's int arguments in range). Returns 0, or -1 when s is not that.
int bench_gemm_parse_shape(const char *s, GemmShape *out);

// cblas_sgemm (cblas_dgemm in the double build), as OpenBLAS exports it.
typedef void (*CblasGemm)(int order, int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda,
                          const real *B, int ldb, real beta, real *C, int ldc);

// OpenBLAS's product with its thread pool set to `threads`, or NULL when
// libopenblas.so.0 cannot be loaded.
CblasGemm bench_gemm_openblas(int threads);

typedef struct {
    double median, best;            // GFLOP/s of gemm(): the median run and the best run
    double blas_median, blas_best;  // the same for OpenBLAS; 0 without it
} GemmTiming;

// Times C = A·B at one shape and layout (0 NN, 1 NT, 2 TN; NT means B is
// stored transposed) over `reps` runs (1..GEMM_BENCH_MAX_REPS) after a warm-up,
// alternating with `blas` run by run when it is not NULL. Uses OMP_NUM_THREADS threads.
// bf16: nmt's bf16 product (GemmCall.bf16) in place of its float one.
GemmTiming bench_gemm_time(const GemmShape *sh, int layout, CblasGemm blas, int reps, int bf16);

#endif
