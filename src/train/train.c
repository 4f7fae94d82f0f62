// train/train.c — the training run: setup, the step loop, the finish. The run's
// other jobs have their files (run.h).
#include "train/train.h"
#include "train/run.h"
#include "common/util.h"
#include "kernels/par.h"
#include "model/shape.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DRY_RUN (-1)

// Set by SIGINT/SIGTERM/SIGUSR1: finish the step, save, exit 0. A second signal exits at once.
static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    if (stop_requested) _exit(128 + sig);
    stop_requested = 1;
}

// Every data file the config names must be readable before anything is written.
static int check_data_files(const Config *c, const char *cfg_path) {
    struct { const char *key, *path; } f[4] = {{"data.train_src", c->train_src}, {"data.train_tgt", c->train_tgt},
                                               {"data.valid_src", c->valid_src}, {"data.valid_tgt", c->valid_tgt}};
    for (int i = 0; i < 4; i++) {
        if (!f[i].path[0]) continue;
        FILE *fp = fopen(f[i].path, "rb");
        if (!fp) return err_set(NMT_ERR_INPUT, "%s: %s: cannot open '%s': %s", cfg_path, f[i].key, f[i].path, strerror(errno));
        fclose(fp);
    }
    return NMT_OK;
}

static void run_free(Run *r) {
    if (r->log) fclose(r->log);
    if (r->lock_fd >= 0) close(r->lock_fd);  // releases the lock
    arrfree(r->lineage);
    arrfree(r->vsrc);
    arrfree(r->vref);
    free(r->vsrc_text);
    free(r->vref_text);
    acts_free(r->acts);
    step_accum_free(&r->acc);
    batcher_free(&r->tb);
    if (r->have_valid) {
        batcher_free(&r->vb);
        corpus_free(&r->valid);
    }
    corpus_free(&r->train);
    optim_free(&r->opt);
    model_free(&r->model);
    tokenizer_free(&r->tok);
    config_free(&r->cfg);
}

