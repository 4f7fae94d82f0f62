// train/step.h — one training step (zero the gradients, forward and backward
// over its micro-batches, the sum over processes, gradient norm, clipping
// factor, optimizer update), which `nmt train` and `nmt bench` both run.
#ifndef NMT_TRAIN_STEP_H
#define NMT_TRAIN_STEP_H

#include "model/batch.h"
#include "train/comm.h"
#include "common/config.h"
#include "model/model.h"
#include "optim/optim.h"

typedef struct {
    double loss, nll;          // sums over the batch's target tokens: label-smoothed, -log p(gold)
    double gnorm;              // global L2 norm of the gradient (of the mean loss), before clipping
    double lr;                 // the learning rate of this update
} StepStats;

// Seconds spent in each part of a step. The output layer's forward and
// backward passes interleave (model.h): forward counts its logits and losses;
// zeroing and adding micro-batch gradients count as backward.
typedef struct {
    double forward, backward, reduce, norm, update;  // reduce: the sums over processes
} StepTimes;

// Update number step + 1 (step = updates done before it) over G micro-batches,
// numbered 0..G-1 in data order and shared among the processes (each computes
// a run of them), as three calls:
//   step_begin                          once
//   step_micro                          for each of this process's micro-batches, in order
//   step_end                            once: the update
// Under mpirun the sum over processes overlaps the last micro-batch's
// backward pass: each layer's gradient starts on its way as soon as it is
// final (comm_sum_piece), as PyTorch DDP's buckets do, in the same order.
// The gradient is that of the step's summed loss divided by its target tokens
// (all micro-batches); micro-batch j's gradient is computed alone and added
// to the sum in the order 0, 1, ..., G-1 (here, then across processes in rank
// order): G processes with one micro-batch each give the same bits as one
// process with G. Dropout is keyed by (train.seed, step + 1, j), whichever
// process computes j. Learning rate lr_at(step + 1); the gradient scaled by
// clip_factor(norm, train.clip_norm).
typedef struct {
    long step;            // updates done before this one
    size_t ntok;          // target tokens of the whole step, every process's micro-batches
    int next;             // index in the step of this process's next micro-batch
    int count;            // this process's micro-batches so far
    int local;            // this process's micro-batches in the step
    Comm *comm;           // the processes (NULL: one)
    int no_overlap;       // set by the caller: sum over processes only after the backward pass
    int summing;          // the sum over processes has begun
    real *grads;          // the model's gradient buffer: the step's sum
    ParamSpan *ready;     // the parts of it the backward pass announced final (stb array)
    double reduce0;       // comm->reduce_seconds at step_begin
    real *scratch;        // gradient of the current micro-batch past the first (nparams; owned)
    double *sums;         // loss and nll sums of this process's micro-batches (stb array)
    double *all_sums;     // every process's (stb array)
    double fwd_seconds, bwd_seconds;
} StepAccum;

// The dropout masks of micro-batch j of update step + 1: a resumed run, and
// any process computing j, draws the same ones. (Micro-batch 0 keeps the key
// of the steps before accumulation existed.)
uint64_t step_dropout_key(const Config *c, long step, int j);

void step_accum_free(StepAccum *u);
// first: the index of this process's first micro-batch in the step; local:
// how many it computes; comm NULL: one process.
void step_begin(StepAccum *u, long step, size_t step_ntok, int first, int local, Comm *comm);
void step_micro(StepAccum *u, Model *m, Acts *acts, const Batch *b, const Config *c);
// times may be NULL (not timed).
void step_end(StepAccum *u, StepStats *out, StepTimes *times, Model *m, Optimizer *opt, const Config *c);

// One process, one batch: step_begin, step_micro, step_end. times may be NULL.
void train_step(StepStats *out, StepTimes *times, Model *m, Acts *acts, Optimizer *opt, const Batch *b,
                const Config *c, long step);

#endif
