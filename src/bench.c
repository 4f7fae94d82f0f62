// bench.c — `nmt bench`: median milliseconds per training step, target
// tokens/s, GFLOP/s and peak RSS at fixed batch shapes, so that nmt can be
// compared with itself over time and with scripts/bench_torch.py.
//
// A bench config is an ordinary nmt config (config_parse validates it; no
// bench-only keys exist). Its data files are never read: the batches are
// random ids from a counter-based generator, every sentence full length, no
// padding, so every step does exactly the same work.
#include "bench.h"
#include "checkpoint.h"
#include "config.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

#include <math.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *HELP =
    "usage: nmt bench [--config FILE ...] [--steps N] [--warmup W] [--json]\n"
    "  times whole training steps (forward, backward, clip, Adam) on random batches of a fixed shape\n"
    "  --config FILE   an nmt config giving the model and the shape (repeatable; default\n"
    "                  configs/bench-small.json): V = data.vocab_size, S = data.max_src_len,\n"
    "                  T = data.max_tgt_len, B = train.batch_tokens / max(S, T)\n"
    "  --steps N       timed steps; the median is reported (default 20)\n"
    "  --warmup W      untimed steps before them (default 3)\n"
    "  --json          print only the JSON line of each config\n"
    "  threads: OMP_NUM_THREADS. GFLOP/s counts 6 x the multiply-adds of the matrix products\n"
    "  (README: Speed); peak RSS is VmHWM, reset before each config when the kernel allows it.\n";

typedef struct {
    char name[64];           // file name without directory, "bench-" and ".json"
    size_t B, S, T, V;
} Shape;

enum { PH_FWD, PH_BWD, PH_CLIP, PH_ADAM, NPHASE };   // parts of a step, timed separately

typedef struct {
    double ms_phase[NPHASE]; // medians of each part
    double ms_median, ms_min, ms_max, tok_per_s, gflop_step, gflops, rss_mib, alloc_mib;
    double rss_before_mib;   // resident before the model exists (the program itself)
    double loss_first, loss_last;
    size_t nparams;          // sum of tensor sizes (without alignment padding)
    int rss_per_config;      // 1 if the peak was reset before this config
} Result;

static int parse_count(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi)
        return err_set(NMT_ERR_INPUT, "bench %s: '%s' is not a whole number in [%ld, %ld]", opt, v, lo, hi);
    *out = n;
    return NMT_OK;
}

static void shape_name(char *out, size_t n, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strncmp(base, "bench-", 6)) base += 6;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".json")) len -= 5;
    if (len >= n) len = n - 1;
    memcpy(out, base, len);
    out[len] = 0;
}

// The batch shape from the config's existing keys (no bench-only keys exist).
static int shape_from(Shape *sh, const Config *c, const char *path) {
    if (c->vocab_size < 5)
        return err_set(NMT_ERR_INPUT, "%s: data.vocab_size (%d) must be at least 5 for nmt bench (4 special ids + 1)",
                       path, c->vocab_size);
    shape_name(sh->name, sizeof sh->name, path);
    sh->V = (size_t)c->vocab_size;
    sh->S = (size_t)c->max_src_len;
    sh->T = (size_t)c->max_tgt_len;
    // config_parse guarantees batch_tokens > max(S, T), so B >= 1.
    sh->B = (size_t)c->batch_tokens / (sh->S > sh->T ? sh->S : sh->T);
    // A shape that cannot fit is bad input, not an allocation abort later:
    // parameters, gradients and two Adam moments, plus the logits.
    double d = c->d_model, f = c->d_ff, V = (double)sh->V;
    double params = V * d * (c->shared_vocab ? 1 : c->tie_output ? 2 : 3) +
                    (c->enc_layers + 2.0 * c->dec_layers) * (4 * d * d + 2 * d * f);
    double bytes = (4 * params + (double)sh->B * (double)sh->T * V) * sizeof(real);
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && bytes > ram)
        return err_set(NMT_ERR_INPUT, "%s: this shape needs at least %.1f GiB, more than the machine's %.1f GiB", path,
                       bytes / (1 << 30), ram / (1 << 30));
    return NMT_OK;
}

