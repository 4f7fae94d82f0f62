// test_safety.c — training never loses good work: a step that makes a value
// non-finite is never saved, a diverged run stops without saving, two runs
// cannot share a checkpoint directory, pruning keeps other runs' files, and a
// file size limit (ulimit -f) fails a save cleanly.
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "train/train.h"
#include "common/util.h"
#include "copy_corpus.h"

static char dir[64];

static void setup_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/nmt_safety_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    err_clear();
}

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", dir);
}

TestSuite(safety, .init = setup_dir, .fini = remove_dir, .timeout = 60);

static const char *in_dir(const char *name) {
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static int exists(const char *name) {
    struct stat st;
    return stat(in_dir(name), &st) == 0;
}

// A tiny copy-task run (about 20k parameters, milliseconds a step).
static void write_setup(void) {
    write_copy_corpus(dir, "train", 300, 10, 8, 5);
    FILE *f = fopen(in_dir("cfg.json"), "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"model\": {\"d_model\": 32, \"heads\": 2, \"d_ff\": 64, \"encoder_layers\": 1, \"decoder_layers\": 1},"
            " \"data\": {\"train_src\": \"%s/train.src\", \"train_tgt\": \"%s/train.tgt\"},"
            " \"train\": {\"max_steps\": 4, \"batch_tokens\": 300, \"warmup_steps\": 20, \"log_every\": 2,"
            " \"save_every\": 2, \"keep_last\": 2, \"checkpoint_dir\": \"%s/ck\"}}\n",
            dir, dir, dir);
    fclose(f);
}

static int train(const char *const *sets, int nset, const char *resume) {
    TrainArgs a = {in_dir("cfg.json"), sets, nset, resume, 1, 0, NULL};
    err_clear();
    return train_run(&a);
}

static long step_of(const char *name) {
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    err_clear();
    cr_assert_eq(train_state_load(in_dir(name), &c, &t, &m, NULL, &st), 0, "%s", err_msg());
    for (size_t i = 0; i < m.nparams; i++) cr_assert(isfinite(m.params[i]), "%s: parameter %zu is not finite", name, i);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    return st.step;
}

// An update that overflows one weight (a huge first moment over a zero
// second moment: m / (sqrt(v) + eps) is inf) while the loss and gradient
// stay finite: that step must not be saved, nor may the good files go.
Test(safety, nonfinite_update_is_never_saved) {
    write_setup();
    cr_assert_eq(train(NULL, 0, NULL), 0, "%s", err_msg());
    cr_assert(exists("ck/step-4.ckpt"));
    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(in_dir("ck/last.ckpt"), &c, &t, &m, &o, &st), 0, "%s", err_msg());
    size_t at = m.tensors[arrlen(m.tensors) - 1].offset;  // a weight every forward pass uses
    o.state[0][at] = 3e38f;
    o.state[1][at] = 0;
    cr_assert_eq(train_state_save(in_dir("ck/last.ckpt"), &c, &t, &m, &o, &st), 0, "%s", err_msg());
    optim_free(&o);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);

    const char *sets[] = {"train.max_steps=8", "train.save_every=1", "train.keep_last=1"};
    cr_assert_eq(train(sets, 3, NULL), NMT_ERR_RUNTIME, "exit %d: %s", err_code(), err_msg());
    cr_assert(strstr(err_msg(), "step 5:") && strstr(err_msg(), "not finite"), "%s", err_msg());
    cr_assert(strstr(err_msg(), "Likely cause"), "%s", err_msg());
    cr_assert(!exists("ck/step-5.ckpt"), "the non-finite step was saved");
    cr_assert(exists("ck/step-4.ckpt"), "the last good step-N.ckpt was pruned");
    cr_assert_eq(step_of("ck/last.ckpt"), 4);
    cr_assert_eq(step_of("ck/step-4.ckpt"), 4);
}

// A run that blows up (lr 10 from step 1) warns, stops by the rule with exit
// 1, and leaves the last good checkpoint as it was.
Test(safety, diverged_run_stops_without_saving) {
    write_setup();
    cr_assert_eq(train(NULL, 0, NULL), 0, "%s", err_msg());
    const char *sets[] = {"train.max_steps=40", "train.lr_schedule=inverse_sqrt", "train.lr=10",
                          "train.warmup_steps=1"};
    int rc = train(sets, 4, NULL);
    cr_assert_eq(rc, NMT_ERR_RUNTIME, "a diverged run exited %d: %s", rc, err_msg());
    cr_assert(strstr(err_msg(), "diverged"), "%s", err_msg());
    cr_assert_eq(step_of("ck/last.ckpt"), 4, "a diverged state replaced last.ckpt");
    cr_assert(exists("ck/step-4.ckpt") && exists("ck/step-2.ckpt"));
    cr_assert(!exists("ck/step-40.ckpt"));
}

