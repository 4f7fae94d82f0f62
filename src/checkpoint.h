// checkpoint.h — what a checkpoint holds and how a run is restored from one.
// Sections (see ckptfile.h for the container and README for the table):
//   config     the resolved config, JSON text
//   tokenizer  vocabularies or the BPE model
//   tensors    the parameter table: "name rows cols offset decay" per line
//   params     every parameter, raw little-endian floats
//   adam_m, adam_v   Adam moments (training checkpoints)
//   state      JSON: step, data cursor, log accumulators, best validation loss
#ifndef NMT_CHECKPOINT_H
#define NMT_CHECKPOINT_H

#include "config.h"
#include "model.h"
#include "optim.h"
#include "tokenizer.h"

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
} TrainState;

// The model shape implied by a config and its tokenizer.
ModelShape model_shape_from(const Config *c, const Tokenizer *t);
// The same with the vocabulary sizes given (benchmarks on synthetic data).
ModelShape model_shape_sized(const Config *c, int src_vocab, int tgt_vocab);

// Writes atomically. adam may be NULL (weights-only checkpoint, e.g. averages).
int checkpoint_save(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                    const Adam *adam, const TrainState *st);

// Reads and verifies everything, then builds the config, tokenizer and model
// (and, if adam != NULL, the optimizer state, which must be present).
// Nothing is returned half-built: on error all outputs are left empty.
int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Adam *adam, TrainState *st);

// `nmt info FILE`: prints header, sections, config, step and sizes.
int checkpoint_info(const char *path);

#endif
