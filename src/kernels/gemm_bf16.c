// kernels/gemm_bf16.c — the bf16 matrix product (GemmCall.bf16): A and B
// rounded to bfloat16 as they are packed, pairs of k summed in float by a
// 6 x 32 tile (gemm_kernel.h), OpenMP over output tiles.
//
// The loop nest is gemm.c's (B block shared, A block per thread, tiles), with
// K counted in pairs. Determinism likewise: every element is summed by the
// same steps (bf16_step, pairs in order, K blocks that depend on K only,
// added to C in order), whichever kernel and thread computes its tile.
#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/bf16.h"

#include <stdint.h>
#include <string.h>

#include "common/util.h"

// Tile, pairs of k per block (a B panel of 32 KiB stays in L1), rows per A
// block (L2), columns per B block.
enum { MR = BF16_MR, NR = BF16_NR, KP = 256, MC = 144, NC = 4096 };

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------
// Kernels.

static uint32_t word_even(uint32_t w) { return w << 16; }
static uint32_t word_odd(uint32_t w) { return w & 0xffff0000u; }
static float as_float(uint32_t v) {
    float x;
    memcpy(&x, &v, sizeof x);
    return x;
}

static void tile_portable(size_t np, const uint32_t *a, const uint32_t *b, float *t) {
    float acc[MR * NR] = {0};
    for (size_t p = 0; p < np; p++)
        for (int r = 0; r < MR; r++) {
            uint32_t wa = a[p * MR + r];
            float ae = as_float(word_even(wa)), ao = as_float(word_odd(wa));
            for (int c = 0; c < NR; c++) {
                uint32_t wb = b[p * NR + c];
                float s = bf16_step(acc[r * NR + c], ao, as_float(word_odd(wb)));
                acc[r * NR + c] = bf16_step(s, ae, as_float(word_even(wb)));
            }
        }
    memcpy(t, acc, sizeof acc);
}

typedef void (*TileFn)(size_t np, const uint32_t *a, const uint32_t *b, float *t);

static int kernel_choice = -1;

const char *gemm_bf16_kernel_name(Bf16Kernel k) {
    return k == BF16_KERNEL_AVX512 ? "avx512bf16" : k == BF16_KERNEL_AVX2 ? "avx2" : "portable";
}

int gemm_bf16_kernel_by_name(const char *name) {
    for (int k = BF16_KERNEL_PORTABLE; k <= BF16_KERNEL_AVX512; k++)
        if (!strcmp(name, gemm_bf16_kernel_name((Bf16Kernel)k))) return k;
    return -1;
}

int gemm_bf16_kernel_available(Bf16Kernel k) {
    if (k == BF16_KERNEL_PORTABLE) return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!gemm_bf16_simd_built()) return 0;
    if (k == BF16_KERNEL_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == BF16_KERNEL_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#endif
    return 0;
}

int gemm_bf16_use_kernel(Bf16Kernel k) {
    if (!gemm_bf16_kernel_available(k))
        return err_set(NMT_ERR_INPUT, "the %s bf16 kernel is not available on this CPU or build",
                       gemm_bf16_kernel_name(k));
    __atomic_store_n(&kernel_choice, (int)k, __ATOMIC_RELAXED);
    return NMT_OK;
}

// The fastest available: the instruction, else its emulation, else C.
Bf16Kernel gemm_bf16_kernel(void) {
    int k = __atomic_load_n(&kernel_choice, __ATOMIC_RELAXED);
    if (k >= 0) return (Bf16Kernel)k;
    k = gemm_bf16_kernel_available(BF16_KERNEL_AVX512) ? BF16_KERNEL_AVX512
        : gemm_bf16_kernel_available(BF16_KERNEL_AVX2) ? BF16_KERNEL_AVX2
                                                       : BF16_KERNEL_PORTABLE;
    __atomic_store_n(&kernel_choice, k, __ATOMIC_RELAXED);
    return (Bf16Kernel)k;
}

