// kernels/gemm_kernel.h — what gemm.c shares with its wider micro-kernels
// (gemm_avx512.c): the epilogue and the kernel that runs. Private to kernels/.
#ifndef NMT_GEMM_KERNEL_H
#define NMT_GEMM_KERNEL_H

#include <stddef.h>
#include <stdint.h>
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

// The bf16 tile (gemm_bf16.c): BF16_MR x BF16_NR sums. A packed panel holds,
// for each pair p of k, MR (or NR) 32-bit words: bf16 of k = 2p in the low
// half, of k = 2p + 1 in the high half; a[p*MR + r], b[p*NR + c]. The tile
// t (row r, column c at t[r*NR + c]) gets the sums over np pairs, from zero.
enum { BF16_MR = 6, BF16_NR = 32 };
void gemm_bf16_tile_avx512(size_t np, const uint32_t *a, const uint32_t *b, float *t);
// The same tile stored straight into C (row stride ldc) with the epilogue in
// registers: C = alpha * sum, plus bias (when not NULL) or beta * C (when
// beta != 0), then max(C, 0) when relu — each a separate rounding, as
// gemm_bf16.c's store_tile does, so the bits are the same.
typedef struct {
    float alpha, beta;
    const float *bias;
    int relu;
} Bf16Epi;
void gemm_bf16_tile_avx512_c(size_t np, const uint32_t *a, const uint32_t *b, float *c, size_t ldc,
                             const Bf16Epi *e);
void gemm_bf16_tile_avx2(size_t np, const uint32_t *a, const uint32_t *b, float *t);
int gemm_bf16_simd_built(void);  // whether this build has the two above
// bf16_from_float (bf16.h) with AVX2, 8 values at a time: w[p] = the words of
// src[2p] (low half) and src[2p + 1] (0 past n); w[i] = the words of lo[i] and
// hi[i]. For the SIMD kernels; the bits of the plain loops.
void bf16_round_pairs_avx2(uint32_t *w, const float *src, size_t n);
void bf16_round_interleave_avx2(uint32_t *w, const float *lo, const float *hi, size_t n);

// gemm_call's bf16 products (gemm_bf16.c), M, N and K all above zero.
struct GemmCall;
void gemm_bf16_call(const struct GemmCall *g);

// How a product of M rows, npan column panels and fmas multiply-adds is
// cut into work items (gemm.c and gemm_bf16.c alike): the threads (1 inside
// a parallel region or below par.h's threshold), rows per block (at most
// mc_max, a multiple of mr, as even as possible and, with several threads,
// as many blocks as a multiple of their count, so that they finish
// together), and the parts each block of columns is cut into (few row
// blocks: enough work items). How work is cut changes no arithmetic.
typedef struct {
    int nt;
    size_t mc, njp;
} GemmSplit;
GemmSplit gemm_split(size_t M, size_t npan, double fmas, size_t mr, size_t mc_max);

// The calling thread's packing space: at least bytes, 64-byte aligned, kept
// for its next product; b_side picks one of its two buffers.
void *gemm_pack_space(int b_side, size_t bytes);

#endif
