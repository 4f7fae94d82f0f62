// optim/optim.c — the optimizers (Adam with bias correction, SGD with momentum),
// schedules, clipping. An optimizer is a row of KINDS: its name, the names of
// its state buffers and its update; a new one is a row and an update here plus
// its config key.
#include "optim/optim.h"
#include "kernels/par.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// The update runs over each tensor in chunks of this many reals: one parallel
// region for all tensors, a fixed split whatever the thread count.
enum { CHUNK = 4096 };

// One chunk of a tensor. restrict lets the compiler vectorise it; lanes are
// independent, so the bits are those of the scalar loop.
static void adam_update(real *restrict p, const real *restrict g, real *restrict mm, real *restrict vv,
                        size_t n, real gmul, real b1, real b2, real eps, real step_size, real inv_sqrt_bc2,
                        real decay) {
    for (size_t i = 0; i < n; i++) {
        real gi = g[i] * gmul;
        mm[i] = b1 * mm[i] + (1 - b1) * gi;
        vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
        p[i] -= step_size * mm[i] / (sqrt(vv[i]) * inv_sqrt_bc2 + eps) + decay * p[i];
    }
}

static void adam_step(Optimizer *o, const ParamSet *ps, double lr, real grad_mul) {
    const OptimSettings *s = &o->set;
    double bc1 = 1 - pow(s->beta1, (double)o->step), bc2 = 1 - pow(s->beta2, (double)o->step);
    real b1 = (real)s->beta1, b2 = (real)s->beta2, eps = (real)s->eps;
    real step_size = (real)(lr / bc1), inv_sqrt_bc2 = (real)(1 / sqrt(bc2));
    real *m = o->state[0], *v = o->state[1];
    #pragma omp parallel if (ps->n > par_min_elems)
    for (size_t t = 0; t < ps->ntensors; t++) {
        const Tensor *ten = &ps->tensors[t];
        size_t off = ten->offset, n = ten->rows * ten->cols;
        real decay = ten->decay ? (real)(lr * s->weight_decay) : 0;
        #pragma omp for schedule(dynamic, 1) nowait
        for (size_t c = 0; c < n; c += CHUNK)
            adam_update(ps->value + off + c, ps->grad + off + c, m + off + c, v + off + c,
                        n - c < CHUNK ? n - c : CHUNK, grad_mul, b1, b2, eps, step_size, inv_sqrt_bc2, decay);
    }
}

// Heavy-ball momentum without dampening (PyTorch's SGD): b = mu*b + g; p -= lr*b.
static void sgd_update(real *restrict p, const real *restrict g, real *restrict b, size_t n, real gmul, real mu,
                       real lr, real decay) {
    for (size_t i = 0; i < n; i++) {
        b[i] = mu * b[i] + g[i] * gmul;
        p[i] -= lr * b[i] + decay * p[i];
    }
}

static void sgd_momentum_step(Optimizer *o, const ParamSet *ps, double lr, real grad_mul) {
    real mu = (real)o->set.momentum, rlr = (real)lr, *buf = o->state[0];
    #pragma omp parallel if (ps->n > par_min_elems)
    for (size_t t = 0; t < ps->ntensors; t++) {
        const Tensor *ten = &ps->tensors[t];
        size_t off = ten->offset, n = ten->rows * ten->cols;
        real decay = ten->decay ? (real)(lr * o->set.weight_decay) : 0;
        #pragma omp for schedule(dynamic, 1) nowait
        for (size_t c = 0; c < n; c += CHUNK)
            sgd_update(ps->value + off + c, ps->grad + off + c, buf + off + c, n - c < CHUNK ? n - c : CHUNK,
                       grad_mul, mu, rlr, decay);
    }
}

typedef struct {
    const char *name;                          // train.optimizer's value
    const char *state[OPTIM_MAX_STATE];        // buffer names = checkpoint sections
    void (*step)(Optimizer *o, const ParamSet *ps, double lr, real grad_mul);  // after o->step++
} Kind;

// Indexed by the config's enum. Adam's sections keep the names they always
// had, so old checkpoints load.
static const Kind KINDS[] = {
    [OPT_ADAM] = {"adam", {"adam_m", "adam_v"}, adam_step},
    [OPT_SGD_MOMENTUM] = {"sgd_momentum", {"momentum"}, sgd_momentum_step},
};

// The one place the optimizer's config keys are read.
static OptimSettings settings_from(const Config *c) {
    OptimSettings s = {c->optimizer, c->beta1, c->beta2, c->eps, c->momentum, c->weight_decay};
    return s;
}

