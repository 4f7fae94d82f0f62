// train/step.c — one training step over its micro-batches.
#include "train/step.h"
#include "common/rng.h"
#include "kernels/par.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

uint64_t step_dropout_key(const Config *c, long step, int j) {
    uint64_t key = rng_key((uint64_t)c->seed, 0xD50, (uint64_t)step + 1);
    return j == 0 ? key : rng_key(key, 0x4D42, (uint64_t)j);
}

void step_accum_free(StepAccum *u) {
    free(u->scratch);
    arrfree(u->ready);
    arrfree(u->sums);
    arrfree(u->all_sums);
    memset(u, 0, sizeof *u);
}

void step_begin(StepAccum *u, long step, size_t step_ntok, int first, int local, Comm *comm) {
    u->step = step;
    u->ntok = step_ntok;
    u->next = first;
    u->count = 0;
    u->local = local;
    u->comm = comm && comm->size > 1 ? comm : NULL;
    u->summing = 0;
    u->reduce0 = u->comm ? u->comm->reduce_seconds : 0;
    u->fwd_seconds = u->bwd_seconds = 0;
    arrsetlen(u->sums, 0);
}

static void add_into(real *restrict dst, const real *restrict src, size_t n) {
#pragma omp parallel for schedule(dynamic, 16384) if (n > par_min_elems)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

// A part of the step's last micro-batch's gradient is final: add it to the
// sum of the earlier ones and send it on its way.
static void part_ready(void *arg, size_t off, size_t n) {
    StepAccum *u = arg;
    if (u->count > 0) add_into(u->grads + off, u->scratch + off, n);
    comm_sum_piece(u->comm, off, n);
    arrpush(u->ready, ((ParamSpan){off, n}));
}

static int by_offset(const void *a, const void *b) {
    size_t x = ((const ParamSpan *)a)->off, y = ((const ParamSpan *)b)->off;
    return (x > y) - (x < y);
}

// After the backward pass: the parts never announced (the final norms).
static void rest_ready(StepAccum *u, size_t nparams) {
    qsort(u->ready, arrlenu(u->ready), sizeof *u->ready, by_offset);
    size_t at = 0, n = arrlenu(u->ready);
    for (size_t i = 0; i <= n; i++) {
        size_t end = i < n ? u->ready[i].off : nparams;
        if (end > at) {
            if (u->count > 0) add_into(u->grads + at, u->scratch + at, end - at);
            comm_sum_piece(u->comm, at, end - at);
        }
        if (i < n && u->ready[i].off + u->ready[i].n > at) at = u->ready[i].off + u->ready[i].n;
    }
}

void step_micro(StepAccum *u, Model *m, Acts *acts, const Batch *b, const Config *c) {
    double t0 = now_seconds(), fwd = 0, nll;
    u->grads = m->grads;
    // The first micro-batch's gradient goes straight into m->grads; each later
    // one is computed alone into the scratch buffer and then added: the same
    // additions, in the same order, as the sum over processes makes.
    GradSink sink = {m->grads, NULL, NULL};
    if (u->count > 0) {
        if (!u->scratch) u->scratch = xmalloc(m->nparams * sizeof(real));
        sink.dst = u->scratch;
    }
    int overlap = u->comm && !u->no_overlap && u->count + 1 == u->local;
    if (overlap) {
        comm_sum_begin(u->comm, u->grads);
        u->summing = 1;
        arrsetlen(u->ready, 0);
        sink.ready = part_ready;
        sink.arg = u;
    }
    model_zero_grads(m, sink.dst);
    double loss = model_forward_backward(m, acts, b, (real)c->label_smoothing, step_dropout_key(c, u->step, u->next),
                                         (real)(1.0 / (double)u->ntok), &sink, &nll, &fwd);
    if (overlap) rest_ready(u, m->nparams);
    else if (u->count > 0) add_into(u->grads, u->scratch, m->nparams);
    arrpush(u->sums, loss);
    arrpush(u->sums, nll);
    u->next++;
    u->count++;
    u->fwd_seconds += fwd;
    u->bwd_seconds += now_seconds() - t0 - fwd;
}

void step_end(StepAccum *u, StepStats *out, StepTimes *times, Model *m, Optimizer *opt, const Config *c) {
    Comm *comm = u->comm;
    int procs = comm ? comm->size : 1;
    if (comm && u->summing) comm_sum_end(comm);
    else if (comm) comm_sum_ordered(comm, m->grads, m->nparams);
    // The losses, summed in micro-batch order whatever the layout.
    arrsetlen(u->all_sums, (size_t)procs * arrlenu(u->sums));
    if (comm) comm_allgather_doubles(comm, u->sums, arrlenu(u->sums), u->all_sums);
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
    LrSchedule ls = {c->lr_schedule, c->d_model, c->warmup_steps, c->lr_scale, c->lr, c->max_steps};
    out->lr = lr_at(&ls, u->step + 1);
    optim_step(opt, &p, out->lr, clip_factor(out->gnorm, c->clip_norm));
    if (times) {
        times->forward = u->fwd_seconds;
        times->backward = u->bwd_seconds;
        // The time the sums over processes held this process up (in the
        // backward pass when they overlap it: counted there too).
        times->reduce = comm ? comm->reduce_seconds - u->reduce0 : 0;
        times->norm = t2 - t1;
        times->update = now_seconds() - t2;
    }
}

void train_step(StepStats *out, StepTimes *times, Model *m, Acts *acts, Optimizer *opt, const Batch *b,
                const Config *c, long step) {
    StepAccum u = {0};
    step_begin(&u, step, b->ntok, 0, 1, NULL);
    step_micro(&u, m, acts, b, c);
    step_end(&u, out, times, m, opt, c);
    step_accum_free(&u);
}
