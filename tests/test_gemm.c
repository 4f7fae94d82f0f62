// test_gemm.c — gemm() against gemm_reference() on every layout, odd shapes,
// wide strides, alpha/beta combinations; K = 0; and bit-identical results
// whatever the number of threads.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gemm.h"
#include "kernels/gemm.h"
#include "common/util.h"

#ifdef NMT_DOUBLE
#define EPS DBL_EPSILON
#else
#define EPS FLT_EPSILON
#endif

static uint64_t lcg_state;
static real rand_real(void) {  // uniform in [-1, 1)
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (real)((double)(lcg_state >> 40) / (double)(1ull << 23) - 1.0);
}

typedef struct {
    int ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    size_t a_rows, b_rows;
    real *A, *B, *C0;  // C0: C before the product
} Prob;

// Stored A is (M,K) or (K,M) when ta; B is (K,N) or (N,K) when tb. Row strides
// are `pad` wider than the rows; the padding holds NaN, so any read of it
// poisons the result. C0 holds NaN everywhere when `nan_c`.
static Prob make_prob(int ta, int tb, size_t M, size_t N, size_t K, size_t pad, int nan_c) {
    Prob p = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K};
    size_t a_cols = ta ? M : K, b_cols = tb ? K : N;
    p.a_rows = ta ? K : M;
    p.b_rows = tb ? N : K;
    p.lda = a_cols + pad;
    p.ldb = b_cols + pad;
    p.ldc = N + pad;
    p.A = malloc((p.a_rows * p.lda + 1) * sizeof(real));
    p.B = malloc((p.b_rows * p.ldb + 1) * sizeof(real));
    p.C0 = malloc((M * p.ldc + 1) * sizeof(real));
    cr_assert(p.A && p.B && p.C0);
    for (size_t i = 0; i < p.a_rows * p.lda; i++) p.A[i] = i % p.lda < a_cols ? rand_real() : NAN;
    for (size_t i = 0; i < p.b_rows * p.ldb; i++) p.B[i] = i % p.ldb < b_cols ? rand_real() : NAN;
    for (size_t i = 0; i < M * p.ldc; i++) p.C0[i] = nan_c ? NAN : rand_real();
    return p;
}

static void free_prob(Prob *p) {
    free(p->A);
    free(p->B);
    free(p->C0);
}

static real *run_gemm(const Prob *p, real alpha, real beta, int reference) {
    real *C = malloc((p->M * p->ldc + 1) * sizeof(real));
    cr_assert(C);
    memcpy(C, p->C0, p->M * p->ldc * sizeof(real));
    (reference ? gemm_reference : gemm)(p->ta, p->tb, p->M, p->N, p->K, alpha, p->A, p->lda,
                                        p->B, p->ldb, beta, C, p->ldc);
    return C;
}

// Checks gemm against gemm_reference element by element.
//
// Tolerance: both compute a sum of K products in a different order (blocked,
// fused multiply-add vs. plain loop), then alpha*sum + beta*c. By the standard
// bound for floating-point dot products, each result differs from the exact
// value by at most gamma(K+2) * mag, where gamma(n) = n*u/(1-n*u), u = EPS/2,
// and mag = |alpha| * sum_k |a_ik b_kj| + |beta c_ij| (computed here in double).
// So the two differ by at most 2*gamma(K+2)*mag; we allow exactly that (with
// the 1/(1-n*u) factor rounded up to 1.01). A dropped or repeated term, a wrong
// stride or a wrong beta is far bigger than this for the shapes below.
static void check(int ta, int tb, size_t M, size_t N, size_t K, size_t pad, real alpha,
                  real beta) {
    int nan_c = beta == 0;  // beta == 0: C must not be read, so fill it with NaN
    Prob p = make_prob(ta, tb, M, N, K, pad, nan_c);
    real *got = run_gemm(&p, alpha, beta, 0);
    real *want = run_gemm(&p, alpha, beta, 1);
    double u = EPS / 2;
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            double mag = 0;
            for (size_t k = 0; k < K; k++) {
                double a = ta ? p.A[k * p.lda + i] : p.A[i * p.lda + k];
                double b = tb ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j];
                mag += fabs(a * b);
            }
            mag *= fabs((double)alpha);
            if (beta != 0) mag += fabs((double)beta * p.C0[i * p.ldc + j]);
            double tol = 2 * 1.01 * (double)(K + 2) * u * mag;
            double g = got[i * p.ldc + j], w = want[i * p.ldc + j];
            cr_assert(isfinite(g) && fabs(g - w) <= tol,
                      "%s%s M=%zu N=%zu K=%zu pad=%zu alpha=%g beta=%g: C[%zu,%zu] = %.9g, "
                      "reference %.9g (tolerance %.3g)",
                      ta ? "T" : "N", tb ? "T" : "N", M, N, K, pad, (double)alpha,
                      (double)beta, i, j, g, w, tol);
        }
        // The padding of each C row is never written.
        for (size_t j = N; j < p.ldc; j++) {
            real g = got[i * p.ldc + j], c0 = p.C0[i * p.ldc + j];
            cr_assert(memcmp(&g, &c0, sizeof g) == 0, "C padding written at [%zu,%zu]", i, j);
        }
    }
    free(got);
    free(want);
    free_prob(&p);
}

