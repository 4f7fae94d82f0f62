// cli/bench_gemm.c — `nmt bench gemm`: a table of GFLOP/s, nmt's gemm() beside
// OpenBLAS (bench/gemm.h does the timing).
#include "cli/cli.h"
#include "cli/options.h"

#include "bench/gemm.h"
#include "bench/peak.h"
#include "kernels/gemm.h"
#include "common/util.h"

#include <math.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_SHAPES = 32 };

static const char USAGE[] =
    "usage: nmt bench gemm [--reps N] [--shape MxNxK ...] [--bf16]\n"
    "  GFLOP/s of the matrix product at the model's shapes in three layouts (NN, NT, TN),\n"
    "  beside OpenBLAS when libopenblas.so.0 is installed\n";
static const char EPILOG[] = "  threads: OMP_NUM_THREADS\n";

static const char *const LAYOUT_NAMES[] = {"NN", "NT", "TN"};

// Prints one row per shape and layout, then the geometric mean of the ratios.
static void run(const GemmShape *shapes, size_t nshapes, int reps, int bf16) {
    int nt = omp_get_max_threads();
    CblasGemm blas = bench_gemm_openblas(nt);
    GemmKernel k = gemm_kernel();
    double peak = (bf16 ? bench_peak_bf16_gflops() : bench_peak_gflops(k)) * nt;
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("gemm benchmark: %d thread%s, median of %d runs, %s; nmt's kernel %s", nt, nt == 1 ? "" : "s", reps,
           bf16 ? "bf16 inputs, float sums" : REAL_NAME, bf16 ? gemm_bf16_kernel_name(gemm_bf16_kernel()) : gemm_kernel_name(k));
    if (peak > 0)
        printf(" (measured %s peak: %.0f GFLOP/s for %d core%s)", bf16 ? "vdpbf16ps" : "FMA at its width", peak, nt,
               nt == 1 ? "" : "s");
    printf("\n");
    if (!blas) printf("(OpenBLAS not found: libopenblas.so.0 could not be loaded)\n");
    else printf("OpenBLAS kernels: %s\n", coretype && *coretype ? coretype : "its own choice (OPENBLAS_CORETYPE unset)");
    printf("%-28s%s   %s\n", "GFLOP/s", "-------- median ---------", "------- best run --------");
    printf("%-20s %-6s %8s %9s %6s   %8s %9s %6s\n", "M x N x K", "layout", "nmt", "OpenBLAS", "ratio", "nmt",
           "OpenBLAS", "ratio");
    double log_ratio_sum = 0, log_best_sum = 0, log_nmt_sum = 0;
    int nratio = 0, nbig = 0;
    for (size_t s = 0; s < nshapes; s++) {
        const GemmShape *sh = &shapes[s];
        for (int l = 0; l < 3; l++) {
            GemmTiming t = bench_gemm_time(sh, l, blas, reps, bf16);
            char shape_txt[64];
            int len = snprintf(shape_txt, sizeof shape_txt, "%zux%zux%zu", sh->M, sh->N, sh->K);
            if (sh->ld) snprintf(shape_txt + len, sizeof shape_txt - (size_t)len, " ld%zu", sh->ld);
            int big = (double)sh->M * (double)sh->N * (double)sh->K >= 1e8;  // the big shapes
            if (big) log_nmt_sum += log(t.median), nbig++;
            if (blas) {
                if (big) {
                    log_ratio_sum += log(t.median / t.blas_median);
                    log_best_sum += log(t.best / t.blas_best);
                    nratio++;
                }
                printf("%-20s %-6s %8.1f %9.1f %6.2f   %8.1f %9.1f %6.2f\n", shape_txt, LAYOUT_NAMES[l], t.median,
                       t.blas_median, t.median / t.blas_median, t.best, t.blas_best, t.best / t.blas_best);
            } else {
                printf("%-20s %-6s %8.1f %9s %6s   %8.1f %9s %6s\n", shape_txt, LAYOUT_NAMES[l], t.median, "-", "-",
                       t.best, "-", "-");
            }
            fflush(stdout);
        }
    }
    if (nratio)
        printf("geometric mean of nmt/OpenBLAS over the %d big cases: %.2f (medians), %.2f (best runs)\n", nratio,
               exp(log_ratio_sum / nratio), exp(log_best_sum / nratio));
    if (nbig && peak > 0)
        printf("nmt over the %d big cases: %.1f GFLOP/s (geometric mean of the medians) = %.0f%% of the measured peak\n",
               nbig, exp(log_nmt_sum / nbig), 100 * exp(log_nmt_sum / nbig) / peak);
}

// The --shape values, or the default shapes when none was given.
static int read_shapes(const OptSpec *spec, const char **texts, GemmShape buf[MAX_SHAPES], const GemmShape **shapes,
                       size_t *n) {
    *n = (size_t)arrlen(texts);
    *shapes = buf;
    if (*n == 0) {
        *shapes = bench_gemm_default_shapes(n);
        return NMT_OK;
    }
    if (*n > MAX_SHAPES) return options_error(spec, "at most %d --shape options", MAX_SHAPES);
    for (size_t i = 0; i < *n; i++)
        if (bench_gemm_parse_shape(texts[i], &buf[i]) != 0)
            return options_error(spec,
                                 "--shape wants MxNxK (each 1..1048576, each matrix at most 2^28 elements), got '%s'",
                                 texts[i]);
    return NMT_OK;
}

int cli_bench_gemm(int argc, char **argv) {
    int reps = 5, bf16 = 0;
    const char **texts = NULL;  // stb_ds array of --shape values
    const Option opts[] = {
        {"--reps", OPT_INT, &reps, 1, GEMM_BENCH_MAX_REPS, "N", "timed runs per case; the median is reported",
         OPT_CURRENT},
        {"--shape", OPT_STRINGS, &texts, 0, 0, "MxNxK",
         "only this shape (repeatable, at most 32); default: the model's shapes", NULL},
        {"--bf16", OPT_FLAG, &bf16, 0, 0, NULL, "nmt's bf16 product (train.precision bf16); OpenBLAS stays float",
         NULL},
    };
    const OptSpec spec = {"bench gemm", USAGE, opts, sizeof opts / sizeof opts[0], 0, EPILOG};
    GemmShape buf[MAX_SHAPES];
    const GemmShape *shapes = NULL;
    size_t nshapes = 0;
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc) rc = read_shapes(&spec, texts, buf, &shapes, &nshapes);
    arrfree(texts);
    if (rc) return options_report(&spec, rc);
    run(shapes, nshapes, reps, bf16);
    return 0;
}
