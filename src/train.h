// train.h — the training run: data, model, optimizer, logging, checkpoints.
#ifndef NMT_TRAIN_H
#define NMT_TRAIN_H

typedef struct {
    const char *config_path;
    const char *const *sets;   // --set key=value overrides
    int nset;
    const char *resume;        // --resume FILE, or NULL for <checkpoint_dir>/last.ckpt if present
    int quiet;                 // only warnings, errors and the summary
    int dry_run;               // validate config and data, print sizes, write nothing
} TrainArgs;

// Runs (or resumes) training. Returns an exit status (0, 1 or 2).
int train_run(const TrainArgs *args);

#endif