static const size_t sizes[] = {1, 3, 7, 17, 33, 65, 100, 257};
enum { NSIZES = sizeof sizes / sizeof sizes[0] };

// Every layout, every size for M, N and K (paired so the run stays fast),
// padded strides, several alpha/beta including beta == 0 over NaN.
Test(gemm, layouts_odd_shapes) {
    lcg_state = 1;
    const real ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 0}, {0.75f, -2}, {2, 0.5f}, {0, 2}};
    for (int layout = 0; layout < 4; layout++) {
        int ta = layout & 1, tb = layout >> 1;
        for (size_t x = 0; x < NSIZES; x++) {
            for (size_t y = 0; y < NSIZES; y++) {
                size_t M = sizes[x], N = sizes[y], K = sizes[(x + 2 * y + layout) % NSIZES];
                if (M * N * K > 300000) K = sizes[(x + y) % 4];  // keep the reference fast
                const real *c = ab[(x + y + layout) % 6];
                check(ta, tb, M, N, K, (x + y) % 3 == 0 ? 0 : 5, c[0], c[1]);
            }
        }
    }
}

// Shapes that cross every block boundary: several row blocks (M > MC),
// K blocks (K > KC), column blocks (N > NC), and the parallel path.
Test(gemm, block_boundaries) {
    lcg_state = 2;
    for (int layout = 0; layout < 4; layout++) {
        int ta = layout & 1, tb = layout >> 1;
        check(ta, tb, 300, 33, 257, 3, 1, 0);
        check(ta, tb, 257, 37, 600, 1, 0.5f, 1);
        check(ta, tb, 7, 4099, 5, 2, 1, -1);
        check(ta, tb, 150, 65, 513, 0, -1, 0.25f);
    }
}

// The attention products: one head of width 32 or 64 inside rows of 768.
Test(gemm, strided_heads) {
    lcg_state = 3;
    for (int layout = 0; layout < 4; layout++) {
        int ta = layout & 1, tb = layout >> 1;
        check(ta, tb, 32, 32, 32, 768 - 32, 0.125f, 0);
        check(ta, tb, 32, 32, 64, 768 - 64, 1, 1);
        check(ta, tb, 31, 33, 64, 768 - 64, 1, 0);
    }
}

Test(gemm, k_zero_scales_c) {
    lcg_state = 4;
    real C[3 * 5], A[1] = {NAN}, B[1] = {NAN};
    for (int i = 0; i < 15; i++) C[i] = NAN;
    gemm(0, 0, 3, 4, 0, 1, A, 1, B, 4, 0, C, 5);  // beta == 0: C becomes 0, NaN not read
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) cr_assert_eq(C[i * 5 + j], 0);
        cr_assert(isnan(C[i * 5 + 4]), "padding written");
    }
    for (int i = 0; i < 15; i++) C[i] = (real)i;
    gemm(1, 1, 3, 4, 0, 2, A, 3, B, 1, (real)0.5, C, 5);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            cr_assert_eq(C[i * 5 + j], j < 4 ? (real)(i * 5 + j) * (real)0.5 : (real)(i * 5 + j));
}

Test(gemm, empty_output_touches_nothing) {
    real C[4] = {NAN, NAN, NAN, NAN}, A[4] = {1, 2, 3, 4};
    gemm(0, 0, 0, 2, 2, 1, A, 2, A, 2, 0, C, 2);
    gemm(0, 0, 2, 0, 2, 1, A, 2, A, 2, 0, C, 2);
    for (int i = 0; i < 4; i++) cr_assert(isnan(C[i]));
}

