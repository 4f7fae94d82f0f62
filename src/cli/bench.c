// cli/bench.c — `nmt bench`: training-step timings per config (bench/steps.h), one
// human-readable line and one JSON line each.
#include "cli/cli.h"
#include "cli/options.h"

#include "bench/peak.h"
#include "bench/steps.h"
#include "kernels/gemm.h"
#include "model/model.h"
#include "train/comm.h"
#include "common/config.h"
#include "common/util.h"

#include <omp.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: nmt bench [--config FILE ...] [--steps N] [--warmup W] [--accum K] [--precision P] [--json]\n"
    "       mpirun -np P nmt bench ...   (a step: P x K micro-batches; rank 0 reports)\n"
    "  times whole training steps (forward, backward, clip, optimizer) on random batches of a fixed shape\n";
static const char EPILOG[] =
    "  threads: OMP_NUM_THREADS. GFLOP/s counts 6 x the multiply-adds of the matrix products\n"
    "  (README: Speed); peak RSS is VmHWM, reset before each config when the kernel allows it.\n";

// The line format scripts/bench_torch.py prints too.
static void report(const Config *c, const BenchShape *sh, long steps, long warmup, const BenchResult *r,
                   int json_only) {
    int threads = omp_get_max_threads();
    // Efficiency against processes that never wait for each other: the share
    // of the step not spent in the sums over processes.
    double eff = 1 - r->ms_phase[BENCH_REDUCE] / r->ms_median;
    // The fraction of the cores' measured peak: FMAs at the gemm kernel's
    // width, or the bf16 dot product for bf16 steps.
    int bf16 = r->precision == PRECISION_BF16;
    GemmKernel k = gemm_kernel();
    // (The bf16 kernels without that instruction have no peak of their own.)
    double one = !bf16 ? bench_peak_gflops(k) : gemm_bf16_kernel() == BF16_KERNEL_AVX512 ? bench_peak_bf16_gflops() : 0;
    double peak = one * threads * r->processes;
    double frac = peak > 0 ? r->gflops / peak : 0;
    if (!json_only) {
        printf("nmt   %-6s %d thr %s | B %zu S %zu T %zu V %zu | %.2f ms/step (median of %ld) | %.0f tok/s | "
               "%.2f GFLOP/s | peak RSS %.1f MiB | loss %.4f -> %.4f | fwd %.1f bwd %.1f clip %.1f adam %.1f ms\n",
               sh->name, threads, precision_name(r->precision), sh->B, sh->S, sh->T, sh->V, r->ms_median, steps, r->tok_per_s, r->gflops,
               r->rss_mib, r->loss_first, r->loss_last, r->ms_phase[BENCH_FWD], r->ms_phase[BENCH_BWD],
               r->ms_phase[BENCH_CLIP], r->ms_phase[BENCH_UPDATE]);
        if (peak > 0)
            printf("      %s kernel %s | %.0f%% of the measured %s peak (%.0f GFLOP/s for %d core%s)\n",
                   bf16 ? "bf16" : "gemm", bf16 ? gemm_bf16_kernel_name(gemm_bf16_kernel()) : gemm_kernel_name(k),
                   100 * frac, bf16 ? "vdpbf16ps" : "FMA at its width", peak, threads * r->processes,
                   threads * r->processes == 1 ? "" : "s");
        if (r->processes > 1 || r->accum > 1)
            printf("      %d process%s x %d micro-batch%s a step | compute %.1f ms | sum over processes %.1f ms, "
                   "%.1f MB sent per process | efficiency %.3f\n", r->processes, r->processes > 1 ? "es" : "",
                   r->accum, r->accum > 1 ? "es" : "", r->ms_phase[BENCH_FWD] + r->ms_phase[BENCH_BWD],
                   r->ms_phase[BENCH_REDUCE], r->mb_reduced, eff);
    }
    printf("{\"impl\": \"nmt\", \"shape\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"B\": %zu, \"S\": %zu, \"T\": %zu, \"V\": %zu, "
           "\"d_model\": %d, \"heads\": %d, \"d_ff\": %d, \"enc_layers\": %d, \"dec_layers\": %d, \"params\": %zu, "
           "\"steps\": %ld, \"warmup\": %ld, \"ms_median\": %.3f, \"ms_min\": %.3f, \"ms_max\": %.3f, "
           "\"tokens_per_s\": %.1f, \"gflop_per_step\": %.4f, \"gflops\": %.3f, \"peak_rss_mib\": %.1f, "
           "\"rss_scope\": \"%s\", \"rss_before_mib\": %.1f, \"alloc_mib\": %.1f, \"loss_first\": %.6f, "
           "\"loss_last\": %.6f, \"ms_forward\": %.3f, \"ms_backward\": %.3f, \"ms_clip\": %.3f, \"ms_adam\": %.3f, "
           "\"processes\": %d, \"accum\": %d, \"ms_reduce\": %.3f, \"mb_reduced\": %.3f, \"efficiency\": %.4f, \"shared_steps\": %.2f, "
           "\"kernel\": \"%s\", \"peak_gflops\": %.1f, \"peak_frac\": %.3f}\n",
           sh->name, threads, precision_name(r->precision), sh->B, sh->S, sh->T, sh->V, c->d_model, c->heads, c->d_ff, c->enc_layers,
           c->dec_layers, r->nparams, steps, warmup, r->ms_median, r->ms_min, r->ms_max, r->tok_per_s, r->gflop_step,
           r->gflops, r->rss_mib, r->rss_per_config ? "config" : "process", r->rss_before_mib, r->alloc_mib,
           r->loss_first, r->loss_last, r->ms_phase[BENCH_FWD], r->ms_phase[BENCH_BWD], r->ms_phase[BENCH_CLIP],
           r->ms_phase[BENCH_UPDATE], r->processes, r->accum, r->ms_phase[BENCH_REDUCE], r->mb_reduced, eff, r->shared_frac,
           bf16 ? gemm_bf16_kernel_name(gemm_bf16_kernel()) : gemm_kernel_name(k), peak, frac);
    fflush(stdout);
}

