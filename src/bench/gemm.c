// bench/gemm.c — times gemm() at the shapes the model uses and, when
// OpenBLAS is installed, cblas_sgemm at the same shapes (cblas_dgemm in the
// double build).
//
// OpenBLAS is loaded with dlopen so the build does not depend on it; its own
// thread pool is set to the OpenMP thread count so both use the same cores.
#include "bench/gemm.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm.h"
#include "common/util.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
#ifdef NMT_DOUBLE
#define CBLAS_GEMM "cblas_dgemm"
#else
#define CBLAS_GEMM "cblas_sgemm"
#endif
typedef void (*SetThreadsFn)(int n);

static const GemmShape default_shapes[] = {
    {4096, 256, 256, 0},  {4096, 1024, 256, 0}, {4096, 256, 1024, 0},
    {4096, 8000, 256, 0}, {4096, 2048, 512, 0}, {4096, 768, 256, 0},
    {32, 32, 32, 768},    {32, 32, 64, 768},
};

const GemmShape *bench_gemm_default_shapes(size_t *n) {
    *n = sizeof default_shapes / sizeof default_shapes[0];
    return default_shapes;
}

typedef struct {
    int ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    real *A, *B, *C;
    CblasGemm sgemm;  // NULL: run gemm()
    int bf16;         // nmt's bf16 product
} Case;

static void run_case(const Case *c) {
    if (c->sgemm)
        c->sgemm(CBLAS_ROW_MAJOR, c->ta ? CBLAS_TRANS : CBLAS_NO_TRANS,
                 c->tb ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)c->M, (int)c->N, (int)c->K,
                 1, c->A, (int)c->lda, c->B, (int)c->ldb, 0, c->C, (int)c->ldc);
    else
        gemm_call(&(GemmCall){c->ta, c->tb, c->M, c->N, c->K, 1, c->A, c->lda, c->B, c->ldb, 0, c->C, c->ldc,
                              NULL, 0, c->bf16});
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds for one product, averaged over `inner` back-to-back calls. One
// untimed call first wakes the thread pool, asleep after the pause between
// runs (waking it cost up to 2.5 ms here): in training, products follow one
// another and the pool is awake.
static double time_once(const Case *c, int inner) {
    run_case(c);
    double t0 = now_seconds();
    for (int i = 0; i < inner; i++) run_case(c);
    return (now_seconds() - t0) / inner;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// With several threads, an idle pool keeps spinning for a while after a call
// (libgomp a few milliseconds, OpenBLAS about 2^28 cycles), which would steal
// a core from the other library: pause after each run until it sleeps.
static void let_pool_sleep(int openblas) {
    if (omp_get_max_threads() > 1) pause_ms(openblas ? 150 : 20);
}

// GFLOP/s of gemm() (and of cblas_sgemm when given) over `reps` timed runs
// after a warm-up: the median in [0] and the best run in [1] (on a shared
// machine, the best run is the one least disturbed). The two libraries
// alternate run by run, so that the load of a shared machine hits both alike.
static void measure(Case *c, CblasGemm sgemm, int reps, int inner, double ours[2],
                    double theirs[2]) {
    double t_ours[GEMM_BENCH_MAX_REPS], t_theirs[GEMM_BENCH_MAX_REPS];
    double flop = 2.0 * (double)c->M * (double)c->N * (double)c->K;
    for (int r = -1; r < reps; r++) {  // r == -1: warm-up
        c->sgemm = NULL;
        double t = time_once(c, inner);
        if (r >= 0) t_ours[r] = t;
        let_pool_sleep(0);
        if (sgemm) {
            c->sgemm = sgemm;
            t = time_once(c, inner);
            if (r >= 0) t_theirs[r] = t;
            let_pool_sleep(1);
        }
    }
    c->sgemm = NULL;
    ours[0] = flop / median(t_ours, reps) * 1e-9;  // median() sorts
    ours[1] = flop / t_ours[0] * 1e-9;
    theirs[0] = sgemm ? flop / median(t_theirs, reps) * 1e-9 : 0;
    theirs[1] = sgemm ? flop / t_theirs[0] * 1e-9 : 0;
}

static int parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || v == 0 || v > (1u << 20) || s[0] == '-') return -1;
    *out = (size_t)v;
    return (int)(end - s);
}

int bench_gemm_parse_shape(const char *s, GemmShape *sh) {
    size_t v[3];
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        int n = parse_size(p, &v[i]);
        if (n < 0) return -1;
        p += n;
        if (i < 2) {
            if (*p != 'x') return -1;
            p++;
        }
    }
    if (*p) return -1;
    // Each matrix at most 2^28 elements (1 GiB of floats), which also keeps
    // OpenBLAS's int arguments in range.
    const size_t cap = (size_t)1 << 28;
    if (v[0] * v[2] > cap || v[2] * v[1] > cap || v[0] * v[1] > cap) return -1;
    *sh = (GemmShape){v[0], v[1], v[2], 0};
    return 0;
}

CblasGemm bench_gemm_openblas(int threads) {
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return NULL;
    SetThreadsFn set_threads = (SetThreadsFn)dlsym(lib, "openblas_set_num_threads");
    if (set_threads) set_threads(threads);
    // OpenBLAS stays loaded: unloading a library with live pool threads is unsafe.
    return (CblasGemm)dlsym(lib, CBLAS_GEMM);
}

GemmTiming bench_gemm_time(const GemmShape *sh, int layout, CblasGemm blas, int reps, int bf16) {
    Case c = {.ta = layout == 2, .tb = layout == 1, .M = sh->M, .N = sh->N, .K = sh->K, .bf16 = bf16};
    // Rows of the stored A and B, and their widths.
    size_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
    size_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
    c.lda = sh->ld > a_cols ? sh->ld : a_cols;
    c.ldb = sh->ld > b_cols ? sh->ld : b_cols;
    c.ldc = c.N;
    c.A = xmalloc(a_rows * c.lda * sizeof(real));
    c.B = xmalloc(b_rows * c.ldb * sizeof(real));
    c.C = xmalloc(c.M * c.ldc * sizeof(real));
    for (size_t i = 0; i < a_rows * c.lda; i++) c.A[i] = (real)((i * 7919) % 2001) / 1000 - 1;
    for (size_t i = 0; i < b_rows * c.ldb; i++) c.B[i] = (real)((i * 104729) % 1999) / 1000 - 1;
    memset(c.C, 0, c.M * c.ldc * sizeof(real));

    // Repeat products so that one timed run lasts 20-50 ms: on a shared machine a
    // single 3 ms call is at the mercy of one preemption.
    double fmas = (double)c.M * (double)c.N * (double)c.K;
    int inner = fmas >= 2e9 ? 1 : (int)(2e9 / fmas + 0.5);
    double ours[2], theirs[2];
    measure(&c, blas, reps, inner, ours, theirs);
    free(c.A);
    free(c.B);
    free(c.C);
    return (GemmTiming){ours[0], ours[1], theirs[0], theirs[1]};
}