// Same product with 1, 2 and 3 threads, and from inside a parallel region
// (where gemm runs on the calling thread): identical bytes.
Test(gemm, deterministic_across_threads) {
    lcg_state = 5;
    const size_t shapes[][3] = {{517, 300, 600}, {64, 2000, 256}, {1000, 96, 130}};
    for (int layout = 0; layout < 4; layout++) {
        const size_t *s = shapes[layout % 3];
        Prob p = make_prob(layout & 1, layout >> 1, s[0], s[1], s[2], 1, 0);
        size_t bytes = p.M * p.ldc * sizeof(real);
        omp_set_num_threads(1);
        real *c1 = run_gemm(&p, 1, (real)0.5, 0);
        omp_set_num_threads(2);
        real *c2 = run_gemm(&p, 1, (real)0.5, 0);
        omp_set_num_threads(3);
        real *c3 = run_gemm(&p, 1, (real)0.5, 0);
        real *c4 = NULL;
#pragma omp parallel num_threads(2)
        {
            if (omp_get_thread_num() == 1) c4 = run_gemm(&p, 1, (real)0.5, 0);
        }
        cr_assert(memcmp(c1, c2, bytes) == 0, "1 vs 2 threads differ (layout %d)", layout);
        cr_assert(memcmp(c1, c3, bytes) == 0, "1 vs 3 threads differ (layout %d)", layout);
        cr_assert(memcmp(c1, c4, bytes) == 0, "inside a parallel region differs (layout %d)",
                  layout);
        free(c1);
        free(c2);
        free(c3);
        free(c4);
        free_prob(&p);
    }
    omp_set_num_threads(2);
}

// Many threads calling gemm at once, each on its own small product, as the
// attention does per head: each must get the serial result.
Test(gemm, concurrent_small_products) {
    lcg_state = 6;
    enum { HEADS = 8 };
    Prob p[HEADS];
    real *want[HEADS], *got[HEADS];
    for (int h = 0; h < HEADS; h++) {
        p[h] = make_prob(0, 1, 32, 32, 64, 768 - 64, 0);
        want[h] = run_gemm(&p[h], (real)0.125, 0, 0);
    }
#pragma omp parallel for num_threads(2)
    for (int h = 0; h < HEADS; h++) got[h] = run_gemm(&p[h], (real)0.125, 0, 0);
    for (int h = 0; h < HEADS; h++) {
        cr_assert(memcmp(got[h], want[h], p[h].M * p[h].ldc * sizeof(real)) == 0);
        free(got[h]);
        free(want[h]);
        free_prob(&p[h]);
    }
}

// gemm_pair gives the bits of two gemm() calls, for pairs run side by side
// (small) and one after the other (large), with 1 and 2 threads.
Test(gemm, pair_matches_two_calls) {
    lcg_state = 7;
    const size_t shapes[][3] = {{37, 50, 70}, {1100, 700, 800}};  // 1100x700x800: past PAIR_MAX_FMAS
    for (int sh = 0; sh < 2; sh++)
        for (int threads = 1; threads <= 2; threads++) {
            const size_t *s = shapes[sh];
            Prob pa = make_prob(0, 1, s[0], s[1], s[2], 3, 0), pb = make_prob(1, 0, s[1], s[2], s[0], 0, 0);
            real *wa = run_gemm(&pa, 1, (real)0.5, 0), *wb = run_gemm(&pb, (real)0.25, 1, 0);
            real *ca = malloc(pa.M * pa.ldc * sizeof(real)), *cb = malloc(pb.M * pb.ldc * sizeof(real));
            memcpy(ca, pa.C0, pa.M * pa.ldc * sizeof(real));
            memcpy(cb, pb.C0, pb.M * pb.ldc * sizeof(real));
            GemmCall ga = {0, 1, pa.M, pa.N, pa.K, 1, pa.A, pa.lda, pa.B, pa.ldb, (real)0.5, ca, pa.ldc, NULL, 0, 0};
            GemmCall gb = {1, 0, pb.M, pb.N, pb.K, (real)0.25, pb.A, pb.lda, pb.B, pb.ldb, 1, cb, pb.ldc, NULL, 0, 0};
            omp_set_num_threads(threads);
            gemm_pair(&ga, &gb);
            cr_assert(memcmp(ca, wa, pa.M * pa.ldc * sizeof(real)) == 0, "first product differs (shape %d, %d threads)", sh, threads);
            cr_assert(memcmp(cb, wb, pb.M * pb.ldc * sizeof(real)) == 0, "second product differs (shape %d, %d threads)", sh, threads);
            free(ca), free(cb), free(wa), free(wb);
            free_prob(&pa);
            free_prob(&pb);
        }
    omp_set_num_threads(2);
}