static TileFn tile_fn(void) {
    switch (gemm_bf16_kernel()) {
    case BF16_KERNEL_AVX512: return gemm_bf16_tile_avx512;
    case BF16_KERNEL_AVX2: return gemm_bf16_tile_avx2;
    default: return tile_portable;
    }
}

// ---------------------------------------------------------------------------
// Packing: words of two bf16 (k = 2p low, 2p + 1 high). Past the matrix's
// edge (rows, columns, an odd K's last pair) the values are zeros.

// Rounds n values, src[i * stride], to words of two: w[p] holds values 2p and
// 2p + 1 (zero past n). simd: with AVX2 (the same bits).
static void round_pairs(uint32_t *restrict w, const real *restrict src, size_t stride, size_t n, int simd) {
#ifndef NMT_DOUBLE
    if (simd && stride == 1) {
        bf16_round_pairs_avx2(w, src, n);
        return;
    }
#else
    (void)simd;
#endif
    for (size_t p = 0; 2 * p < n; p++) {
        uint32_t odd = 2 * p + 1 < n ? bf16_from_float((float)src[(2 * p + 1) * stride]) : 0;
        w[p] = bf16_from_float((float)src[2 * p * stride]) | odd << 16;
    }
}

// Rounds n values of two rows, lo[i] and hi[i], to w[i] = (lo, hi) (hi NULL: zeros).
static void round_interleave(uint32_t *restrict w, const real *restrict lo, const real *restrict hi, size_t n,
                             int simd) {
#ifndef NMT_DOUBLE
    if (simd) {
        bf16_round_interleave_avx2(w, lo, hi, n);
        return;
    }
#else
    (void)simd;
#endif
    for (size_t i = 0; i < n; i++)
        w[i] = bf16_from_float((float)lo[i]) | (hi ? (uint32_t)bf16_from_float((float)hi[i]) << 16 : 0);
}

// Micro-panels of op(X), `lanes` (MR or NR) lines of pairs [p0, p0 + np) of
// k, for lines [i0, i0 + n) of the `lines` op(X) has: panel s at dst + s *
// lanes * np, word (p, l) at p * lanes + l. trans: op(X)(line, k) = X[k * ld
// + line], else X[line * ld + k]. K values in all; tmp holds max(np, n) words.
// (The two cases: pack_lines, pack_rows.)
typedef struct {
    size_t lanes;
    const real *X;
    size_t ld;
    int trans;
    size_t lines, K;
    int simd;
} PackSrc;

// A line's k values are contiguous: its words, then spread over the panel.
static void pack_lines(uint32_t *restrict dst, uint32_t *restrict tmp, const PackSrc *x, size_t i0, size_t n,
                       size_t p0, size_t np) {
    size_t lanes = x->lanes, k0 = 2 * p0, kn = min_sz(2 * np, x->K - k0);
    for (size_t l = 0; l < ceil_div(n, lanes) * lanes; l++) {
        uint32_t *d = dst + (l / lanes) * lanes * np + l % lanes;
        if (i0 + l >= x->lines || l >= n) {
            for (size_t p = 0; p < np; p++) d[p * lanes] = 0;
            continue;
        }
        round_pairs(tmp, x->X + (i0 + l) * x->ld + k0, 1, kn, x->simd);
        for (size_t p = 0; p < np; p++) d[p * lanes] = tmp[p];
    }
}

