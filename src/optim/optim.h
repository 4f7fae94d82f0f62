// optim/optim.h — optimizers, learning-rate schedules, global-norm clipping.
// An optimizer sees a parameter set (flat buffers and named tensors with decay
// flags), never the model. Its state is a few buffers of n reals, each with a
// name; checkpoints save and load them as sections of those names. Which
// optimizer and its settings come from the config (train.optimizer and its
// keys), read in one place: optim_init and optim_configure.
#ifndef NMT_OPTIM_H
#define NMT_OPTIM_H

#include <stddef.h>
#include "common/config.h"
#include "common/params.h"

enum { OPTIM_MAX_STATE = 4 };

typedef struct {
    int type;                          // train.optimizer: OPT_ADAM | OPT_SGD_MOMENTUM
    double beta1, beta2, eps;          // adam
    double momentum;                   // sgd_momentum
    double weight_decay;               // decoupled; only tensors marked decay
} OptimSettings;

typedef struct {
    const char *name;                  // as train.optimizer spells it ("adam")
    OptimSettings set;
    long step;                         // updates done
    size_t n;                          // reals in each state buffer (the parameter set's n)
    int nstate;
    const char *state_name[OPTIM_MAX_STATE];   // "adam_m", "adam_v"; "momentum"; "ema"
    real *state[OPTIM_MAX_STATE];      // zeros at first
    double ema_decay;                  // train.ema_decay (0: none)
    int ema;                           // index of the "ema" buffer (the weights' moving average), or -1
} Optimizer;

// The optimizer the config names, with zeroed state for n parameters.
void optim_init(Optimizer *o, const Config *c, size_t n);
// Takes the config's settings (on resume the config given then wins). The
// state cannot change hands: NMT_ERR_INPUT, naming `what` and train.optimizer,
// when the config names another optimizer.
int optim_configure(Optimizer *o, const Config *c, const char *what);
// With train.ema_decay > 0 the optimizer also keeps the weights' exponential
// moving average as a state buffer named "ema" (saved and restored with the
// rest): after update t, ema = d*ema + (1-d)*p with d = min(decay,
// (1+t)/(10+t)), and ema = p after the first update.
// One update of every parameter in p (p->n == o->n) at learning rate lr, with
// the gradient taken as p->grad times grad_mul (the clipping factor: clipping
// costs no pass of its own). Decoupled weight decay, lr * weight_decay * p,
// only on tensors marked decay.
//   adam:         bias-corrected moments m, v; p -= lr/bc1 * m / (sqrt(v/bc2) + eps)
//   sgd_momentum: b = momentum * b + g; p -= lr * b
void optim_step(Optimizer *o, const ParamSet *p, double lr, real grad_mul);
void optim_free(Optimizer *o);

// The learning rate at step s (s < 1 counts as 1), warmup w, T total steps:
//   LR_NOAM:    scale * d^-0.5 * min(s^-0.5, s * w^-1.5)
//   LR_INVSQRT: peak * min(s / w, sqrt(w / s))
//   LR_COSINE:  peak * s / w up to w, then peak * (1 + cos(pi * (s - w) / (T + 1 - w))) / 2
//   LR_LINEAR:  peak * s / w up to w, then peak * (T + 1 - s) / (T + 1 - w)
// The decays reach 0 one step after the last (s = T + 1), so every step moves.
typedef struct {
    int kind;
    double d_model, warmup, scale, peak;
    long total;
} LrSchedule;
double lr_at(const LrSchedule *l, long step);

// L2 norm of g (n), summed in fixed chunks in a fixed order (thread-count independent).
double global_norm(const real *g, size_t n);
// The factor that brings a gradient of this norm down to max_norm: 1 when it
// is no larger, or when max_norm <= 0 (no clipping).
real clip_factor(double norm, double max_norm);

#endif