// The epilogue (bias row, ReLU) gives the bits of the separate passes it
// replaces: C filled with the bias, gemm with beta = 1, then x > 0 ? x : 0.
// Shapes cover edge tiles, several K blocks, several column blocks and the
// parallel path; C starts as NaN where it must not be read, and one bias value
// is NaN (the clamp turns it into 0, as relu_forward does).
Test(gemm, epilogue_matches_separate_passes) {
    lcg_state = 8;
    const size_t shapes[][3] = {{37, 50, 70}, {300, 1030, 600}, {7, 4099, 5}, {150, 65, 0}};
    for (int layout = 0; layout < 4; layout++)
        for (int sh = 0; sh < 4; sh++)
            for (int variant = 0; variant < 3; variant++) {  // bias, bias + relu, relu alone
                const size_t *s = shapes[sh];
                int has_bias = variant < 2, relu = variant > 0;
                omp_set_num_threads(1 + (sh + variant) % 2);
                Prob p = make_prob(layout & 1, layout >> 1, s[0], s[1], s[2], 2, 0);
                real *bias = malloc(p.N * sizeof(real));
                for (size_t j = 0; j < p.N; j++) bias[j] = rand_real();
                bias[p.N / 2] = NAN;
                real beta = has_bias ? 1 : (real)0.5;
                real *want = malloc(p.M * p.ldc * sizeof(real)), *got = malloc(p.M * p.ldc * sizeof(real));
                memcpy(want, p.C0, p.M * p.ldc * sizeof(real));
                memcpy(got, p.C0, p.M * p.ldc * sizeof(real));
                for (size_t i = 0; i < p.M; i++)
                    for (size_t j = 0; j < p.N; j++) {
                        if (has_bias) want[i * p.ldc + j] = bias[j];
                        if (has_bias) got[i * p.ldc + j] = NAN;  // not to be read
                    }
                gemm(p.ta, p.tb, p.M, p.N, p.K, (real)0.75, p.A, p.lda, p.B, p.ldb, beta, want, p.ldc);
                if (relu)
                    for (size_t i = 0; i < p.M; i++)
                        for (size_t j = 0; j < p.N; j++) {
                            real x = want[i * p.ldc + j];
                            want[i * p.ldc + j] = x > 0 ? x : 0;
                        }
                GemmCall g = {p.ta, p.tb, p.M, p.N, p.K, (real)0.75, p.A, p.lda, p.B, p.ldb,
                              has_bias ? 0 : beta, got, p.ldc, has_bias ? bias : NULL, relu, 0};
                gemm_call(&g);
                cr_assert(memcmp(got, want, p.M * p.ldc * sizeof(real)) == 0,
                          "layout %d shape %d variant %d: epilogue differs from separate passes",
                          layout, sh, variant);
                if (has_bias && relu)  // the NaN bias column
                    for (size_t i = 0; i < p.M; i++) cr_assert_eq(got[i * p.ldc + p.N / 2], 0);
                free(want), free(got), free(bias);
                free_prob(&p);
            }
    omp_set_num_threads(2);
}

// op(B) given as B^T (NT) or as a transposed copy (NN) gives the same bits:
// decoding multiplies by a transposed copy of the output projection so that
// the kernel reads it in place rather than packing all of it every step.
Test(gemm, transposed_copy_same_bits) {
    lcg_state = 9;
    const size_t shapes[][3] = {{1, 1030, 300}, {5, 517, 64}, {40, 4099, 256}, {200, 300, 513}};
    for (int sh = 0; sh < 4; sh++) {
        const size_t *s = shapes[sh];
        Prob p = make_prob(0, 1, s[0], s[1], s[2], 0, 0);  // B stored (N, K)
        real *bt = malloc(p.K * p.N * sizeof(real));      // (K, N)
        for (size_t k = 0; k < p.K; k++)
            for (size_t j = 0; j < p.N; j++) bt[k * p.N + j] = p.B[j * p.ldb + k];
        real *nt = run_gemm(&p, 1, 0, 0);
        real *nn = malloc(p.M * p.ldc * sizeof(real));
        gemm(0, 0, p.M, p.N, p.K, 1, p.A, p.lda, bt, p.N, 0, nn, p.ldc);
        cr_assert(memcmp(nt, nn, p.M * p.ldc * sizeof(real)) == 0, "shape %d: NT and NN differ", sh);
        free(bt), free(nt), free(nn);
        free_prob(&p);
    }
}