// A pair's values are two rows of X, contiguous along the lines: one panel
// of full width is written in place, others through tmp.
static void pack_rows(uint32_t *restrict dst, uint32_t *restrict tmp, const PackSrc *x, size_t i0, size_t n,
                      size_t p0, size_t np) {
    size_t lanes = x->lanes, npanels = ceil_div(n, lanes), valid = min_sz(n, x->lines - i0);
    for (size_t p = 0; p < np; p++) {
        size_t k = 2 * (p0 + p);  // k < K, or the zero pair past an odd K
        const real *lo = k < x->K ? x->X + k * x->ld + i0 : NULL, *hi = k + 1 < x->K ? lo + x->ld : NULL;
        if (npanels == 1 && valid == lanes && k < x->K) {
            round_interleave(dst + p * lanes, lo, hi, lanes, x->simd);
            continue;
        }
        if (k < x->K) round_interleave(tmp, lo, hi, valid, x->simd);
        for (size_t s = 0; s < npanels; s++) {
            uint32_t *d = dst + s * lanes * np + p * lanes;
            for (size_t l = 0; l < lanes; l++) {
                size_t i = s * lanes + l;
                d[l] = k < x->K && i < valid ? tmp[i] : 0;
            }
        }
    }
}

static void pack(uint32_t *restrict dst, uint32_t *restrict tmp, const PackSrc *x, size_t i0, size_t n, size_t p0,
                 size_t np) {
    if (x->trans) pack_rows(dst, tmp, x, i0, n, p0, np);
    else pack_lines(dst, tmp, x, i0, n, p0, np);
}

// ---------------------------------------------------------------------------
// The blocked product.

typedef struct {
    const GemmCall *g;
    size_t np_all;  // pairs of k
    size_t nkb;     // K blocks
    size_t mc;      // rows per A block, a multiple of MR
    size_t njp;     // parts each NC block of columns is cut into
    uint32_t *bpack;
    TileFn tile;
    PackSrc a, b;  // op(A): lines are rows, MR to a panel; op(B): columns, NR
} Plan;

// Stores a tile's sums: C = alpha * sum, plus the bias (first block) or
// beta * C, clamped at zero (last block) when asked: mr x nr of it. (The
// cases apart, so that each loop is a plain vector loop.)
static void store_tile(const GemmCall *g, const float *t, size_t i, size_t j, size_t mr, size_t nr, real beta,
                       int first, int last) {
    const real *bias = first && g->bias ? g->bias + j : NULL;
    int relu = last && g->relu;
    real alpha = g->alpha;
    for (size_t r = 0; r < mr; r++) {
        real *restrict c = g->C + (i + r) * g->ldc + j;
        const float *restrict s = t + r * NR;
        if (bias)
            for (size_t x = 0; x < nr; x++) c[x] = alpha * (real)s[x] + bias[x];
        else if (beta == 1)
            for (size_t x = 0; x < nr; x++) c[x] = c[x] + alpha * (real)s[x];
        else if (beta != 0)
            for (size_t x = 0; x < nr; x++) c[x] = beta * c[x] + alpha * (real)s[x];
        else if (alpha == 1)
            for (size_t x = 0; x < nr; x++) c[x] = (real)s[x];
        else
            for (size_t x = 0; x < nr; x++) c[x] = alpha * (real)s[x];
        if (relu)
            for (size_t x = 0; x < nr; x++) c[x] = c[x] > 0 ? c[x] : 0;
    }
}

// Rows [i0, i0 + mc) x B panels [t0, t1) of the block at (jc, p0, np).
static void compute_item(const Plan *pl, const uint32_t *apack, size_t i0, size_t mc, size_t jc, size_t t0,
                         size_t t1, size_t np, real beta, int first, int last) {
    const GemmCall *g = pl->g;
    float tile[MR * NR] __attribute__((aligned(64)));
    for (size_t t = t0; t < t1; t++) {
        size_t j = jc + t * NR, nr = min_sz(NR, g->N - j);
        for (size_t s = 0; s * MR < mc; s++) {
            size_t i = i0 + s * MR, mr = min_sz(MR, g->M - i);
            const uint32_t *ap = apack + s * MR * np, *bp = pl->bpack + t * NR * np;
#ifndef NMT_DOUBLE
            if (pl->tile == gemm_bf16_tile_avx512 && mr == MR && nr == NR) {  // the epilogue in registers
                Bf16Epi e = {g->alpha, beta, first && g->bias ? g->bias + j : NULL, last && g->relu};
                gemm_bf16_tile_avx512_c(np, ap, bp, g->C + i * g->ldc + j, g->ldc, &e);
                continue;
            }
#endif
            pl->tile(np, ap, bp, tile);
            store_tile(g, tile, i, j, mr, nr, beta, first, last);
        }
    }
}