void optim_init(Optimizer *o, const Config *c, size_t n) {
    memset(o, 0, sizeof *o);
    o->set = settings_from(c);
    const Kind *k = &KINDS[o->set.type];
    o->name = k->name;
    o->n = n;
    while (o->nstate < OPTIM_MAX_STATE && k->state[o->nstate]) {
        o->state_name[o->nstate] = k->state[o->nstate];
        o->state[o->nstate] = xcalloc(n, sizeof(real));
        o->nstate++;
    }
    o->ema = -1;
    o->ema_decay = c->ema_decay;
    if (c->ema_decay > 0) {
        o->ema = o->nstate;
        o->state_name[o->nstate] = "ema";
        o->state[o->nstate++] = xcalloc(n, sizeof(real));
    }
}

// ema = d*ema + (1-d)*p (ema = p after the first update), element by element:
// the same bits for any thread count.
static void ema_update(Optimizer *o, const ParamSet *p) {
    real *e = o->state[o->ema];
    double t = (double)o->step, warm = (1 + t) / (10 + t);
    real d = (real)(o->step <= 1 ? 0 : fmin(o->ema_decay, warm)), keep = 1 - d;
    #pragma omp parallel for schedule(dynamic, 16384) if (p->n > par_min_elems)
    for (size_t i = 0; i < p->n; i++) e[i] = d * e[i] + keep * p->value[i];
}

int optim_configure(Optimizer *o, const Config *c, const char *what) {
    OptimSettings s = settings_from(c);
    if (s.type != o->set.type)
        return err_set(NMT_ERR_INPUT, "%s: train.optimizer: the checkpoint holds the state of \"%s\", the config asks for "
                       "\"%s\" (a run keeps its optimizer; start a new run to change it)", what, o->name, KINDS[s.type].name);
    if ((c->ema_decay > 0) != (o->ema >= 0))
        return err_set(NMT_ERR_INPUT, "%s: train.ema_decay: the run %s a moving average of the weights and the config "
                       "asks %s (start a new run to change it)", what, o->ema >= 0 ? "keeps" : "keeps no",
                       c->ema_decay > 0 ? "for one" : "for none");
    o->set = s;
    o->ema_decay = c->ema_decay;
    return NMT_OK;
}

void optim_step(Optimizer *o, const ParamSet *p, double lr, real grad_mul) {
    o->step++;
    KINDS[o->set.type].step(o, p, lr, grad_mul);
    if (o->ema >= 0) ema_update(o, p);
}

void optim_free(Optimizer *o) {
    for (int i = 0; i < o->nstate; i++) free(o->state[i]);
    memset(o, 0, sizeof *o);
}

double lr_at(const LrSchedule *l, long step) {
    double s = step < 1 ? 1 : (double)step, w = l->warmup;
    if (l->kind == LR_NOAM) return l->scale / sqrt(l->d_model) * fmin(1 / sqrt(s), s * pow(w, -1.5));
    if (l->kind == LR_INVSQRT) return l->peak * fmin(s / w, sqrt(w / s));
    if (s <= w) return l->peak * s / w;
    double span = (double)l->total + 1 - w, left = fmax(0, span - (s - w)) / span;  // 1 -> 0
    if (l->kind == LR_COSINE) return l->peak * (1 - cos(M_PI * left)) / 2;
    return l->peak * left;
}

#define NORM_MAX_CHUNKS 4096

double global_norm(const real *g, size_t n) {
    // The chunk size depends only on n, so the summation order is fixed.
    size_t chunk = (n + NORM_MAX_CHUNKS - 1) / NORM_MAX_CHUNKS;
    if (chunk < 16384) chunk = 16384;
    size_t nchunks = (n + chunk - 1) / chunk;
    double part[NORM_MAX_CHUNKS];
    #pragma omp parallel for schedule(dynamic, 1) if (n > par_min_elems)
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        // Eight running sums (independent chains, which the compiler may
        // vectorise), added up in a fixed order.
        double s8[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int j = 0; j < 8; j++) s8[j] += (double)g[i + j] * (double)g[i + j];
        double s = 0;
        for (; i < hi; i++) s += (double)g[i] * (double)g[i];
        for (int j = 0; j < 8; j++) s += s8[j];
        part[c] = s;
    }
    double total = 0;
    for (size_t c = 0; c < nchunks; c++) total += part[c];
    return sqrt(total);
}

real clip_factor(double norm, double max_norm) {
    return max_norm > 0 && norm > max_norm ? (real)(max_norm / (norm + 1e-6)) : 1;
}