// A single row (M = 1: decoding's attention at every step) takes a path of
// its own; it must give the bits of the same row inside a larger product, in
// every layout, across K blocks (K > 256) and with beta.
Test(gemm, single_row_same_bits_as_in_a_block) {
    lcg_state = 10;
    const size_t shapes[][2] = {{37, 32}, {32, 21}, {130, 300}, {8000, 256}, {65, 513}};
    for (int layout = 0; layout < 4; layout++)
        for (int sh = 0; sh < 5; sh++) {
            int ta = layout & 1, tb = layout >> 1;
            Prob p = make_prob(ta, tb, 7, shapes[sh][0], shapes[sh][1], 3, 0);
            for (int with_beta = 0; with_beta < 2; with_beta++) {
                real beta = with_beta ? (real)0.75 : 0, alpha = (real)0.37;
                real *all = run_gemm(&p, alpha, beta, 0);
                for (size_t r = 0; r < p.M; r++) {
                    real *c = malloc(p.N * sizeof(real));
                    memcpy(c, p.C0 + r * p.ldc, p.N * sizeof(real));
                    const real *a = ta ? p.A + r : p.A + r * p.lda;
                    gemm(ta, tb, 1, p.N, p.K, alpha, a, p.lda, p.B, p.ldb, beta, c, p.N);
                    cr_assert(memcmp(c, all + r * p.ldc, p.N * sizeof(real)) == 0,
                              "layout %d shape %d beta %g: row %zu alone differs", layout, sh, (double)beta, r);
                    free(c);
                }
                free(all);
            }
            free_prob(&p);
        }
}

