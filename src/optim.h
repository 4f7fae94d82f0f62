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
// decay only on tensors marked `decay`.
void adam_step(Adam *a, Model *m, double lr);
void adam_free(Adam *a);

// schedule: 0 = noam: scale * d^-0.5 * min(s^-0.5, s * w^-1.5)
//           1 = inverse_sqrt: peak * min(s / w, sqrt(w / s))
double lr_at(int schedule, long step, double d_model, double warmup, double scale, double peak);

// L2 norm of g (n), summed in fixed chunks in a fixed order (thread-count independent).
double global_norm(const real *g, size_t n);
// Scales g so its norm is at most max_norm (no-op when max_norm <= 0). Returns the norm before.
double clip_global_norm(real *g, size_t n, double max_norm);

#endif