// Multiply-adds of one forward pass (matrix products only; Ne = Nd = N gives
// the formula in the README). Training = 6x: the backward pass does two
// products per forward product, and a multiply-add is two FLOPs.
static double step_flops(const ModelShape *s, const Shape *sh) {
    double d = s->d_model, ff = s->d_ff, ne = s->enc_layers, nd = s->dec_layers;
    double B = (double)sh->B, S = (double)sh->S, T = (double)sh->T, V = (double)sh->V;
    double mac = ne * (4 * d * d + 2 * d * ff) * B * S       // encoder: QKV, output, FFN
                 + nd * (6 * d * d + 2 * d * ff) * B * T     // decoder: QKV, output, cross Q + output, FFN
                 + nd * 2 * d * d * B * S                    // cross-attention K, V of the encoder output
                 + d * V * B * T                             // output projection
                 + 2 * B * d * (ne * S * S + nd * (T * T + S * T));  // scores and weighted sums
    return 6 * mac;
}

// Resets the peak resident set (Linux >= 4.0). Returns 1 when it worked.
static int rss_reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

// A field of /proc/self/status in MiB ("VmHWM:" peak, "VmRSS:" now), or -1.
static double proc_status_mib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) kib = strtol(line + n, NULL, 10);
    if (f) fclose(f);
    return kib < 0 ? -1 : (double)kib / 1024.0;
}

static double rss_peak_mib(void) {
    double mib = proc_status_mib("VmHWM:");
    if (mib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        mib = (double)ru.ru_maxrss / 1024.0;   // KiB on Linux
    }
    return mib;
}

