// train/rundir.c — the run's checkpoint directory: its lock, this run's lineage of
// step-N.ckpt files, saving and pruning them.
#include "train/run.h"
#include "common/util.h"
#include "common/files.h"
#include "train/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void run_path(char *out, size_t n, const char *dir, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

int run_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// The run's lock: flock on <checkpoint_dir>/train.lock, held until the process
// ends (a killed process releases it). The file holds the holder's pid, so a
// second run can name it. The file is left in place: unlinking it would let a
// third run lock a new file while a second still holds the old one.
int run_lock_dir(Run *r, const char *dir) {
    if (r->lock_fd >= 0) return NMT_OK;
    char path[4200];
    run_path(path, sizeof path, dir, "train.lock");
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

int run_in_lineage(const Run *r, long step) {
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
        run_path(path, sizeof path, r->cfg.checkpoint_dir, name);
        unlink(path);
        steps[i] = -1;  // deleted
    }
    for (size_t i = 0; i < n; i++)
        if (steps[i] >= 0) steps[kept++] = steps[i];
    arrsetlen(r->lineage, kept);
}

// Names the step-N.ckpt files that are not this run's (once, at the start).
void run_note_foreign_step_files(const Run *r) {
    long *steps = step_files(r->cfg.checkpoint_dir);
    long lo = 0, hi = 0, n = 0;
    for (ptrdiff_t i = 0; i < arrlen(steps); i++) {
        if (run_in_lineage(r, steps[i])) continue;
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

int run_refuse_inputs(const Config *c, const char *config_path) {
    const FileArg in[] = {{"--config", config_path}, {"data.train_src", c->train_src}, {"data.train_tgt", c->train_tgt},
                          {"data.valid_src", c->valid_src}, {"data.valid_tgt", c->valid_tgt},
                          {"train.init_from", c->init_from}};
    const char *fixed[] = {"last.ckpt", "best.ckpt", "train_log.jsonl", "train.lock"};
    long *steps = step_files(c->checkpoint_dir);
    int rc = NMT_OK;
    for (ptrdiff_t i = 0; !rc && i < 4 + arrlen(steps); i++) {
        char name[64], path[4200];
        if (i < 4) snprintf(name, sizeof name, "%s", fixed[i]);
        else snprintf(name, sizeof name, "step-%ld.ckpt", steps[i - 4]);
        run_path(path, sizeof path, c->checkpoint_dir, name);
        rc = refuse_same_file(&(FileArg){"train.checkpoint_dir's", path}, in, (int)(sizeof in / sizeof in[0]));
    }
    arrfree(steps);
    return rc;
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
int run_save(Run *r, int step_file) {
    if (!r->lead) return NMT_OK;
    if (run_diverged_now(r)) {
        run_warn_not_saving(r, step_file ? "last.ckpt and step-N.ckpt" : "last.ckpt");
        return NMT_OK;
    }
    int rc = run_check_finite(r);
    if (rc) return rc;
    char last[4200], named[4200], name[64];
    run_path(last, sizeof last, r->cfg.checkpoint_dir, "last.ckpt");
    rc = train_state_save(last, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    if (rc) return rc;
    r->good_step = r->st.step;
    snprintf(r->good_path, sizeof r->good_path, "%s", last);
    if (!step_file) return NMT_OK;
    snprintf(name, sizeof name, "step-%ld.ckpt", r->st.step);
    run_path(named, sizeof named, r->cfg.checkpoint_dir, name);
    if ((rc = log_saved(r))) return rc;
    // A second name for last.ckpt's bytes, made new (never an existing file), renamed over step-N.ckpt.
    char *tmp = NULL;
    if (temp_link(last, named, &tmp) != 0) return err_code();
    if (rename(tmp, named) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return err_set(NMT_ERR_RUNTIME, "%s: cannot create: %s", named, strerror(e));
    }
    free(tmp);
    if (!run_in_lineage(r, r->st.step)) arrput(r->lineage, r->st.step);
    prune_step_checkpoints(r);
    return NMT_OK;
}
