// train_step.c — one training step over its micro-batches.
#include "train_step.h"
#include "rng.h"
#include "util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

uint64_t step_dropout_key(const Config *c, long step, int j) {
    uint64_t key = rng_key((uint64_t)c->seed, 0xD50, (uint64_t)step + 1);
    return j == 0 ? key : rng_key(key, 0x4D42, (uint64_t)j);
}

void step_accum_free(StepAccum *u) {
    free(u->scratch);
    arrfree(u->sums);
    arrfree(u->all_sums);
    memset(u, 0, sizeof *u);
}

void step_begin(StepAccum *u, long step, size_t step_ntok, int first) {
    u->step = step;
    u->ntok = step_ntok;
    u->next = first;
    u->count = 0;
    u->fwd_seconds = u->bwd_seconds = 0;
    arrsetlen(u->sums, 0);
}

void step_micro(StepAccum *u, Model *m, Acts *acts, const Batch *b, const Config *c) {
    double t0 = now_seconds(), fwd = 0, nll;
    real *grads = m->grads;
    // The first micro-batch's gradient goes straight into m->grads; each later
    // one is computed alone (the model's backward accumulates into m->grads,
    // pointed at the scratch buffer meanwhile) and then added: the same
    // additions, in the same order, as the sum over processes makes.
    if (u->count > 0) {
        if (!u->scratch) u->scratch = xmalloc(m->nparams * sizeof(real));
        m->grads = u->scratch;
    }
    model_zero_grads(m);
    double loss = model_forward_backward(m, acts, b, (real)c->label_smoothing, step_dropout_key(c, u->step, u->next),
                                         (real)(1.0 / (double)u->ntok), &nll, &fwd);
    if (u->count > 0) {
        m->grads = grads;
        const real *g = u->scratch;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m->nparams; i++) grads[i] += g[i];
    }
    arrpush(u->sums, loss);
    arrpush(u->sums, nll);
    u->next++;
    u->count++;
    u->fwd_seconds += fwd;
    u->bwd_seconds += now_seconds() - t0 - fwd;
}

void step_end(StepAccum *u, StepStats *out, StepTimes *times, Model *m, Optimizer *opt, const Config *c, Comm *comm) {
    double t0 = now_seconds();
    int procs = comm ? comm->size : 1;
    if (procs > 1) comm_sum_ordered(comm, m->grads, m->nparams);
    // The losses, summed in micro-batch order whatever the layout.
    arrsetlen(u->all_sums, (size_t)procs * arrlenu(u->sums));
    if (procs > 1) comm_allgather_doubles(comm, u->sums, arrlenu(u->sums), u->all_sums);
    else memcpy(u->all_sums, u->sums, arrlenu(u->sums) * sizeof(double));
    out->loss = out->nll = 0;
    for (size_t i = 0; i < arrlenu(u->all_sums); i += 2) {
        out->loss += u->all_sums[i];
        out->nll += u->all_sums[i + 1];
    }
    double t1 = now_seconds();
    ParamSet p = model_param_set(m);
    out->gnorm = global_norm(p.grad, p.n);
    double t2 = now_seconds();
    out->lr = lr_at(c->lr_schedule, u->step + 1, c->d_model, c->warmup_steps, c->lr_scale, c->lr);
    optim_step(opt, &p, out->lr, clip_factor(out->gnorm, c->clip_norm));
    if (times) {
        times->forward = u->fwd_seconds;
        times->backward = u->bwd_seconds;
        times->reduce = t1 - t0;
        times->norm = t2 - t1;
        times->update = now_seconds() - t2;
    }
}

void train_step(StepStats *out, StepTimes *times, Model *m, Acts *acts, Optimizer *opt, const Batch *b,
                const Config *c, long step) {
    StepAccum u = {0};
    step_begin(&u, step, b->ntok, 0);
    step_micro(&u, m, acts, b, c);
    step_end(&u, out, times, m, opt, c, NULL);
    step_accum_free(&u);
}
