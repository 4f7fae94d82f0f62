// train/train.c — the training loop.
#include "train/train.h"
#include "eval/bleu.h"
#include "io/checkpoint.h"
#include "train/comm.h"
#include "common/config.h"
#include "data/corpus.h"
#include "model/model.h"
#include "model/shape.h"
#include "optim/optim.h"
#include "kernels/par.h"
#include "text/tokenizer.h"
#include "train/step.h"
#include "decode/translate.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

// Set by SIGINT/SIGTERM/SIGUSR1: finish the step, save, exit 0. A second signal exits at once.
static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    if (stop_requested) _exit(128 + sig);
    stop_requested = 1;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
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

typedef struct {
    Config cfg;
    Tokenizer tok;
    Model model;
    Optimizer opt;
    TrainState st;
    Corpus train, valid;
    Batcher tb, vb;
    Acts *acts;
    StepAccum acc;        // this step's micro-batches
    Comm *comm;           // the job's processes (one without mpirun)
    int lead;             // rank 0: the one process that writes (logs, checkpoints, BPE model, output)
    FILE *log;
    int have_valid, quiet, tty;
    char *vsrc_text, *vref_text, **vsrc, **vref;   // validation text for BLEU
    double last_bleu;
    int lock_fd;          // <checkpoint_dir>/train.lock, held (flock) for the whole run; -1 = none
    long *lineage;        // steps of this run's step-N.ckpt files (stb_ds array), from train_log.jsonl
    long good_step;       // step of the last checkpoint known good (saved or resumed from); -1 = none
    char good_path[4200]; // that checkpoint's file
    int bad_records;      // log records in a row whose loss says the run diverged
    double last_loss;     // mean loss of the last log record (NAN before the first)
    double wall0;         // when this invocation started (validation records' "wall")
} Run;

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
    int rc = checkpoint_load(path, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    if (rc) return rc;
    char diff[1024];
    if (config_diff(&r->cfg, want, 1, diff, sizeof diff))
        return err_set(NMT_ERR_INPUT, "%s: checkpoint does not match the config: %s differ%s", path, diff,
                       strchr(diff, ',') ? "" : "s");
    // The config given now wins for the optimizer's settings too (not for which optimizer it is).
    rc = optim_configure(&r->opt, want, path);
    if (rc) return rc;
    if (config_diff(&r->cfg, want, 0, diff, sizeof diff))
        fprintf(stderr, "nmt: resuming with changed settings: %s\n", diff);
    // The config given now wins for everything that may change.
    config_free(&r->cfg);
    char *j = config_to_json(want);
    rc = config_parse(&r->cfg, j, "config", NULL, 0);
    free(j);
    return rc;
}

// Mean losses over the validation set, in a fixed batch order.
static void validate(Run *r, double *loss, double *nll) {
    double ls = 0, nl = 0, tok = 0;
    batcher_set_cursor(&r->vb, 0, 0);
    for (size_t i = 0; i < r->vb.nbatches; i++) {
        Batch b;
        batcher_next(&r->vb, &r->valid, &b);
        double n;
        ls += model_forward(&r->model, r->acts, &b, (real)r->cfg.label_smoothing, 0, 0, &n);
        nl += n;
        tok += (double)b.ntok;
    }
    *loss = ls / tok;
    *nll = nl / tok;
}

static void path_in(char *out, size_t n, const char *dir, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

// ---------------------------------------------------------------- never lose good work

// The run's lock: flock on <checkpoint_dir>/train.lock, held until the process
// ends (a killed process releases it). The file holds the holder's pid, so a
// second run can name it. The file is left in place: unlinking it would let a
// third run lock a new file while a second still holds the old one.
static int lock_checkpoint_dir(Run *r, const char *dir) {
    if (r->lock_fd >= 0) return NMT_OK;
    char path[4200];
    path_in(path, sizeof path, dir, "train.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(NMT_ERR_INPUT, "%s: cannot open the run's lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        close(fd);
        if (e != EWOULDBLOCK) return err_set(NMT_ERR_RUNTIME, "%s: cannot lock: %s", path, strerror(e));
        char who[48] = "pid not yet recorded";
        if (pid > 0) snprintf(who, sizeof who, "pid %ld", pid);
        return err_set(NMT_ERR_INPUT, "%s: another nmt train (%s) is using this checkpoint directory (it holds %s); "
                       "wait for it to finish, stop it, or set another train.checkpoint_dir", dir, who, path);
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) { /* the lock holds without the pid */ }
    r->lock_fd = fd;
    return NMT_OK;
}

static int in_lineage(const Run *r, long step) {
    for (ptrdiff_t i = 0; i < arrlen(r->lineage); i++)
        if (r->lineage[i] == step) return 1;
    return 0;
}

// The step-N.ckpt files in dir (stb_ds array of N).
static long *step_files(const char *dir) {
    long *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s;
        char tail[8];
        if (sscanf(e->d_name, "step-%ld.%7s", &s, tail) == 2 && strcmp(tail, "ckpt") == 0) arrput(steps, s);
    }
    closedir(d);
    return steps;
}

