// train_step.h — one training step (zero the gradients, forward and backward,
// gradient norm, clipping factor, optimizer update), which `nmt train` and
// `nmt bench` both run; and the trainer's state that a checkpoint keeps.
#ifndef NMT_TRAIN_STEP_H
#define NMT_TRAIN_STEP_H

#include "batch.h"
#include "config.h"
#include "model.h"
#include "optim.h"

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

typedef struct {
    double loss, nll;          // sums over the batch's target tokens: label-smoothed, -log p(gold)
    double gnorm;              // global L2 norm of the gradient (of the mean loss), before clipping
    double lr;                 // the learning rate of this update
} StepStats;

// Seconds spent in each part of a step. The output layer's forward and
// backward passes interleave (model.h): forward counts its logits and losses;
// zeroing the gradients counts as backward.
typedef struct {
    double forward, backward, norm, update;
} StepTimes;

// Update number step + 1 (step = updates done before it) on batch b: the
// gradient of the mean loss per target token, dropout keyed by
// (train.seed, step + 1), learning rate lr_at(step + 1), the gradient scaled
// by clip_factor(norm, train.clip_norm). times may be NULL (not timed).
void train_step(StepStats *out, StepTimes *times, Model *m, Acts *acts, Optimizer *opt, const Batch *b,
                const Config *c, long step);

#endif