// Random full-length sentences: ids 4..V-1, source ends with EOS, target
// input starts with BOS, target output ends with EOS. Different every step.
static void fill_batch(Batch *b, const Shape *sh, uint64_t seed, long step) {
    uint64_t key = rng_key(seed, 0xBE4C, (uint64_t)step);
    uint64_t range = sh->V - 4;
    size_t n = 0;
    for (size_t i = 0; i < sh->B; i++) {
        for (size_t j = 0; j < sh->S; j++)
            b->src[i * sh->S + j] = j + 1 == sh->S ? TOK_EOS : 4 + (int)(rng_u64(key, n++) % range);
        for (size_t j = 0; j < sh->T; j++) {
            int w = 4 + (int)(rng_u64(key, n++) % range);
            b->tgt_out[i * sh->T + j] = j + 1 == sh->T ? TOK_EOS : w;
            b->tgt_in[i * sh->T + j] = j == 0 ? TOK_BOS : b->tgt_out[i * sh->T + j - 1];
        }
        b->src_len[i] = (int)sh->S;
        b->tgt_len[i] = (int)sh->T;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// One training step exactly as train.c does it; ph[] gets each part's
// seconds (zeroing the gradients counts as backward). Returns the mean loss per token.
static double train_step(Model *m, Acts *acts, Adam *adam, const Batch *b, const Config *c, long step,
                         double ph[NPHASE]) {
    double t0 = now_seconds();
    uint64_t key = rng_key((uint64_t)c->seed, 0xD50, (uint64_t)step + 1);
    double nll, fwd;
    model_zero_grads(m);
    double loss = model_forward_backward(m, acts, b, (real)c->label_smoothing, key,
                                         (real)(1.0 / (double)b->ntok), &nll, &fwd);
    double t2 = now_seconds();
    double gnorm = global_norm(m->grads, m->nparams);
    double t3 = now_seconds();
    adam_step(adam, m, lr_at(c->lr_schedule, step + 1, c->d_model, c->warmup_steps, c->lr_scale, c->lr),
              clip_factor(gnorm, c->clip_norm));
    double t4 = now_seconds();
    ph[PH_FWD] = fwd;  // the output layer's forward and backward interleave: see model.h
    ph[PH_BWD] = t2 - t0 - fwd;
    ph[PH_CLIP] = t3 - t2;
    ph[PH_ADAM] = t4 - t3;
    return loss / (double)b->ntok;
}

static double median(double *x, size_t n) {
    qsort(x, n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static int bench_one(const Config *c, const Shape *sh, long steps, long warmup, Result *r) {
    memset(r, 0, sizeof *r);
    r->rss_per_config = rss_reset_peak();
    r->rss_before_mib = proc_status_mib("VmRSS:");
    // As training would build it (positions table included), so the memory is train's.
    ModelShape s = model_shape_sized(c, (int)sh->V, (int)sh->V);

    Model m;
    int rc = model_create(&m, &s);
    if (rc) return rc;
    model_init_params(&m, (uint64_t)c->seed);
    for (ptrdiff_t t = 0; t < arrlen(m.tensors); t++) r->nparams += m.tensors[t].rows * m.tensors[t].cols;
    Adam adam;
    adam_init(&adam, m.nparams, c->beta1, c->beta2, c->eps, c->weight_decay);
    size_t ntok = sh->B * (sh->S > sh->T ? sh->S : sh->T);
    Acts *acts = acts_create(&m, ntok, sh->S, sh->T, 1);
    r->alloc_mib = ((double)m.nparams * 4 * sizeof(real) + (double)acts_bytes(acts)) / (1 << 20);

    Batch b = {sh->B, sh->S, sh->T, NULL, NULL, NULL, NULL, NULL, sh->B * sh->T};
    b.src = xmalloc(sh->B * sh->S * sizeof *b.src);
    b.tgt_in = xmalloc(sh->B * sh->T * sizeof *b.tgt_in);
    b.tgt_out = xmalloc(sh->B * sh->T * sizeof *b.tgt_out);
    b.src_len = xmalloc(sh->B * sizeof *b.src_len);
    b.tgt_len = xmalloc(sh->B * sizeof *b.tgt_len);
    double *ms = xmalloc((size_t)steps * (NPHASE + 1) * sizeof *ms), *phs = ms + steps;  // phs: (NPHASE, steps)

    for (long i = 0; i < warmup + steps; i++) {
        fill_batch(&b, sh, (uint64_t)c->seed, i);   // outside the timed region
        double ph[NPHASE];
        double t0 = now_seconds();
        double loss = train_step(&m, acts, &adam, &b, c, i, ph);
        double t1 = now_seconds();
        if (!isfinite(loss)) {
            rc = err_set(NMT_ERR_RUNTIME, "bench %s: step %ld: loss is not finite (%g)", sh->name, i + 1, loss);
            break;
        }
        if (i == 0) r->loss_first = loss;
        r->loss_last = loss;
        if (i < warmup) continue;
        ms[i - warmup] = (t1 - t0) * 1e3;
        for (int p = 0; p < NPHASE; p++) phs[(size_t)p * (size_t)steps + (size_t)(i - warmup)] = ph[p] * 1e3;
    }
    if (!rc) {
        r->ms_median = median(ms, (size_t)steps);   // sorts ms
        r->ms_min = ms[0];
        r->ms_max = ms[steps - 1];
        for (int p = 0; p < NPHASE; p++) r->ms_phase[p] = median(phs + (size_t)p * (size_t)steps, (size_t)steps);
        r->tok_per_s = (double)b.ntok / (r->ms_median / 1e3);
        r->gflop_step = step_flops(&s, sh) / 1e9;
        r->gflops = r->gflop_step / (r->ms_median / 1e3);
        r->rss_mib = rss_peak_mib();
    }
    free(ms);
    free(b.src);
    free(b.tgt_in);
    free(b.tgt_out);
    free(b.src_len);
    free(b.tgt_len);
    acts_free(acts);
    adam_free(&adam);
    model_free(&m);
    return rc;
}

// The line format scripts/bench_torch.py prints too.
static void report(const Config *c, const Shape *sh, long steps, long warmup, const Result *r,
                   int json_only) {
    int threads = omp_get_max_threads();
    if (!json_only)
        printf("nmt   %-6s %d thr | B %zu S %zu T %zu V %zu | %.2f ms/step (median of %ld) | %.0f tok/s | "
               "%.2f GFLOP/s | peak RSS %.1f MiB | loss %.4f -> %.4f | fwd %.1f bwd %.1f clip %.1f adam %.1f ms\n",
               sh->name, threads, sh->B, sh->S, sh->T, sh->V, r->ms_median, steps, r->tok_per_s, r->gflops,
               r->rss_mib, r->loss_first, r->loss_last, r->ms_phase[PH_FWD], r->ms_phase[PH_BWD],
               r->ms_phase[PH_CLIP], r->ms_phase[PH_ADAM]);
    printf("{\"impl\": \"nmt\", \"shape\": \"%s\", \"threads\": %d, \"B\": %zu, \"S\": %zu, \"T\": %zu, \"V\": %zu, "
           "\"d_model\": %d, \"heads\": %d, \"d_ff\": %d, \"enc_layers\": %d, \"dec_layers\": %d, \"params\": %zu, "
           "\"steps\": %ld, \"warmup\": %ld, \"ms_median\": %.3f, \"ms_min\": %.3f, \"ms_max\": %.3f, "
           "\"tokens_per_s\": %.1f, \"gflop_per_step\": %.4f, \"gflops\": %.3f, \"peak_rss_mib\": %.1f, "
           "\"rss_scope\": \"%s\", \"rss_before_mib\": %.1f, \"alloc_mib\": %.1f, \"loss_first\": %.6f, "
           "\"loss_last\": %.6f, \"ms_forward\": %.3f, \"ms_backward\": %.3f, \"ms_clip\": %.3f, \"ms_adam\": %.3f}\n",
           sh->name, threads, sh->B, sh->S, sh->T, sh->V, c->d_model, c->heads, c->d_ff, c->enc_layers,
           c->dec_layers, r->nparams, steps, warmup, r->ms_median, r->ms_min, r->ms_max, r->tok_per_s, r->gflop_step,
           r->gflops, r->rss_mib, r->rss_per_config ? "config" : "process", r->rss_before_mib, r->alloc_mib,
           r->loss_first, r->loss_last, r->ms_phase[PH_FWD], r->ms_phase[PH_BWD], r->ms_phase[PH_CLIP],
           r->ms_phase[PH_ADAM]);
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    const char **configs = xcalloc((size_t)argc + 1, sizeof *configs);
    int nconf = 0, json_only = 0, rc = NMT_OK;
    long steps = 20, warmup = 3;
    for (int i = 1; i < argc && !rc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(HELP, stdout);
            free(configs);
            return NMT_OK;
        }
        if (!strcmp(o, "--json")) {
            json_only = 1;
            continue;
        }
        if (strcmp(o, "--config") && strcmp(o, "--steps") && strcmp(o, "--warmup")) {
            rc = err_set(NMT_ERR_INPUT, "bench: unknown option '%s' (see: nmt bench --help)", o);
            break;
        }
        if (i + 1 >= argc) {
            rc = err_set(NMT_ERR_INPUT, "bench: %s needs a value", o);
            break;
        }
        const char *v = argv[++i];
        if (!strcmp(o, "--config")) configs[nconf++] = v;
        else if (!strcmp(o, "--steps")) rc = parse_count(o, v, 1, 1000000, &steps);
        else rc = parse_count(o, v, 0, 1000000, &warmup);
    }
    if (!rc && nconf == 0) configs[nconf++] = "configs/bench-small.json";
    // Every config is checked before anything is timed.
    Config *cfg = xcalloc((size_t)nconf, sizeof *cfg);
    Shape *sh = xcalloc((size_t)nconf, sizeof *sh);
    int loaded = 0;   // configs to free
    for (int i = 0; !rc && i < nconf; i++) {
        rc = config_load(&cfg[i], configs[i], NULL, 0);   // frees on its own errors
        if (rc) break;
        loaded++;
        rc = shape_from(&sh[i], &cfg[i], configs[i]);
    }
    for (int i = 0; !rc && i < nconf; i++) {
        Result r;
        rc = bench_one(&cfg[i], &sh[i], steps, warmup, &r);
        if (rc) break;
        report(&cfg[i], &sh[i], steps, warmup, &r, json_only);
    }
    for (int i = 0; i < loaded; i++) config_free(&cfg[i]);
    free(cfg);
    free(sh);
    free(configs);
    return rc;
}