// Keeps the newest keep_last step-N.ckpt files of this run's lineage (the
// ones train_log.jsonl records it saving). Files of other runs (an abandoned
// run that got further, or a fresh start in a used directory) are never
// deleted: their step numbers say nothing about this run's work.
static void prune_step_checkpoints(Run *r) {
    int keep_last = r->cfg.keep_last;
    if (keep_last <= 0) return;
    size_t n = (size_t)arrlen(r->lineage), kept = 0;
    long *steps = r->lineage;
    for (size_t i = 0; i < n; i++) {
        size_t newer = 0;
        for (size_t j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer < (size_t)keep_last) continue;
        char name[64], path[4200];
        snprintf(name, sizeof name, "step-%ld.ckpt", steps[i]);
        path_in(path, sizeof path, r->cfg.checkpoint_dir, name);
        unlink(path);
        steps[i] = -1;  // deleted
    }
    for (size_t i = 0; i < n; i++)
        if (steps[i] >= 0) steps[kept++] = steps[i];
    arrsetlen(r->lineage, kept);
}

// Names the step-N.ckpt files that are not this run's (once, at the start).
static void note_foreign_step_files(const Run *r) {
    long *steps = step_files(r->cfg.checkpoint_dir);
    long lo = 0, hi = 0, n = 0;
    for (ptrdiff_t i = 0; i < arrlen(steps); i++) {
        if (in_lineage(r, steps[i])) continue;
        if (!n || steps[i] < lo) lo = steps[i];
        if (!n || steps[i] > hi) hi = steps[i];
        n++;
    }
    arrfree(steps);
    if (!n) return;
    char range[64];
    if (n > 1) snprintf(range, sizeof range, "%ld files, steps %ld to %ld, are", n, lo, hi);
    else snprintf(range, sizeof range, "step-%ld.ckpt is", lo);
    fprintf(stderr,
            "nmt: note: in %s, %s not from this run (an earlier, abandoned run's): pruning never deletes "
            "them; this run replaces a step-N.ckpt only when it saves that step N itself\n", r->cfg.checkpoint_dir,
            range);
}

static void describe_good(const Run *r, char *buf, size_t n) {
    if (r->good_step < 0) snprintf(buf, n, "no checkpoint of this run was written");
    else snprintf(buf, n, "the last good checkpoint is %s (step %ld)", r->good_path, r->good_step);
}

// Before anything is saved: every weight and every optimizer state value must
// be finite. (Per step, train_run checks the loss and the gradient norm,
// which are computed anyway: with a finite gradient Adam's update is finite;
// this scan, at save time only, catches whatever else made a value non-finite,
// e.g. an SGD update that overflowed.)
static int check_finite(Run *r) {
    if (!checkpoint_check_finite(&r->model, &r->opt, "the model in memory")) return NMT_OK;
    char what[512], good[4400];
    snprintf(what, sizeof what, "%s", err_msg());
    err_clear();
    describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: values are not finite after the update (%s); not saved, and no checkpoint was pruned: "
                   "%s. Likely cause: the optimizer's update overflowed (learning rate too high for these gradients): "
                   "lower train.lr or train.lr_scale, set train.clip_norm, or lengthen train.warmup_steps, then resume",
                   r->st.step, what, good);
}

// Where a fresh model's loss starts: a uniform guess over the target vocabulary.
static double start_loss(const Run *r) { return log((double)r->model.s.tgt_vocab); }

// A mean loss per token that says the run diverged (NaN included).
static int loss_diverged(const Run *r, double loss) {
    return r->cfg.diverge_factor > 0 && !(loss <= r->cfg.diverge_factor * start_loss(r));
}

// Is the run diverged now: its last log record, or the steps since then?
static int diverged_now(const Run *r) {
    if (r->bad_records > 0) return 1;
    return r->st.log_tokens > 0 && loss_diverged(r, r->st.log_loss / r->st.log_tokens);
}

