// kernels/gemm_kernel.h — what gemm.c shares with its wider micro-kernels
// (gemm_avx512.c): the epilogue and the kernel that runs. Private to kernels/.
#ifndef NMT_GEMM_KERNEL_H
#define NMT_GEMM_KERNEL_H

#include <stddef.h>
#include "common/real.h"

// What the kernel does to its sums before storing them: add a bias row (in
// place of beta * C; the first K block) and/or clamp at zero (the last block).
// bias points at the tile's first column.
typedef struct {
    const real *bias;
    int relu;
} Epi;

// The AVX-512 tile: 6 rows x 32 columns, the columns two B micro-panels of 16
// (b0 and b1, each row k at + k*bs), A(r, k) at a[r*ars + k*aks]. Every
// element is summed as the AVX2 kernel sums it (one FMA per k, in order from
// zero; then alpha * sum, the bias or beta * C, the clamp): the same bits.
// Defined only where gemm_avx512_built() says so.
void gemm_kernel_avx512(size_t kc, const float *a, size_t ars, size_t aks, const float *b0, const float *b1,
                        size_t bs, float *c, size_t ldc, float alpha, float beta, const Epi *e);
int gemm_avx512_built(void);

#endif
