// train/train.h — the training run: data, model, optimizer, logging, checkpoints.
#ifndef NMT_TRAIN_H
#define NMT_TRAIN_H

#include "train/comm.h"

typedef struct {
    const char *config_path;
    const char *const *sets;   // --set key=value overrides
    int nset;
    const char *resume;        // --resume FILE, or NULL for <checkpoint_dir>/last.ckpt if present
    int quiet;                 // only warnings, errors and the summary
    int dry_run;               // validate config and data, print sizes, write nothing
    Comm *comm;                // the job's processes (comm.h); NULL: this one alone
} TrainArgs;

// Runs (or resumes) training. Returns an exit status (0, 1 or 2). Under
// mpirun every process calls it; rank 0 alone writes. An error that every
// process meets is described by rank 0 only (the others' message is empty).
int train_run(const TrainArgs *args);

#endif
