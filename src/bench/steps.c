// bench/steps.c — median milliseconds per training step, target tokens/s, GFLOP/s
// and peak RSS at fixed batch shapes (`nmt bench`), so that nmt can be
// compared with itself over time and with scripts/bench_torch.py.
//
// A bench config is an ordinary nmt config (config_parse validates it; no
// bench-only keys exist). Its data files are never read: the batches are
// random ids from a counter-based generator, every sentence full length, no
// padding, so every step does exactly the same work.
#include "bench/steps.h"
#include "common/config.h"
#include "model/model.h"
#include "model/shape.h"
#include "optim/optim.h"
#include "kernels/par.h"
#include "common/rng.h"
#include "train/step.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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

int bench_shape(BenchShape *sh, const Config *c, const char *path) {
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
    // parameters, gradients and (at most) two optimizer buffers, plus the logits.
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
static double step_flops(const ModelShape *s, const BenchShape *sh) {
    double d = s->d_model, ff = s->d_ff, ne = s->enc_layers, nd = s->dec_layers;
    double B = (double)sh->B, S = (double)sh->S, T = (double)sh->T, V = (double)sh->V;
    double Se = (double)self_attn_cols(s, sh->S, 0), Td = (double)self_attn_cols(s, sh->T, 1);  // keys per query
    double mac = ne * (4 * d * d + 2 * d * ff) * B * S       // encoder: QKV, output, FFN
                 + nd * (6 * d * d + 2 * d * ff) * B * T     // decoder: QKV, output, cross Q + output, FFN
                 + nd * 2 * d * d * B * S                    // cross-attention K, V of the encoder output
                 + d * V * B * T                             // output projection
                 + 2 * B * d * (ne * S * Se + nd * (T * Td + S * T));  // scores and weighted sums
    if (s->relative) mac += 2 * d * (2.0 * s->max_rel + 1) * B * (ne * S + nd * T);  // relative keys and values
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
static void fill_batch(Batch *b, const BenchShape *sh, uint64_t seed, long step) {
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

// A process's micro-batches of a step: n batches of the shape.
static Batch *batches_alloc(const BenchShape *sh, int n) {
    Batch *mb = xcalloc((size_t)n, sizeof *mb);
    for (int k = 0; k < n; k++) {
        mb[k] = (Batch){sh->B, sh->S, sh->T, NULL, NULL, NULL, NULL, NULL, sh->B * sh->T};
        mb[k].src = xmalloc(sh->B * sh->S * sizeof *mb[k].src);
        mb[k].tgt_in = xmalloc(sh->B * sh->T * sizeof *mb[k].tgt_in);
        mb[k].tgt_out = xmalloc(sh->B * sh->T * sizeof *mb[k].tgt_out);
        mb[k].src_len = xmalloc(sh->B * sizeof *mb[k].src_len);
        mb[k].tgt_len = xmalloc(sh->B * sizeof *mb[k].tgt_len);
    }
    return mb;
}

static void batches_free(Batch *mb, int n) {
    for (int k = 0; k < n; k++) {
        free(mb[k].src);
        free(mb[k].tgt_in);
        free(mb[k].tgt_out);
        free(mb[k].src_len);
        free(mb[k].tgt_len);
    }
    free(mb);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, size_t n) {
    qsort(x, n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int bench_run(const Config *c, const BenchShape *sh, const BenchOptions *o, Comm *comm, BenchResult *r) {
    long steps = o->steps, warmup = o->warmup;
    int accum = o->accum;
    memset(r, 0, sizeof *r);
    Comm one = {.size = 1};
    if (!comm) comm = &one;
    r->processes = comm->size;
    r->accum = accum;
    r->rss_per_config = rss_reset_peak();
    r->rss_before_mib = proc_status_mib("VmRSS:");
    // As training would build it (positions table included), so the memory is train's.
    ModelShape s = model_shape_sized(c, (int)sh->V, (int)sh->V);

    Model m;
    int rc = model_create(&m, &s);
    if (rc) return rc;
    model_init_params(&m, (uint64_t)c->seed);
    m.precision = r->precision = model_precision_from(c);  // as training sets it
    for (ptrdiff_t t = 0; t < arrlen(m.tensors); t++) r->nparams += m.tensors[t].rows * m.tensors[t].cols;
    Optimizer opt;
    optim_init(&opt, c, m.nparams);
    size_t ntok = sh->B * (sh->S > sh->T ? sh->S : sh->T);
    Acts *acts = acts_create(&m, ntok, sh->S, sh->T, 1);
    r->alloc_mib = ((double)m.nparams * (2 + opt.nstate) * sizeof(real) + (double)acts_bytes(acts)) / (1 << 20);

    Batch *mb = batches_alloc(sh, accum);  // filled outside the timed region
    int G = accum * comm->size, first = accum * comm->rank;
    size_t step_tok = (size_t)G * sh->B * sh->T;
    double *ms = xmalloc((size_t)steps * (BENCH_NPHASE + 1) * sizeof *ms), *phs = ms + steps;  // phs: (phases, steps)
    StepAccum u = {0};
    for (long i = 0; i < warmup + steps; i++) {
        for (int k = 0; k < accum; k++) fill_batch(&mb[k], sh, (uint64_t)c->seed, i * G + first + k);
        StepStats ss;
        StepTimes tm;
        size_t sent = comm->reduce_bytes;
        int shared = par_sample();  // as training does
        double t0 = now_seconds();
        step_begin(&u, i, step_tok, first, accum, comm);
        u.no_overlap = o->no_overlap;
        for (int k = 0; k < accum; k++) step_micro(&u, &m, acts, &mb[k], c);
        step_end(&u, &ss, &tm, &m, &opt, c);
        double t1 = now_seconds();
        double loss = ss.loss / (double)step_tok;
        double ph[BENCH_NPHASE] = {[BENCH_FWD] = tm.forward, [BENCH_BWD] = tm.backward, [BENCH_REDUCE] = tm.reduce,
                                   [BENCH_CLIP] = tm.norm, [BENCH_UPDATE] = tm.update};
        if (!isfinite(loss)) {
            rc = err_set(NMT_ERR_RUNTIME, "bench %s: step %ld: loss is not finite (%g)", sh->name, i + 1, loss);
            break;
        }
        if (i == 0) r->loss_first = loss;
        r->loss_last = loss;
        r->mb_reduced = (double)(comm->reduce_bytes - sent) / 1e6;
        if (i < warmup) continue;
        r->shared_frac += (double)shared / (double)steps;
        ms[i - warmup] = (t1 - t0) * 1e3;
        for (int p = 0; p < BENCH_NPHASE; p++) phs[(size_t)p * (size_t)steps + (size_t)(i - warmup)] = ph[p] * 1e3;
    }
    if (!rc) {
        r->ms_median = median(ms, (size_t)steps);   // sorts ms
        r->ms_min = ms[0];
        r->ms_max = ms[steps - 1];
        for (int p = 0; p < BENCH_NPHASE; p++) r->ms_phase[p] = median(phs + (size_t)p * (size_t)steps, (size_t)steps);
        r->tok_per_s = (double)step_tok / (r->ms_median / 1e3);
        r->gflop_step = G * step_flops(&s, sh) / 1e9;
        r->gflops = r->gflop_step / (r->ms_median / 1e3);
        r->rss_mib = rss_peak_mib();
    }
    step_accum_free(&u);
    batches_free(mb, accum);
    free(ms);
    acts_free(acts);
    optim_free(&opt);
    model_free(&m);
    return rc;
}