// Other processes compete for the cores when the 1-minute load average and
// this run's threads exceed them: say so, the timings will be slow and noisy.
static void warn_if_busy(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) != 1) load = -1;
    if (f) fclose(f);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = omp_get_max_threads();
    if (load >= 0 && cores > 0 && load + threads > (double)cores + 0.5)
        fprintf(stderr, "nmt bench: warning: the 1-minute load average is %.2f on %ld cores (and %d threads here): "
                "other processes compete for the CPU, so these timings are slower and noisier than the machine's\n",
                load, cores, threads);
}

// Every config is checked before anything is timed. precision: "fp32" or
// "bf16" for every config's train.precision, or NULL (each config's own).
static int run(const char *const *configs, int nconf, const char *precision, const BenchOptions *o, Comm *comm,
               int json_only) {
    long steps = o->steps, warmup = o->warmup;
    Config *cfg = xcalloc((size_t)nconf, sizeof *cfg);
    BenchShape *sh = xcalloc((size_t)nconf, sizeof *sh);
    int loaded = 0, rc = NMT_OK;  // loaded: configs to free
    char set[64];
    snprintf(set, sizeof set, "train.precision=%s", precision ? precision : "");
    const char *const sets[] = {set};
    for (int i = 0; !rc && i < nconf; i++) {
        rc = config_load(&cfg[i], configs[i], sets, precision ? 1 : 0);  // frees on its own errors
        if (rc) break;
        loaded++;
        rc = bench_shape(&sh[i], &cfg[i], configs[i]);
    }
    if (!rc && comm->rank == 0) warn_if_busy();
    for (int i = 0; !rc && i < nconf; i++) {
        BenchResult r;
        rc = bench_run(&cfg[i], &sh[i], o, comm, &r);
        if (!rc && comm->rank == 0) report(&cfg[i], &sh[i], steps, warmup, &r, json_only);
    }
    for (int i = 0; i < loaded; i++) config_free(&cfg[i]);
    free(cfg);
    free(sh);
    return rc;
}

int cli_bench(int argc, char **argv) {
    const char **configs = NULL;  // stb_ds array
    int steps = 20, warmup = 3, accum = 1, no_overlap = 0, json_only = 0;
    const char *precision = NULL;
    const Option opts[] = {
        {"--config", OPT_STRINGS, &configs, 0, 0, "FILE",
         "an nmt config giving the model and the shape (repeatable; one result each):\n"
         "V = data.vocab_size, S = data.max_src_len, T = data.max_tgt_len,\n"
         "B = train.batch_tokens / max(S, T)",
         "configs/bench-small.json"},
        {"--steps", OPT_INT, &steps, 1, 1000000, "N", "timed steps; the median is reported", OPT_CURRENT},
        {"--warmup", OPT_INT, &warmup, 0, 1000000, "W", "untimed steps before them", OPT_CURRENT},
        {"--accum", OPT_INT, &accum, 1, 65536, "K", "micro-batches of the shape per process in a step\n"
         "(train.accum_steps); under mpirun the step sums them over all processes", OPT_CURRENT},
        {"--no-overlap", OPT_FLAG, &no_overlap, 0, 0, NULL,
         "under mpirun: sum the gradients over processes only after the backward\n"
         "pass (by default each layer's starts as soon as it is final)", NULL},
        {"--precision", OPT_STRING, &precision, 0, 0, "P",
         "fp32 or bf16: the products of the timed steps, for every config\n"
         "(by default each config's own train.precision)", NULL},
        {"--json", OPT_FLAG, &json_only, 0, 0, NULL, "print only the JSON line of each config", NULL},
    };
    const OptSpec spec = {"bench", USAGE, opts, sizeof opts / sizeof opts[0], 0, EPILOG};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc && precision && precision_by_name(precision) < 0)
        rc = options_error(&spec, "--precision: '%s' is not fp32 or bf16", precision);
    if (rc) {
        arrfree(configs);
        return options_report(&spec, rc);
    }
    if (arrlen(configs) == 0) arrput(configs, "configs/bench-small.json");
    Comm comm;
    rc = comm_init(&comm);
    BenchOptions o = {steps, warmup, accum, no_overlap};
    if (!rc) rc = run(configs, (int)arrlen(configs), precision, &o, &comm, json_only);
    arrfree(configs);
    if (rc && comm.size > 1) {
        fprintf(stderr, "nmt: error: rank %d: %s\n", comm.rank, err_msg()[0] ? err_msg() : "failed");
        comm_abort(&comm, rc);
    }
    comm_finalize(&comm);
    return comm.size > 1 ? rc : cli_finish(rc);
}