// Loads the checkpoint to resume from and checks it against the config.
static int resume_from(Run *r, const char *path, const Config *want) {
    int rc = train_state_load(path, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    if (rc) return rc;
    char diff[1024];
    if (config_diff(&r->cfg, want, 1, diff, sizeof diff))
        return err_set(NMT_ERR_INPUT, "%s: checkpoint does not match the config: %s differ%s", path, diff,
                       strchr(diff, ',') ? "" : "s");
    // The config given now wins for the optimizer's settings too (not for which optimizer it is).
    rc = optim_configure(&r->opt, want, path);
    if (rc) return rc;
    // A change of train.precision has a line of its own (take_precision).
    Config same_precision = *want;  // a shallow copy, only compared
    same_precision.precision = r->cfg.precision;
    if (config_diff(&r->cfg, &same_precision, 0, diff, sizeof diff))
        fprintf(stderr, "nmt: resuming with changed settings: %s\n", diff);
    // The config given now wins for everything that may change, the
    // model's dropout rates too (the model was built from the checkpoint's).
    config_free(&r->cfg);
    char *j = config_to_json(want);
    rc = config_parse(&r->cfg, j, "config", NULL, 0);
    free(j);
    r->model.s.dropout = (real)r->cfg.dropout;
    r->model.s.attn_dropout = (real)r->cfg.attn_dropout;
    r->model.s.ffn_dropout = (real)r->cfg.ffn_dropout;
    return rc;
}

// The language profiles of the two sides' training text (text/langid.h), for
// telling their languages apart when serving: read apart from the corpus,
// they touch neither the random numbers nor the data order.
static int build_profiles(Tokenizer *t, const Config *c) {
    const char *files[2] = {c->train_src, c->train_tgt};
    LangProfile **out[2] = {&t->src_profile, &t->tgt_profile};
    for (int side = 0; side < 2; side++) {
        char *text, **lines;
        int rc = read_lines(files[side], &text, &lines);
        if (rc) return rc;
        *out[side] = langid_build((const char *const *)lines, (size_t)arrlen(lines));
        arrfree(lines);
        free(text);
    }
    return NMT_OK;
}

// The tokenizer (learnt, for BPE) with the language profiles, and the
// model's first weights, from the config.
static int start_from_scratch(Run *r, const TrainArgs *args) {
    int rc = NMT_OK;
    // Learning BPE writes <checkpoint_dir>/bpe.model: lock first. (Otherwise
    // the directory is made and locked once the data has loaded, so a run
    // that fails on its data writes nothing.)
    // Under mpirun every process learns the same BPE model; rank 0 saves it.
    if (r->lead && !args->dry_run && r->cfg.tokenizer == TOK_BPE && !r->cfg.bpe_model[0] &&
        !(rc = make_dirs(r->cfg.checkpoint_dir)))
        rc = run_lock_dir(r, r->cfg.checkpoint_dir);
    if (!rc) rc = tokenizer_build(&r->tok, &r->cfg, r->lead && !args->dry_run);
    if (!rc) rc = build_profiles(&r->tok, &r->cfg);
    if (rc) return rc;
    ModelShape s = model_shape_from(&r->cfg, &r->tok);
    model_create(&r->model, &s);
    model_init_params(&r->model, (uint64_t)r->cfg.seed);
    return NMT_OK;
}

// A fresh start: tokenizer and weights from the config, or (fine-tuning,
// train.init_from) from a checkpoint; then, either way, a fresh optimizer
// and the state of step 0. Every process of a job reads the checkpoint
// itself (as it reads the data): the same bytes, the same start.
static int start_fresh(Run *r, const TrainArgs *args) {
    train_state_init(&r->st);
    int ema = 0;
    int rc = r->cfg.init_from[0] ? run_init_from(r, &ema) : start_from_scratch(r, args);
    // A checkpoint from before the language profiles: built as a new run builds them.
    if (!rc && r->cfg.init_from[0] && !r->tok.src_profile) rc = build_profiles(&r->tok, &r->cfg);
    if (rc) return rc;
    optim_init(&r->opt, &r->cfg, r->model.nparams);
    if (r->st.init_from[0] && !r->quiet)
        printf("nmt: starting from the %s and the tokenizer of %s (step %ld); the optimizer, the learning-rate "
               "schedule and the data order start afresh\n", ema ? "weights' moving average" : "weights",
               r->st.init_from, r->st.init_from_step);
    return NMT_OK;
}

// train.init_from is for a fresh start; a resume says so when its checkpoint
// did not start from that file (a fine-tuning run resumed is silent).
static void note_init_from_unused(const Run *r, const char *from) {
    if (!r->lead || !r->cfg.init_from[0] || strcmp(r->cfg.init_from, r->st.init_from) == 0) return;
    fprintf(stderr, "nmt: note: train.init_from %s is not used: it starts a new run, and this run resumes from %s%s%s\n",
            r->cfg.init_from, from, r->st.init_from[0] ? ", which started from " : "",
            r->st.init_from);
}

// The config, and where the run starts: *from, the checkpoint resumed from
// (--resume, else last, the directory's last.ckpt, when present), or NULL
// for a fresh start.
static int setup_start(Run *r, const TrainArgs *args, char *last, size_t n, const char **from) {
    Config want;
    int rc = config_load(&want, args->config_path, args->sets, args->nset);
    if (rc) return rc;
    rc = check_data_files(&want, args->config_path);
    if (!rc) rc = run_refuse_inputs(&want, args->config_path);
    // One run per checkpoint directory: locked before last.ckpt is read (a
    // directory that does not exist yet is locked once it is made, below).
    struct stat dst;
    if (!rc && r->lead && !args->dry_run && stat(want.checkpoint_dir, &dst) == 0 && S_ISDIR(dst.st_mode))
        rc = run_lock_dir(r, want.checkpoint_dir);
    run_path(last, n, want.checkpoint_dir, "last.ckpt");
    *from = args->resume ? args->resume : (run_file_exists(last) ? last : NULL);
    if (!rc && *from) {
        rc = resume_from(r, *from, &want);
        if (!rc && !r->quiet) printf("nmt: resuming from %s at step %ld\n", *from, r->st.step);
        if (!rc) note_init_from_unused(r, *from);
    } else if (!rc) {
        r->cfg = want;
        memset(&want, 0, sizeof want);
        rc = start_fresh(r, args);
    }
    config_free(&want);
    return rc;
}

// The run's products are its config's train.precision, also when the
// checkpoint it resumes from was trained in another (said on stderr).
static void take_precision(Run *r, const char *from) {
    Precision p = model_precision_from(&r->cfg);
    if (from && r->lead && r->st.precision != p)
        fprintf(stderr, "nmt: resuming %s (trained in %s) in %s\n", from, precision_name(r->st.precision),
                precision_name(p));
    r->model.precision = p;
    r->st.precision = p;
}

// The largest batch of training or validation: what the activations are sized for.
static void largest_batch(const Run *r, size_t *tok, size_t *src, size_t *tgt) {
    *tok = r->tb.max_tokens, *src = r->tb.max_src, *tgt = r->tb.max_tgt;
    if (!r->have_valid) return;
    if (r->vb.max_tokens > *tok) *tok = r->vb.max_tokens;
    if (r->vb.max_src > *src) *src = r->vb.max_src;
    if (r->vb.max_tgt > *tgt) *tgt = r->vb.max_tgt;
}

// The training data at the state's cursor, the validation data (rank 0
// validates), and the activations for the largest batch.
static int setup_data(Run *r) {
    const Config *c = &r->cfg;
    int rc = corpus_load(&r->train, &r->tok, c->train_src, c->train_tgt, c->max_src_len, c->max_tgt_len);
    if (rc) return rc;
    batcher_init(&r->tb, &r->train, (size_t)c->batch_tokens, (uint64_t)c->seed, 1);
    batcher_set_cursor(&r->tb, r->st.epoch, (size_t)r->st.batch_pos);
    if (c->valid_src[0] && r->lead && (rc = run_load_validation(r))) return rc;
    size_t max_tok, max_src, max_tgt;
    largest_batch(r, &max_tok, &max_src, &max_tgt);
    r->acts = acts_create(&r->model, max_tok, max_src, max_tgt, 1);
    if (!r->quiet) {
        printf("nmt: %zu training pairs (%zu skipped), %zu batches; vocab %d/%d; %zu parameters; "
               "activations %.1f MiB\n", r->train.n, r->train.skipped, r->tb.nbatches, r->model.s.src_vocab,
               r->model.s.tgt_vocab, r->model.nparams, (double)acts_bytes(r->acts) / (1 << 20));
        if (r->have_valid) printf("nmt: %zu validation pairs (%zu skipped)\n", r->valid.n, r->valid.skipped);
    }
    return NMT_OK;
}

// --dry-run: the resolved config and the sizes; nothing is written.
static int dry_run_report(const Run *r) {
    size_t max_tok, max_src, max_tgt;
    largest_batch(r, &max_tok, &max_src, &max_tgt);
    char *j = config_to_json(&r->cfg);
    double state = (2.0 + r->opt.nstate) * (double)r->model.nparams * sizeof(real);
    printf("resolved config:\n%s\n", j);
    printf("parameters: %zu (%.1f MiB; with gradients and %s state %.1f MiB)\n", r->model.nparams,
           (double)r->model.nparams * sizeof(real) / (1 << 20), r->opt.name, state / (1 << 20));
    printf("activations: %.1f MiB for batches of up to %zu tokens (source <= %zu, target <= %zu)\n",
           (double)acts_bytes(r->acts) / (1 << 20), max_tok, max_src, max_tgt);
    printf("memory: about %.0f MiB in all; dry run: nothing written\n",
           (state + (double)acts_bytes(r->acts)) / (1 << 20) + 16);
    free(j);
    return DRY_RUN;
}

// Rank 0's files: the checkpoint directory, locked; train_log.jsonl trimmed
// to the run being continued and opened for appending.
static int open_run_dir(Run *r, const char *from) {
    const Config *c = &r->cfg;
    int rc = make_dirs(c->checkpoint_dir);
    if (!rc) rc = run_lock_dir(r, c->checkpoint_dir);
    if (rc) return rc;
    if (from) snprintf(r->good_path, sizeof r->good_path, "%s", from);
    char logpath[4200];
    run_path(logpath, sizeof logpath, c->checkpoint_dir, "train_log.jsonl");
    rc = run_trim_log(r, logpath, r->st.step, r->quiet);
    if (rc) return rc;
    r->log = fopen(logpath, "a");
    if (!r->log) return err_set(NMT_ERR_RUNTIME, "%s: cannot open for appending: %s", logpath, strerror(errno));
    if (!from && r->st.init_from[0]) run_log_origin(r);
    run_note_foreign_step_files(r);
    return NMT_OK;
}

static int setup(Run *r, const TrainArgs *args) {
    char last[4200];
    const char *from = NULL;
    int rc = setup_start(r, args, last, sizeof last, &from);
    if (!rc) take_precision(r, from);
    if (!rc) rc = setup_data(r);
    if (!rc) rc = run_check_same_job(r);
    if (rc) return rc;
    if (args->dry_run) return r->lead ? dry_run_report(r) : DRY_RUN;
    run_note_layout(r, from);
    r->good_step = from ? r->st.step : -1;
    if (!r->lead) return NMT_OK;  // the others write nothing
    return open_run_dir(r, from);
}

// After the loop: the last validation and save, and the summary. Returns the run's status.
static int finish(Run *r, int rc, long first_step, int saved_now, int early, int stop) {
    const Config *c = &r->cfg;
    const char *why = early ? "early stopping" : stop ? "signal" : "train.max_steps reached";
    if (!r->lead) return rc;  // rank 0 validates, saves and reports
    if (!rc && r->st.step != first_step && run_diverged_now(r))
        rc = run_diverged_error(r, stop ? "when a signal stopped it" : "at the end of the run");
    if (!rc && r->st.step == first_step) {
        if (!r->quiet) printf("nmt: already at step %ld (train.max_steps %d); nothing to do\n", r->st.step, c->max_steps);
    } else if (!rc) {
        if (stop && !r->quiet) printf("%snmt: stopping at step %ld on a signal; saving\n", r->tty ? "\r\033[K" : "", r->st.step);
        if (!stop && !early && !(c->eval_every && r->st.step % c->eval_every == 0)) rc = run_validation(r, &early);
        if (!rc && !saved_now) rc = run_save(r, 0);
        if (!rc) {
            char wall[32];
            double w = now_seconds() - r->wall0;
            run_format_duration(wall, sizeof wall, w);
            printf("%snmt: stopped (%s) at step %ld after %s; %ld target tokens trained on in %.1f s of steps\n",
                   r->tty && !r->quiet ? "\r\033[K" : "", why, r->st.step, wall, r->st.tokens_seen, r->st.elapsed);
            // Below the thread count, the threads waited for the CPU: the machine was shared.
            printf("nmt: CPU time %.1f s in %.1f s: %.2f cores busy on average for %d threads\n", cpu_seconds(), w,
                   cpu_seconds() / w, omp_get_max_threads());
            if (isfinite(r->st.best_valid_loss)) {
                printf("nmt: best validation loss %.4f", r->st.best_valid_loss);
                if (r->st.best_valid_bleu >= 0) printf(", best validation BLEU %.2f", r->st.best_valid_bleu);
                printf(" (best.ckpt follows %s)\n", c->best_metric == BEST_BLEU ? "BLEU" : "the loss");
            }
            printf("nmt: checkpoints and train_log.jsonl in %s/ (last.ckpt%s)\n", c->checkpoint_dir,
                   r->have_valid ? ", best.ckpt" : "");
        }
    }
    return rc;
}

// One update: micro-batches 0..G-1 of the batch order, this process computing
// first..first+K-1 of them. Returns the target tokens of all G.
static size_t run_step(Run *r, StepStats *ss) {
    const Config *c = &r->cfg;
    int K = c->accum_steps, G = K * r->comm->size, first = K * r->comm->rank;
    size_t ntok = batcher_peek_ntok(&r->tb, (size_t)G);
    par_sample();  // a shared machine: no work split over threads
    step_begin(&r->acc, r->st.step, ntok, first, K, r->comm);
    for (int j = 0; j < G; j++) {
        if (j < first || j >= first + K) {
            batcher_skip(&r->tb);
            continue;
        }
        Batch b;
        batcher_next(&r->tb, &r->train, &b);
        step_micro(&r->acc, &r->model, r->acts, &b, c);
    }
    step_end(&r->acc, ss, NULL, &r->model, &r->opt, c);
    return ntok;
}

// The loop's clocks and counters between steps.
typedef struct {
    double t_log, t_run, t_shown;  // the last log record, the loop's start, the last progress line
    double tokens_since_log, cpu_log;
    long first_step;
    int saved_now, early, stop;
} Loop;

// The step's counts into the state. Returns the time it ended.
static double count_step(Run *r, Loop *lp, const StepStats *ss, size_t ntok, double t0) {
    r->st.step++;
    r->st.epoch = r->tb.epoch;
    r->st.batch_pos = (long)r->tb.pos;
    r->st.log_loss += ss->loss;
    r->st.log_nll += ss->nll;
    r->st.log_tokens += (double)ntok;
    r->st.tokens_seen += (long)ntok;
    lp->tokens_since_log += (double)ntok;
    double now = now_seconds();
    r->st.elapsed += now - t0;
    return now;
}

static void show_progress(Run *r, Loop *lp, const StepStats *ss, size_t ntok, double now) {
    double done = (double)(r->st.step - lp->first_step);
    run_progress(r, ss->loss / (double)ntok, ss->lr, ss->gnorm, lp->tokens_since_log / (now - lp->t_log + 1e-9),
                 (cpu_seconds() - lp->cpu_log) / (now - lp->t_log + 1e-9), (now - lp->t_run) / done);
    lp->t_shown = now;
}

// A training record; the run stops when the log cannot be written or the
// loss has said "diverged" train.diverge_patience records in a row.
static int log_record(Run *r, Loop *lp, const StepStats *ss, double now) {
    const Config *c = &r->cfg;
    double cpu = cpu_seconds();
    run_write_log(r, ss->lr, ss->gnorm, lp->tokens_since_log / (now - lp->t_log), (cpu - lp->cpu_log) / (now - lp->t_log));
    lp->t_log = now;
    lp->cpu_log = cpu;
    lp->tokens_since_log = 0;
    if (ferror(r->log))
        return err_set(NMT_ERR_RUNTIME, "%s/train_log.jsonl: write failed (disk full or ulimit -f?)", c->checkpoint_dir);
    if (r->bad_records >= c->diverge_patience) {
        char when[96];
        snprintf(when, sizeof when, "%d log record%s in a row", r->bad_records, r->bad_records > 1 ? "s" : "");
        return run_diverged_error(r, when);
    }
    return NMT_OK;
}

// One update and what follows it: the progress line, a log record,
// validation, a save, and whether every process stops here.
static int loop_step(Run *r, Loop *lp) {
    const Config *c = &r->cfg;
    double t0 = now_seconds();
    StepStats ss;
    size_t ntok = run_step(r, &ss);
    double now = count_step(r, lp, &ss, ntok, t0);
    // The loss and the gradient norm are computed anyway. A finite gradient
    // norm means every gradient is finite; a non-finite one made this
    // step's update non-finite, so nothing from it may be saved.
    if (!isfinite(ss.loss) || !isfinite(ss.gnorm)) return run_nonfinite_step_error(r, ss.loss, ss.gnorm);
    lp->saved_now = 0;
    if (r->tty && !r->quiet && now - lp->t_shown > 0.25) show_progress(r, lp, &ss, ntok, now);
    int rc;
    if (r->lead && r->st.step % c->log_every == 0 && (rc = log_record(r, lp, &ss, now))) return rc;
    if (c->eval_every && r->st.step % c->eval_every == 0 && (rc = run_validation(r, &lp->early))) return rc;
    if (c->save_every && r->st.step % c->save_every == 0) {
        if ((rc = run_save(r, 1))) return rc;
        lp->saved_now = 1;
    }
    // Every process stops after the same step: a signal may reach them at
    // different moments, and only rank 0 validates.
    int flags = comm_or(r->comm, (stop_requested ? 1 : 0) | (lp->early ? 2 : 0));
    lp->stop = flags & 1;
    lp->early = (flags & 2) != 0;
    return NMT_OK;
}

static void run_init(Run *r, const TrainArgs *args, Comm *one) {
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    r->good_step = -1;
    r->last_loss = NAN;
    r->comm = args->comm ? args->comm : one;
    r->lead = r->comm->rank == 0;
    r->quiet = args->quiet || !r->lead;
    r->tty = isatty(STDOUT_FILENO);
    r->last_bleu = -1;
    r->wall0 = now_seconds();
}

// SIGINT, SIGTERM, SIGUSR1 stop the run after a step. Past the file size
// limit (ulimit -f) a write raises SIGXFSZ, which kills silently: ignored,
// the write fails (EFBIG) and is reported.
static void catch_signals(struct sigaction *old_xfsz) {
    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);  // mpirun forwards SIGUSR1 to every rank
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ign, old_xfsz);
}

static void restore_signals(const struct sigaction *old_xfsz) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    sigaction(SIGXFSZ, old_xfsz, NULL);
}

int train_run(const TrainArgs *args) {
    Run r;
    Comm one = {.size = 1};
    run_init(&r, args, &one);
    int rc = setup(&r, args);
    if (rc) {
        run_free(&r);
        return rc == DRY_RUN ? NMT_OK : rc;
    }
    struct sigaction old_xfsz;
    catch_signals(&old_xfsz);
    Loop lp;
    memset(&lp, 0, sizeof lp);
    lp.t_log = now_seconds();
    lp.t_run = lp.t_log;
    lp.cpu_log = cpu_seconds();
    lp.first_step = r.st.step;
    while (r.st.step < r.cfg.max_steps && !lp.stop && !lp.early)
        if ((rc = loop_step(&r, &lp))) break;
    rc = finish(&r, rc, lp.first_step, lp.saved_now, lp.early, lp.stop);
    restore_signals(&old_xfsz);
    run_free(&r);
    return rc;
}