static void warn_not_saving(const Run *r, const char *what) {
    fprintf(stderr, "%snmt: warning: step %ld: not writing %s: the run looks diverged (see above)\n",
            r->tty && !r->quiet ? "\r\033[K" : "", r->st.step, what);
}

// Records in train_log.jsonl that this run saved step-N.ckpt: the log is
// trimmed to the run being continued, so these records are its lineage.
static int log_saved(Run *r) {
    fprintf(r->log, "{\"step\": %ld, \"checkpoint\": \"step-%ld.ckpt\"}\n", r->st.step, r->st.step);
    if (fflush(r->log) != 0)
        return err_set(NMT_ERR_RUNTIME, "%s/train_log.jsonl: write failed: %s", r->cfg.checkpoint_dir, strerror(errno));
    return NMT_OK;
}

// last.ckpt, and step-N.ckpt as a hard link to the same bytes. Nothing is
// written while the run looks diverged or holds a non-finite value.
static int save(Run *r, int step_file) {
    if (!r->lead) return NMT_OK;
    if (diverged_now(r)) {
        warn_not_saving(r, step_file ? "last.ckpt and step-N.ckpt" : "last.ckpt");
        return NMT_OK;
    }
    int rc = check_finite(r);
    if (rc) return rc;
    char last[4200], tmp[4300], named[4200], name[64];
    path_in(last, sizeof last, r->cfg.checkpoint_dir, "last.ckpt");
    rc = checkpoint_save(last, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    if (rc) return rc;
    r->good_step = r->st.step;
    snprintf(r->good_path, sizeof r->good_path, "%s", last);
    if (!step_file) return NMT_OK;
    snprintf(name, sizeof name, "step-%ld.ckpt", r->st.step);
    path_in(named, sizeof named, r->cfg.checkpoint_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", named);
    unlink(tmp);
    if ((rc = log_saved(r))) return rc;
    if (link(last, tmp) != 0 || rename(tmp, named) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(NMT_ERR_RUNTIME, "%s: cannot create: %s", named, strerror(e));
    }
    if (!in_lineage(r, r->st.step)) arrput(r->lineage, r->st.step);
    prune_step_checkpoints(r);
    return NMT_OK;
}

// Greedy BLEU of the first valid_bleu_lines validation sentences (0 = all).
static int validation_bleu(Run *r, double *bleu) {
    size_t n = (size_t)arrlen(r->vsrc);
    if (r->cfg.valid_bleu_lines > 0 && (size_t)r->cfg.valid_bleu_lines < n) n = (size_t)r->cfg.valid_bleu_lines;
    char **hyp = xcalloc(n + 1, sizeof *hyp);
    DecodeOptions o = decode_defaults();
    int rc = translate_lines(&r->model, &r->tok, r->cfg.max_src_len, r->vsrc, n, &o, r->cfg.valid_src, hyp, NULL, NULL);
    BleuStats bs;
    bleu_stats_init(&bs, 0);
    for (size_t i = 0; !rc && i < n; i++) rc = bleu_add(&bs, hyp[i], r->vref[i]);
    for (size_t i = 0; i < n; i++) free(hyp[i]);
    free(hyp);
    if (!rc) *bleu = bleu_result(&bs).score;
    return rc;
}

// Validates, logs, keeps best.ckpt; sets *stop when patience runs out.
static int run_validation(Run *r, int *stop) {
    if (!r->have_valid) return NMT_OK;
    double loss, nll, bleu = -1;
    // With train.ema_decay the moving average is what gets validated (and
    // what a checkpoint gives for decoding).
    real *weights = r->model.params;
    if (r->opt.ema >= 0) r->model.params = r->opt.state[r->opt.ema];
    validate(r, &loss, &nll);
    int rc = r->cfg.valid_bleu_lines >= 0 ? validation_bleu(r, &bleu) : NMT_OK;
    r->model.params = weights;
    if (rc) return rc;
    r->last_bleu = bleu;
    int best = r->cfg.best_metric == BEST_BLEU ? bleu > r->st.best_valid_bleu : loss < r->st.best_valid_loss;
    if (loss < r->st.best_valid_loss) r->st.best_valid_loss = loss;
    if (bleu > r->st.best_valid_bleu) r->st.best_valid_bleu = bleu;
    r->st.bad_evals = best ? 0 : r->st.bad_evals + 1;
    // JSON has no inf: a perplexity that overflows is written as null.
    char ppl[32] = "null";
    if (isfinite(exp(nll))) snprintf(ppl, sizeof ppl, "%.9g", exp(nll));
    fprintf(r->log, "{\"step\": %ld, \"valid_loss\": %.9g, \"valid_nll\": %.9g, \"valid_ppl\": %s", r->st.step,
            loss, nll, ppl);
    if (bleu >= 0) fprintf(r->log, ", \"valid_bleu\": %.4f", bleu);
    fprintf(r->log, ", \"elapsed\": %.3f, \"wall\": %.3f}\n", r->st.elapsed, now_seconds() - r->wall0);
    fflush(r->log);
    if (!r->quiet) {
        printf("%sstep %ld | valid loss %.4f | valid ppl %.3f", r->tty ? "\r\033[K" : "", r->st.step, loss, exp(nll));
        if (bleu >= 0) printf(" | valid BLEU %.2f", bleu);
        printf("%s\n", best ? " | best" : "");
        fflush(stdout);
    }
    if (best && diverged_now(r)) {
        warn_not_saving(r, "best.ckpt");
    } else if (best && !(rc = check_finite(r))) {
        char path[4200];
        path_in(path, sizeof path, r->cfg.checkpoint_dir, "best.ckpt");
        rc = checkpoint_save(path, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    }
    if (r->cfg.patience > 0 && r->st.bad_evals >= r->cfg.patience) *stop = 1;
    return rc;
}

// After a crash the log may hold records from steps the checkpoint never saw:
// drop them, so the log always agrees with the run being continued.
// The "checkpoint" records kept are this run's step-N.ckpt files (its lineage).
static int trim_log(Run *r, const char *path, long step, int quiet) {
    if (!file_exists(path)) return NMT_OK;
    size_t len;
    char *text = read_file_text(path, &len);
    if (!text) return err_code();
    char *out = xmalloc(len + 1), *o = out;
    long dropped = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        const char *k = strstr(p, "\"step\": ");
        long s = k && k < p + n ? strtol(k + 8, NULL, 10) : 0;
        if (s <= step) {
            memcpy(o, p, n);
            o += n;
            const char *ck = strstr(p, "\"checkpoint\": \"step-");
            if (ck && ck < p + n && !in_lineage(r, s)) arrput(r->lineage, s);
        } else {
            dropped++;
        }
        p += n;
    }
    int rc = NMT_OK;
    if (dropped) {
        rc = write_file_atomic(path, out, (size_t)(o - out));
        if (!rc && !quiet) printf("nmt: dropped %ld log records past step %ld (from an interrupted run)\n", dropped, step);
    }
    free(text);
    free(out);
    return rc;
}

#define DRY_RUN (-1)

// ---------------------------------------------------------------- many processes

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

// Fingerprints of what every process must share: [0] the training data as
// token ids, [1] the starting point (weights, optimizer state, data cursor).
static void job_fingerprints(const Run *r, uint64_t fp[2]) {
    const Corpus *t = &r->train;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, &t->n, sizeof t->n);
    h = fnv1a(h, t->ids, arrlenu(t->ids) * sizeof *t->ids);
    h = fnv1a(h, t->src_len, t->n * sizeof *t->src_len);
    fp[0] = fnv1a(h, t->tgt_len, t->n * sizeof *t->tgt_len);
    h = fnv1a(0xcbf29ce484222325ULL, r->model.params, r->model.nparams * sizeof(real));
    for (int i = 0; i < r->opt.nstate; i++) h = fnv1a(h, r->opt.state[i], r->opt.n * sizeof(real));
    long cursor[3] = {r->st.step, r->st.epoch, r->st.batch_pos};
    fp[1] = fnv1a(h, cursor, sizeof cursor);
}

// Under mpirun, every process must run rank 0's job: the same resolved config,
// training data and starting point. Refused at the start (exit 2), naming
// each rank that differs and what; rank 0 reports for all.
static int check_same_job(Run *r) {
    const Comm *cm = r->comm;
    if (cm->size == 1) return NMT_OK;
    char *json = config_to_json(&r->cfg);
    size_t len = strlen(json);
    uint64_t fp[2], fp0[2];
    job_fingerprints(r, fp);
    char *root = xmalloc(len + 2 * sizeof fp + 1);
    memcpy(root, fp, sizeof fp);
    memcpy(root + sizeof fp, json, len + 1);
    size_t rlen = len + sizeof fp;
    comm_bcast_bytes(cm, &root, &rlen);
    memcpy(fp0, root, sizeof fp0);
    char msg[1024] = "";
    Config theirs;
    if (cm->rank != 0 && config_parse(&theirs, root + sizeof fp, "rank 0's config", NULL, 0) == NMT_OK) {
        char diff[900];
        if (config_diff(&r->cfg, &theirs, 0, diff, sizeof diff))
            snprintf(msg, sizeof msg, "rank %d: its config differs from rank 0's: %s (another config file or --set?)",
                     cm->rank, diff);
        config_free(&theirs);
    }
    if (!msg[0] && fp[0] != fp0[0])
        snprintf(msg, sizeof msg, "rank %d: its training data differs from rank 0's (%s, %s: other files on its "
                 "machine?)", cm->rank, r->cfg.train_src, r->cfg.train_tgt);
    if (!msg[0] && fp[1] != fp0[1])
        snprintf(msg, sizeof msg, "rank %d: it starts from other weights than rank 0 (another %s/last.ckpt on its "
                 "machine? train.checkpoint_dir must be one shared directory)", cm->rank, r->cfg.checkpoint_dir);
    free(json);
    free(root);
    char **all = comm_gather_text(cm, msg);
    int bad = comm_or(cm, msg[0] != 0);
    int rc = NMT_OK;
    if (bad && cm->rank == 0) {
        char out[4096] = "not every process runs the same job:";
        for (int k = 0; k < cm->size; k++)
            if (all[k][0]) snprintf(out + strlen(out), sizeof out - strlen(out), " %s;", all[k]);
        out[strlen(out) - 1] = 0;
        rc = err_set(NMT_ERR_INPUT, "%s", out);
    } else if (bad) {
        err_clear();  // rank 0 says it
        rc = NMT_ERR_INPUT;
    }
    for (int k = 0; all && k < cm->size; k++) free(all[k]);
    free(all);
    return rc;
}

// A resumed run's step of micro-batches may differ from its checkpoint's
// (other process count or train.accum_steps): say what that means.
static void note_layout(Run *r, const char *from) {
    long procs = r->comm->size, g = procs * r->cfg.accum_steps;
    long was = r->st.micro_batches > 0 ? r->st.micro_batches : 1, was_procs = r->st.processes > 0 ? r->st.processes : 1;
    // The sum over micro-batches adds left to right when each process has
    // one micro-batch or there is one process; otherwise in groups.
    int same_order = was == g && ((was_procs == 1 || was_procs == was) ? (procs == 1 || procs == g) : was_procs == procs);
    if (from && r->lead && was != g)
        printf("nmt: note: %ld micro-batches per step now (%ld process%s x train.accum_steps %d), %ld in the "
               "checkpoint's run: the global batch changed; the data order continues where it stopped, but the run "
               "no longer matches an uninterrupted one bit for bit\n", g, procs, procs > 1 ? "es" : "",
               r->cfg.accum_steps, was);
    else if (from && r->lead && !same_order)
        printf("nmt: note: %ld micro-batches per step as before, now from %ld process%s x train.accum_steps %d: their "
               "gradients add in another order, so the run matches an uninterrupted one within float rounding, "
               "not bit for bit\n", g, procs, procs > 1 ? "es" : "", r->cfg.accum_steps);
    r->st.micro_batches = g;
    r->st.processes = procs;
}

// The validation pairs, their batches, and their text for BLEU.
static int load_validation(Run *r) {
    const Config *c = &r->cfg;
    int rc = corpus_load(&r->valid, &r->tok, c->valid_src, c->valid_tgt, c->max_src_len, c->max_tgt_len);
    if (rc) return rc;
    r->have_valid = 1;
    batcher_init(&r->vb, &r->valid, (size_t)c->batch_tokens, 0, 0);
    rc = read_lines(c->valid_src, &r->vsrc_text, &r->vsrc);
    if (!rc) rc = read_lines(c->valid_tgt, &r->vref_text, &r->vref);
    return rc;
}

static int setup(Run *r, const TrainArgs *args) {
    Config want;
    int rc = config_load(&want, args->config_path, args->sets, args->nset);
    if (rc) return rc;
    rc = check_data_files(&want, args->config_path);
    // One run per checkpoint directory: locked before last.ckpt is read (a
    // directory that does not exist yet is locked once it is made, below).
    struct stat dst;
    if (!rc && r->lead && !args->dry_run && stat(want.checkpoint_dir, &dst) == 0 && S_ISDIR(dst.st_mode))
        rc = lock_checkpoint_dir(r, want.checkpoint_dir);
    char last[4200];
    path_in(last, sizeof last, want.checkpoint_dir, "last.ckpt");
    const char *from = args->resume ? args->resume : (file_exists(last) ? last : NULL);
    if (!rc && from) {
        rc = resume_from(r, from, &want);
        if (!rc && !r->quiet) printf("nmt: resuming from %s at step %ld\n", from, r->st.step);
    } else if (!rc) {
        r->cfg = want;
        memset(&want, 0, sizeof want);
        // Learning BPE writes <checkpoint_dir>/bpe.model: lock first. (Otherwise
        // the directory is made and locked once the data has loaded, so a run
        // that fails on its data writes nothing.)
        // Under mpirun every process learns the same BPE model; rank 0 saves it.
        if (r->lead && !args->dry_run && r->cfg.tokenizer == TOK_BPE && !r->cfg.bpe_model[0] &&
            !(rc = make_dirs(r->cfg.checkpoint_dir)))
            rc = lock_checkpoint_dir(r, r->cfg.checkpoint_dir);
        if (!rc) rc = tokenizer_build(&r->tok, &r->cfg, r->lead && !args->dry_run);
        if (!rc) {
            ModelShape s = model_shape_from(&r->cfg, &r->tok);
            model_create(&r->model, &s);
            model_init_params(&r->model, (uint64_t)r->cfg.seed);
            optim_init(&r->opt, &r->cfg, r->model.nparams);
            r->st.best_valid_loss = INFINITY;
            r->st.best_valid_bleu = -1;
        }
    }
    config_free(&want);
    if (rc) return rc;
    const Config *c = &r->cfg;
    rc = corpus_load(&r->train, &r->tok, c->train_src, c->train_tgt, c->max_src_len, c->max_tgt_len);
    if (rc) return rc;
    batcher_init(&r->tb, &r->train, (size_t)c->batch_tokens, (uint64_t)c->seed, 1);
    batcher_set_cursor(&r->tb, r->st.epoch, (size_t)r->st.batch_pos);
    size_t max_tok = r->tb.max_tokens, max_src = r->tb.max_src, max_tgt = r->tb.max_tgt;
    if (c->valid_src[0] && r->lead) {  // rank 0 validates
        rc = load_validation(r);
        if (rc) return rc;
        if (r->vb.max_tokens > max_tok) max_tok = r->vb.max_tokens;
        if (r->vb.max_src > max_src) max_src = r->vb.max_src;
        if (r->vb.max_tgt > max_tgt) max_tgt = r->vb.max_tgt;
    }
    r->acts = acts_create(&r->model, max_tok, max_src, max_tgt, 1);
    if (!r->quiet) {
        printf("nmt: %zu training pairs (%zu skipped), %zu batches; vocab %d/%d; %zu parameters; "
               "activations %.1f MiB\n", r->train.n, r->train.skipped, r->tb.nbatches, r->model.s.src_vocab,
               r->model.s.tgt_vocab, r->model.nparams, (double)acts_bytes(r->acts) / (1 << 20));
        if (r->have_valid) printf("nmt: %zu validation pairs (%zu skipped)\n", r->valid.n, r->valid.skipped);
    }
    rc = check_same_job(r);
    if (rc) return rc;
    if (args->dry_run && !r->lead) return DRY_RUN;
    if (args->dry_run) {
        char *j = config_to_json(c);
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
    note_layout(r, from);
    r->good_step = from ? r->st.step : -1;
    if (!r->lead) return NMT_OK;  // the others write nothing
    rc = make_dirs(c->checkpoint_dir);
    if (!rc) rc = lock_checkpoint_dir(r, c->checkpoint_dir);
    if (rc) return rc;
    if (from) snprintf(r->good_path, sizeof r->good_path, "%s", from);
    char logpath[4200];
    path_in(logpath, sizeof logpath, c->checkpoint_dir, "train_log.jsonl");
    rc = trim_log(r, logpath, r->st.step, r->quiet);
    if (rc) return rc;
    r->log = fopen(logpath, "a");
    if (!r->log) return err_set(NMT_ERR_RUNTIME, "%s: cannot open for appending: %s", logpath, strerror(errno));
    note_foreign_step_files(r);
    return NMT_OK;
}

// Writes a training record; counts it as diverged (and warns) when its loss is
// train.diverge_factor times the starting loss or more.
// cores: CPU seconds per wall second since the last record (all threads).
static void write_log(Run *r, double lr, double gnorm, double tok_per_s, double cores) {
    double loss = r->st.log_loss / r->st.log_tokens, nll = r->st.log_nll / r->st.log_tokens;
    r->last_loss = loss;
    fprintf(r->log,
            "{\"step\": %ld, \"epoch\": %ld, \"loss\": %.9g, \"nll\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
            "\"tokens_per_s\": %.1f, \"elapsed\": %.3f, \"cpu_cores\": %.2f}\n",
            r->st.step, r->st.epoch, loss, nll, lr, gnorm, tok_per_s, r->st.elapsed, cores);
    fflush(r->log);
    if (!r->quiet)
        printf(exp(nll) < 1e9 ? "%sstep %ld/%d | epoch %ld | loss %.4f | ppl %.2f | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d\n"
                              : "%sstep %ld/%d | epoch %ld | loss %.4f | ppl %.3g | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d\n",
               r->tty ? "\r\033[K" : "", r->st.step, r->cfg.max_steps, r->st.epoch + 1, loss, exp(nll), lr, gnorm,
               tok_per_s, cores, omp_get_max_threads());
    fflush(stdout);
    r->st.log_loss = r->st.log_nll = r->st.log_tokens = 0;
    if (!loss_diverged(r, loss)) {
        r->bad_records = 0;
        return;
    }
    r->bad_records++;
    fprintf(stderr,
            "%snmt: warning: step %ld: training loss %.4g is %.3g times where training starts (%.3g = ln of the "
            "target vocabulary)%s: the run looks diverged (%d of train.diverge_patience %d log records); no checkpoint "
            "is written while it is\n",
            r->tty && !r->quiet ? "\r\033[K" : "", r->st.step, loss, loss / start_loss(r), start_loss(r),
            isfinite(exp(nll)) ? "" : ", perplexity overflows", r->bad_records, r->cfg.diverge_patience);
}

static int diverged_error(const Run *r, const char *when) {
    char good[4400];
    describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: training diverged (%s; last logged loss %.4g, above train.diverge_factor %g x the "
                   "starting loss %.3g); stopped without saving, and no checkpoint was pruned: %s. Lower train.lr or "
                   "train.lr_scale, set train.clip_norm or lengthen train.warmup_steps, then resume",
                   r->st.step, when, r->last_loss, r->cfg.diverge_factor, start_loss(r), good);
}

static void format_duration(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

// The live progress line on a terminal (rewritten in place, at most 4 times a second).
// cores: CPU seconds per wall second (well below the thread count: the machine is shared).
static void progress(Run *r, double loss, double lr, double gnorm, double tok_s, double cores, double sec_per_step) {
    char eta[32];
    format_duration(eta, sizeof eta, sec_per_step * (double)(r->cfg.max_steps - r->st.step));
    printf("\r\033[Kstep %ld/%d | epoch %ld | loss %.4f | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d | ETA %s",
           r->st.step, r->cfg.max_steps, r->st.epoch + 1, loss, lr, gnorm, tok_s, cores, omp_get_max_threads(), eta);
    fflush(stdout);
}

// The error for a step whose loss or gradient norm is not finite.
static int nonfinite_step_error(Run *r, double loss, double gnorm) {
    char good[4400];
    describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: %s is not finite (%g), so this step's update made weights non-finite; nothing "
                   "from it was saved and no checkpoint was pruned: %s. Likely cause: the learning rate is too "
                   "high or the gradients exploded: lower train.lr or train.lr_scale, set train.clip_norm, or "
                   "lengthen train.warmup_steps, then resume",
                   r->st.step, isfinite(loss) ? "the gradient norm" : "the loss", isfinite(loss) ? gnorm : loss, good);
}

// After the loop: the last validation and save, and the summary. Returns the run's status.
static int finish(Run *r, int rc, long first_step, int saved_now, int early, int stop) {
    const Config *c = &r->cfg;
    const char *why = early ? "early stopping" : stop ? "signal" : "train.max_steps reached";
    if (!r->lead) return rc;  // rank 0 validates, saves and reports
    if (!rc && r->st.step != first_step && diverged_now(r))
        rc = diverged_error(r, stop ? "when a signal stopped it" : "at the end of the run");
    if (!rc && r->st.step == first_step) {
        if (!r->quiet) printf("nmt: already at step %ld (train.max_steps %d); nothing to do\n", r->st.step, c->max_steps);
    } else if (!rc) {
        if (stop && !r->quiet) printf("%snmt: stopping at step %ld on a signal; saving\n", r->tty ? "\r\033[K" : "", r->st.step);
        if (!stop && !early && !(c->eval_every && r->st.step % c->eval_every == 0)) rc = run_validation(r, &early);
        if (!rc && !saved_now) rc = save(r, 0);
        if (!rc) {
            char wall[32];
            double w = now_seconds() - r->wall0;
            format_duration(wall, sizeof wall, w);
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

int train_run(const TrainArgs *args) {
    Run r;
    memset(&r, 0, sizeof r);
    r.lock_fd = -1;
    r.good_step = -1;
    r.last_loss = NAN;
    Comm one = {.size = 1};
    r.comm = args->comm ? args->comm : &one;
    r.lead = r.comm->rank == 0;
    r.quiet = args->quiet || !r.lead;
    r.tty = isatty(STDOUT_FILENO);
    r.last_bleu = -1;
    r.wall0 = now_seconds();
    int rc = setup(&r, args);
    if (rc) {
        run_free(&r);
        return rc == DRY_RUN ? NMT_OK : rc;
    }
    const Config *c = &r.cfg;
    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);  // mpirun forwards SIGUSR1 to every rank
    // Past the file size limit (ulimit -f) a write raises SIGXFSZ, which kills
    // silently: ignored, the write fails (EFBIG) and is reported.
    struct sigaction ign, old_xfsz;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ign, &old_xfsz);

    double t_log = now_seconds(), t_run = t_log, t_shown = 0, tokens_since_log = 0, cpu_log = cpu_seconds();
    int saved_now = 0, early = 0, stop = 0;
    long first_step = r.st.step;
    while (r.st.step < c->max_steps && !stop && !early) {
        double t0 = now_seconds();
        StepStats ss;
        size_t ntok = run_step(&r, &ss);
        double loss = ss.loss;
        r.st.step++;
        r.st.epoch = r.tb.epoch;
        r.st.batch_pos = (long)r.tb.pos;
        r.st.log_loss += loss;
        r.st.log_nll += ss.nll;
        r.st.log_tokens += (double)ntok;
        r.st.tokens_seen += (long)ntok;
        tokens_since_log += (double)ntok;
        double now = now_seconds();
        r.st.elapsed += now - t0;
        // The loss and the gradient norm are computed anyway. A finite gradient
        // norm means every gradient is finite; a non-finite one made this
        // step's update non-finite, so nothing from it may be saved.
        if (!isfinite(loss) || !isfinite(ss.gnorm)) {
            rc = nonfinite_step_error(&r, loss, ss.gnorm);
            break;
        }
        saved_now = 0;
        if (r.tty && !r.quiet && now - t_shown > 0.25) {
            double done = (double)(r.st.step - first_step);
            progress(&r, loss / (double)ntok, ss.lr, ss.gnorm, tokens_since_log / (now - t_log + 1e-9),
                     (cpu_seconds() - cpu_log) / (now - t_log + 1e-9), (now - t_run) / done);
            t_shown = now;
        }
        if (r.lead && r.st.step % c->log_every == 0) {
            double cpu = cpu_seconds();
            write_log(&r, ss.lr, ss.gnorm, tokens_since_log / (now - t_log), (cpu - cpu_log) / (now - t_log));
            t_log = now;
            cpu_log = cpu;
            tokens_since_log = 0;
            if (ferror(r.log)) {
                rc = err_set(NMT_ERR_RUNTIME, "%s/train_log.jsonl: write failed (disk full or ulimit -f?)", c->checkpoint_dir);
                break;
            }
            if (r.bad_records >= c->diverge_patience) {
                char when[96];
                snprintf(when, sizeof when, "%d log record%s in a row", r.bad_records, r.bad_records > 1 ? "s" : "");
                rc = diverged_error(&r, when);
                break;
            }
        }
        if (c->eval_every && r.st.step % c->eval_every == 0 && (rc = run_validation(&r, &early))) break;
        if (c->save_every && r.st.step % c->save_every == 0) {
            if ((rc = save(&r, 1))) break;
            saved_now = 1;
        }
        // Every process stops after the same step: a signal may reach them at
        // different moments, and only rank 0 validates.
        int flags = comm_or(r.comm, (stop_requested ? 1 : 0) | (early ? 2 : 0));
        stop = flags & 1;
        early = (flags & 2) != 0;
    }
    rc = finish(&r, rc, first_step, saved_now, early, stop);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    sigaction(SIGXFSZ, &old_xfsz, NULL);
    run_free(&r);
    return rc;
}