// `nmt bench gemm --shape` accepts MxNxK within the limits and nothing else
// (its other options are checked by tests/cli.sh).
Test(gemm, bench_parses_shapes) {
    const char *bad[] = {"4x4", "0x4x4", "4x-4x4", "4x4x4x", "x4x4", "4x4x", "4 x4x4", "1048577x1x1",
                         "100000x100000x100000", "4x4x4 "};
    GemmShape sh = {0, 0, 0, 7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(bench_gemm_parse_shape(bad[i], &sh), -1, "'%s'", bad[i]);
    cr_assert_eq(bench_gemm_parse_shape("1048576x1x8", &sh), 0);
    cr_expect(sh.M == 1048576 && sh.N == 1 && sh.K == 8 && sh.ld == 0);
    size_t n = 0;
    const GemmShape *def = bench_gemm_default_shapes(&n);
    cr_expect(n >= 1 && def[0].M > 0);
}

// One product by kernel k: C0 then gemm_call with the epilogue of variant v
// (0: alpha/beta, 1: bias, 2: bias + ReLU, 3: ReLU with beta) on nt threads.
static real *run_kernel(GemmKernel k, const Prob *p, const real *bias, int v, int nt) {
    cr_assert_eq(gemm_use_kernel(k), NMT_OK, "%s", err_msg());
    real *C = malloc((p->M * p->ldc + 1) * sizeof(real));
    cr_assert(C);
    memcpy(C, p->C0, p->M * p->ldc * sizeof(real));
    static const real alpha[4] = {(real)-1.25, (real)0.75, 1, (real)0.5}, beta[4] = {(real)0.3, 0, 0, (real)-0.7};  // not powers of 2: a fused and a separate beta * C round apart
    GemmCall g = {p->ta, p->tb, p->M, p->N, p->K, alpha[v], p->A, p->lda, p->B, p->ldb, beta[v], C, p->ldc,
                  v == 1 || v == 2 ? bias : NULL, v >= 2, 0};
    omp_set_num_threads(nt);
    gemm_call(&g);
    return C;
}

// Every kernel this machine can run gives the AVX2 kernel's bits (the
// contract of gemm.h: each element summed over K in the same order), at the
// edges of its tiles and blocks: M, N, K of 1, odd, around the 6 x 16 and
// 6 x 32 tiles, several row blocks, K above GEMM_KC; every layout; the
// epilogues; 1, 2 and 3 threads.
Test(gemm, every_kernel_same_bits) {
    GemmKernel was = gemm_kernel();
    if (!gemm_kernel_available(GEMM_KERNEL_AVX2) || !gemm_kernel_available(GEMM_KERNEL_AVX512)) {
        cr_skip_test("this build or CPU has only the %s kernel", gemm_kernel_name(was));
    }
    lcg_state = 11;
    const size_t shapes[][3] = {{1, 1, 1},     {6, 32, 1},    {6, 32, 256},  {7, 33, 257}, {12, 64, 17},
                                {5, 31, 40},   {13, 48, 300}, {150, 65, 64}, {300, 96, 513}, {64, 257, 33},
                                {1, 100, 70},  {2, 500, 8},   {97, 1030, 130}, {37, 32, 600}, {145, 16, 5}};
    int n = 0;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (int layout = 0; layout < 4; layout++)
            for (int v = 0; v < 4; v++, n++) {
                const size_t *s = shapes[sh];
                Prob p = make_prob(layout & 1, layout >> 1, s[0], s[1], s[2], 3, v == 1 || v == 2);
                real *bias = malloc(p.N * sizeof(real));
                for (size_t j = 0; j < p.N; j++) bias[j] = rand_real();
                int nt = 1 + n % 3;
                real *want = run_kernel(GEMM_KERNEL_AVX2, &p, bias, v, nt);
                real *got = run_kernel(GEMM_KERNEL_AVX512, &p, bias, v, 1 + (n + 1) % 3);
                cr_assert(memcmp(got, want, p.M * p.ldc * sizeof(real)) == 0,
                          "avx512 differs from avx2: M=%zu N=%zu K=%zu layout %d variant %d", s[0], s[1], s[2],
                          layout, v);
                free(want), free(got), free(bias);
                free_prob(&p);
            }
    cr_assert_eq(gemm_use_kernel(was), NMT_OK);
    omp_set_num_threads(2);
}

// A kernel is named and refused as the API says.
Test(gemm, kernel_names_and_refusal) {
    for (int k = GEMM_KERNEL_PORTABLE; k <= GEMM_KERNEL_AVX512; k++)
        cr_assert_eq(gemm_kernel_by_name(gemm_kernel_name((GemmKernel)k)), k);
    cr_assert_eq(gemm_kernel_by_name("sse"), -1);
    cr_assert(gemm_kernel_available(gemm_kernel()), "the chosen kernel %s is not available",
              gemm_kernel_name(gemm_kernel()));
    for (int k = GEMM_KERNEL_PORTABLE; k <= GEMM_KERNEL_AVX512; k++)
        if (!gemm_kernel_available((GemmKernel)k)) {
            err_clear();
            cr_assert_eq(gemm_use_kernel((GemmKernel)k), NMT_ERR_INPUT);
            cr_assert(strstr(err_msg(), gemm_kernel_name((GemmKernel)k)), "%s", err_msg());
            err_clear();
        }
}

#ifndef __SANITIZE_ADDRESS__  // instrumented at -O1, the two tiles time unlike the real kernels
// Whether /proc/cpuinfo names an AMD CPU of family 1Ah (Zen 5) or later,
// whose 512-bit units run at full width.
static int amd_zen5_or_later(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[256];
    int amd = 0, family = 0;
    while (fgets(line, sizeof line, f) && !family) {
        if (!strncmp(line, "vendor_id", 9)) amd = strstr(line, "AuthenticAMD") != NULL;
        if (!strncmp(line, "cpu family", 10)) family = atoi(strchr(line, ':') + 1);
    }
    fclose(f);
    return amd && family >= 0x1a;
}
#endif

// The timing that chooses the kernel where CPUID does not (Zen 4, Intel) runs
// and names a kernel this machine has; on a CPU whose 512-bit units run at
// full width (the AVX-512 tile then takes about half the time of two AVX2
// tiles) it chooses AVX-512 as CPUID does. (Elsewhere the two can be close,
// and either answer is right.)
Test(gemm, timing_choice_runs_and_agrees) {
    GemmKernel was = gemm_kernel(), timed = gemm_kernel_by_timing();
    cr_assert(gemm_kernel_available(timed), "the timing chose %s, which is not available", gemm_kernel_name(timed));
    cr_assert_eq(gemm_kernel(), was, "the timing changed the kernel in use");
#ifndef __SANITIZE_ADDRESS__
    if (gemm_kernel_available(GEMM_KERNEL_AVX512) && amd_zen5_or_later())
        cr_assert_eq(timed, GEMM_KERNEL_AVX512, "on Zen 5 the timing chose %s", gemm_kernel_name(timed));
#endif
}
