// train/run.h — the training run's private header, shared by train.c (the
// loop), rundir.c (the checkpoint directory), diverge.c (never lose good
// work), validate.c, log.c, job.c (many processes) and init_from.c
// (fine-tuning). Nothing else includes it.
#ifndef NMT_TRAIN_RUN_H
#define NMT_TRAIN_RUN_H

#include "common/config.h"
#include "data/corpus.h"
#include "model/model.h"
#include "optim/optim.h"
#include "text/tokenizer.h"
#include "train/comm.h"
#include "train/state.h"
#include "train/step.h"

#include <stdio.h>

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

// rundir.c: the checkpoint directory.
void run_path(char *out, size_t n, const char *dir, const char *name);  // dir/name
int run_file_exists(const char *path);
// flock on <dir>/train.lock for the rest of the process (refused, naming the
// holder's pid, when another run holds it).
int run_lock_dir(Run *r, const char *dir);
int run_in_lineage(const Run *r, long step);
// Names the step-N.ckpt files that are not this run's (once, at the start).
void run_note_foreign_step_files(const Run *r);
// None of the files the run reads (the config, the data, train.init_from) is one it writes
// in the checkpoint directory (last.ckpt, best.ckpt, step-N.ckpt,
// train_log.jsonl, train.lock); else NMT_ERR_INPUT naming both.
int run_refuse_inputs(const Config *c, const char *config_path);
// last.ckpt, and with step_file step-N.ckpt (then pruned to train.keep_last);
// nothing while the run looks diverged or holds a non-finite value.
int run_save(Run *r, int step_file);

// diverge.c: never lose good work.
void run_describe_good(const Run *r, char *buf, size_t n);
int run_check_finite(Run *r);              // every weight and optimizer value, before a save
double run_start_loss(const Run *r);       // ln of the target vocabulary
int run_loss_diverged(const Run *r, double loss);
int run_diverged_now(const Run *r);
void run_warn_not_saving(const Run *r, const char *what);
int run_diverged_error(const Run *r, const char *when);
int run_nonfinite_step_error(Run *r, double loss, double gnorm);

// validate.c
int run_load_validation(Run *r);
// Validates, logs, keeps best.ckpt; sets *stop when patience runs out.
int run_validation(Run *r, int *stop);

// log.c: train_log.jsonl and the terminal.
int run_trim_log(Run *r, const char *path, long step, int quiet);
void run_write_log(Run *r, double lr, double gnorm, double tok_per_s, double cores);
// A fine-tuning run's first record: where it started (r->st.init_from ...).
void run_log_origin(Run *r);
void run_format_duration(char *buf, size_t n, double s);
void run_progress(Run *r, double loss, double lr, double gnorm, double tok_s, double cores, double sec_per_step);

// init_from.c: fine-tuning. The tokenizer and the weights (the moving
// average when kept: *ema set) of train.init_from, into r->tok and a new
// r->model the config describes, and r->st's record of them; the config's
// model keys must agree with the checkpoint's, data.bpe_model (if given)
// hold its BPE model, and the file be a float checkpoint: else NMT_ERR_INPUT
// "train.init_from FILE: ...". r->st must be fresh (train_state_init).
int run_init_from(Run *r, int *ema);

// job.c: many processes.
int run_check_same_job(Run *r);
void run_note_layout(Run *r, const char *from);

#endif
