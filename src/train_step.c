// train_step.c — one training step.
#include "train_step.h"
#include "rng.h"
#include "util.h"

void train_step(StepStats *out, StepTimes *times, Model *m, Acts *acts, Optimizer *opt, const Batch *b,
                const Config *c, long step) {
    double t0 = times ? now_seconds() : 0, fwd = 0;
    // The dropout masks of update s are keyed by s: a resumed run draws the same ones.
    uint64_t key = rng_key((uint64_t)c->seed, 0xD50, (uint64_t)step + 1);
    model_zero_grads(m);
    out->loss = model_forward_backward(m, acts, b, (real)c->label_smoothing, key, (real)(1.0 / (double)b->ntok),
                                       &out->nll, times ? &fwd : NULL);
    double t1 = times ? now_seconds() : 0;
    // (A gradient all-reduce across processes would go here, before the norm.)
    ParamSet p = model_param_set(m);
    out->gnorm = global_norm(p.grad, p.n);
    double t2 = times ? now_seconds() : 0;
    out->lr = lr_at(c->lr_schedule, step + 1, c->d_model, c->warmup_steps, c->lr_scale, c->lr);
    optim_step(opt, &p, out->lr, clip_factor(out->gnorm, c->clip_norm));
    if (times) {
        double t3 = now_seconds();
        times->forward = fwd;
        times->backward = t1 - t0 - fwd;
        times->norm = t2 - t1;
        times->update = t3 - t2;
    }
}