// A second run on a directory whose lock is held exits 2, naming the
// directory and the holder's pid.
Test(safety, second_run_on_a_directory_exits_2) {
    write_setup();
    cr_assert_eq(mkdir(in_dir("ck"), 0755), 0);
    int fd = open(in_dir("ck/train.lock"), O_RDWR | O_CREAT, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(write(fd, "424242\n", 7), 7);
    int rc = train(NULL, 0, NULL);
    cr_assert_eq(rc, NMT_ERR_INPUT, "exit %d: %s", rc, err_msg());
    cr_assert(strstr(err_msg(), in_dir("ck")) && strstr(err_msg(), "pid 424242"), "%s", err_msg());
    cr_assert(!exists("ck/last.ckpt") && !exists("ck/train_log.jsonl"), "the second run wrote into the directory");
    close(fd);  // released: now a run may start
    cr_assert_eq(train(NULL, 0, NULL), 0, "%s", err_msg());
    cr_assert_eq(step_of("ck/last.ckpt"), 4);
}

// An abandoned run got to step 12; a fresh run in the same directory keeps
// its own newest files and leaves the abandoned ones alone.
Test(safety, pruning_keeps_this_runs_files) {
    write_setup();
    const char *old[] = {"train.max_steps=12"};
    cr_assert_eq(train(old, 1, NULL), 0, "%s", err_msg());
    cr_assert(exists("ck/step-10.ckpt") && exists("ck/step-12.ckpt") && !exists("ck/step-8.ckpt"));
    cr_assert_eq(unlink(in_dir("ck/last.ckpt")), 0);  // abandoned: the next run starts afresh
    const char *fresh[] = {"train.max_steps=6"};
    cr_assert_eq(train(fresh, 1, NULL), 0, "%s", err_msg());
    cr_assert(exists("ck/step-4.ckpt") && exists("ck/step-6.ckpt"), "the new run's newest files were pruned");
    cr_assert(!exists("ck/step-2.ckpt"), "the new run's own old file was not pruned");
    cr_assert(exists("ck/step-10.ckpt") && exists("ck/step-12.ckpt"), "the abandoned run's files were deleted");
    cr_assert_eq(step_of("ck/step-6.ckpt"), 6);
    cr_assert_eq(step_of("ck/step-12.ckpt"), 12);
    // Resumed, the new run still knows its files: it prunes step-4 at step 8.
    const char *more[] = {"train.max_steps=8"};
    cr_assert_eq(train(more, 1, NULL), 0, "%s", err_msg());
    cr_assert(!exists("ck/step-4.ckpt") && exists("ck/step-6.ckpt") && exists("ck/step-8.ckpt"));
    cr_assert(exists("ck/step-10.ckpt") && exists("ck/step-12.ckpt"));
}

static void limit_file_size(rlim_t bytes) {
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

// Past ulimit -f, a write raises SIGXFSZ (which used to kill the process
// with no message, leaving NAME.tmp): now it fails like a full disk.
Test(safety, file_size_limit_fails_a_save_cleanly) {
    const char *path = in_dir("x.ckpt");
    static char big[1 << 20];
    memset(big, 7, sizeof big);
    CkptSection small = {"a", "old", 3}, large = {"a", big, sizeof big};
    cr_assert_eq(ckpt_write(path, &small, 1), 0, "%s", err_msg());
    limit_file_size(64 * 1024);
    int rc = ckpt_write(path, &large, 1);
    limit_file_size(RLIM_INFINITY);
    cr_assert_eq(rc, NMT_ERR_RUNTIME);
    cr_assert(strstr(err_msg(), "x.ckpt.tmp: write failed: File too large") && strstr(err_msg(), "ulimit -f"), "%s",
              err_msg());
    cr_assert(!exists("x.ckpt.tmp"), "a partial .tmp was left");
    CkptFile *f = NULL;
    err_clear();
    cr_assert_eq(ckpt_open(&f, path), 0, "the previous file is damaged: %s", err_msg());
    uint64_t n;
    const char *p = ckpt_section(f, "a", &n);
    cr_assert(n == 3 && memcmp(p, "old", 3) == 0);
    ckpt_close(f);

    // The same for every other atomic write (BPE models, trimmed logs, ...).
    const char *txt = in_dir("x.txt");
    err_clear();
    cr_assert_eq(write_file_atomic(txt, "old", 3), 0);
    limit_file_size(64 * 1024);
    rc = write_file_atomic(txt, big, sizeof big);
    limit_file_size(RLIM_INFINITY);
    cr_assert_eq(rc, NMT_ERR_RUNTIME);
    cr_assert(strstr(err_msg(), "File too large") && strstr(err_msg(), "ulimit -f"), "%s", err_msg());
    cr_assert(!exists("x.txt.tmp"));
    size_t len;
    char *back = read_file_text(txt, &len);
    cr_assert(back && len == 3 && memcmp(back, "old", 3) == 0);
    free(back);
}