static void run(const Plan *pl, int par) {
    const GemmCall *g = pl->g;
    size_t nic = ceil_div(g->M, pl->mc), np_max = ceil_div(pl->np_all, pl->nkb);
    uint32_t *apack = gemm_pack_space(0, (ceil_div(pl->mc, MR) * MR * np_max + NR * np_max + MC + NR) * 4);
    uint32_t *tmp = apack + ceil_div(pl->mc, MR) * MR * np_max;
    for (size_t jc = 0; jc < g->N; jc += NC) {
        size_t nc = min_sz(NC, g->N - jc), npan = ceil_div(nc, NR), njp = min_sz(pl->njp, npan);
        size_t nitems = nic * njp;
        for (size_t b = 0; b < pl->nkb; b++) {
            size_t p0 = pl->np_all * b / pl->nkb, np = pl->np_all * (b + 1) / pl->nkb - p0;
            real beta = b == 0 ? g->beta : 1;  // later K blocks add to C
#define PACK_B(t) pack(pl->bpack + (t) * NR * np, tmp, &pl->b, jc + (t) * NR, min_sz(NR, g->N - jc - (t) * NR), p0, np)
            if (par) {
#pragma omp for schedule(dynamic, 1)
                for (size_t t = 0; t < npan; t++) PACK_B(t);
            } else {
                for (size_t t = 0; t < npan; t++) PACK_B(t);
            }
#undef PACK_B
            size_t packed = SIZE_MAX;
#define ITEM(w)                                                                                      \
    do {                                                                                             \
        size_t ib = (w) / njp, jp = (w) % njp, i0 = ib * pl->mc, mc = min_sz(pl->mc, g->M - i0);     \
        if (packed != ib) {                                                                          \
            pack(apack, tmp, &pl->a, i0, mc, p0, np);                                                \
            packed = ib;                                                                             \
        }                                                                                            \
        compute_item(pl, apack, i0, mc, jc, jp * npan / njp, (jp + 1) * npan / njp, np, beta, b == 0, \
                     b + 1 == pl->nkb);                                                              \
    } while (0)
            if (par) {
#pragma omp for schedule(dynamic, 1)
                for (size_t w = 0; w < nitems; w++) ITEM(w);
            } else {
                for (size_t w = 0; w < nitems; w++) ITEM(w);
            }
#undef ITEM
        }
    }
}

void gemm_bf16_call(const GemmCall *g) {
    size_t M = g->M, N = g->N;
    Plan pl = {.g = g, .np_all = ceil_div(g->K, 2), .tile = tile_fn()};
    int simd = pl.tile != tile_portable;  // the SIMD kernels' CPUs have AVX2
    pl.a = (PackSrc){MR, g->A, g->lda, g->trans_a, M, g->K, simd};
    pl.b = (PackSrc){NR, g->B, g->ldb, !g->trans_b, N, g->K, simd};
    pl.nkb = ceil_div(pl.np_all, KP);
    size_t np_max = ceil_div(pl.np_all, pl.nkb), npan_max = ceil_div(min_sz(NC, N), NR);
    GemmSplit sp = gemm_split(M, npan_max, (double)M * (double)N * (double)g->K, MR, MC);
    int nt = sp.nt;
    pl.mc = sp.mc;
    pl.njp = sp.njp;
    pl.bpack = gemm_pack_space(1, npan_max * NR * np_max * 4);
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        run(&pl, 1);
    } else {
        run(&pl, 0);
    }
}
