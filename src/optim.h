// optim.h — Adam/AdamW, learning-rate schedules, global-norm clipping.
#ifndef NMT_OPTIM_H
#define NMT_OPTIM_H

#include <stddef.h>
#include "model.h"

typedef struct {
    real *m, *v;          // first and second moments, one buffer each
    size_t n;
    long step;            // updates done
    double beta1, beta2, eps, weight_decay;
} Adam;

void adam_init(Adam *a, size_t n, double beta1, double beta2, double eps, double weight_decay);
// One update of every parameter with bias-corrected moments; decoupled weight
// decay only on tensors marked `decay`. The gradient used is m->grads times
// grad_mul (the clipping factor: clipping costs no pass of its own).
void adam_step(Adam *a, Model *m, double lr, real grad_mul);
void adam_free(Adam *a);

// schedule: 0 = noam: scale * d^-0.5 * min(s^-0.5, s * w^-1.5)
//           1 = inverse_sqrt: peak * min(s / w, sqrt(w / s))
double lr_at(int schedule, long step, double d_model, double warmup, double scale, double peak);

// L2 norm of g (n), summed in fixed chunks in a fixed order (thread-count independent).
double global_norm(const real *g, size_t n);
// The factor that brings a gradient of this norm down to max_norm: 1 when it
// is no larger, or when max_norm <= 0 (no clipping).
real clip_factor(double norm, double max_norm);

#endif
