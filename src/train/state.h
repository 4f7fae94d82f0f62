// train/state.h — the trainer's state (step, data cursor, log accumulators,
// best validation scores), as the JSON text a checkpoint keeps for it, and
// the checkpoint loaded and saved with it.
#ifndef NMT_TRAIN_STATE_H
#define NMT_TRAIN_STATE_H

#include "common/config.h"
#include "model/model.h"
#include "optim/optim.h"
#include "text/tokenizer.h"

typedef struct {
    long step;                 // optimizer steps done
    long epoch;                // data cursor: epoch and next position in its order
    long batch_pos;
    double best_valid_loss;    // +inf until validation runs
    double best_valid_bleu;    // -1 until validation BLEU runs
    long bad_evals;            // validations since the best one (early stopping)
    double log_loss, log_nll, log_tokens;  // accumulators since the last log record
    double elapsed;            // training seconds so far
    long tokens_seen;          // target tokens trained on
    long micro_batches;        // micro-batches per step (processes x train.accum_steps) of the run so far
    long processes;            // processes that computed them
    Precision precision;       // of the training passes' products (train.precision) of the run so far
    // Where a fine-tuning run started (train.init_from, run_init_from): the
    // checkpoint as the config named it, its step, and the CRC-32 of the
    // weights taken (as `nmt info` shows that checkpoint's params or ema
    // section's). init_from "": a run that started from random weights.
    char init_from[4096];
    long init_from_step, init_from_crc32;
} TrainState;

// A fresh run's state: step 0, no validation yet (best loss +inf, best BLEU
// -1), one micro-batch from one process, fp32.
void train_state_init(TrainState *st);

// The state as one line of JSON (malloc'ed): every field, doubles to 17
// significant digits so they round-trip; best_valid_loss left out while +inf.
char *train_state_to_json(const TrainState *st);

// Parses what train_state_to_json wrote. Absent fields take their defaults
// (step, epoch and batch_pos are required; precision, which older
// checkpoints lack, fp32; init_from "", written only when set); counts must be
// whole numbers in [0, 2^53] (init_from_crc32 below 2^32), reals finite,
// precision "fp32" or "bf16", init_from a string that fits.
// Errors: NMT_ERR_INPUT "PATH: state section: ...".
int train_state_from_json(TrainState *st, const char *json, const char *path);

// checkpoint_load (io/checkpoint.h), then its state parsed: what a resume,
// averaging and quantizing read. Nothing half-built on error.
int train_state_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st);

// checkpoint_save with the state's JSON.
int train_state_save(const char *path, const Config *c, const Tokenizer *t, const Model *m, const Optimizer *opt,
                     const TrainState *st);

#endif
