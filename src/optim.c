// optim.c — Adam with bias correction, schedules, clipping.
#include "optim.h"
#include "util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

void adam_init(Adam *a, size_t n, double beta1, double beta2, double eps, double weight_decay) {
    memset(a, 0, sizeof *a);
    a->m = xcalloc(n, sizeof(real));
    a->v = xcalloc(n, sizeof(real));
    a->n = n;
    a->beta1 = beta1;
    a->beta2 = beta2;
    a->eps = eps;
    a->weight_decay = weight_decay;
}

void adam_free(Adam *a) {
    free(a->m);
    free(a->v);
    memset(a, 0, sizeof *a);
}

// One tensor's update. restrict lets the compiler vectorise it; lanes are
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

void adam_step(Adam *a, Model *m, double lr, real grad_mul) {
    a->step++;
    double bc1 = 1 - pow(a->beta1, (double)a->step), bc2 = 1 - pow(a->beta2, (double)a->step);
    real b1 = (real)a->beta1, b2 = (real)a->beta2, eps = (real)a->eps;
    real step_size = (real)(lr / bc1), inv_sqrt_bc2 = (real)(1 / sqrt(bc2));
    // One parallel region for all tensors; each is cut into fixed chunks.
    enum { CHUNK = 4096 };
    ptrdiff_t nt = arrlen(m->tensors);
    #pragma omp parallel
    for (ptrdiff_t t = 0; t < nt; t++) {
        const Tensor *ten = &m->tensors[t];
        size_t off = ten->offset, n = ten->rows * ten->cols;
        real decay = ten->decay ? (real)(lr * a->weight_decay) : 0;
        #pragma omp for schedule(static) nowait
        for (size_t c = 0; c < n; c += CHUNK)
            adam_update(m->params + off + c, m->grads + off + c, a->m + off + c, a->v + off + c,
                        n - c < CHUNK ? n - c : CHUNK, grad_mul, b1, b2, eps, step_size, inv_sqrt_bc2, decay);
    }
}

double lr_at(int schedule, long step, double d_model, double warmup, double scale, double peak) {
    double s = step < 1 ? 1 : (double)step;
    if (schedule == 0) return scale / sqrt(d_model) * fmin(1 / sqrt(s), s * pow(warmup, -1.5));
    return peak * fmin(s / warmup, sqrt(warmup / s));
}

#define NORM_MAX_CHUNKS 4096

double global_norm(const real *g, size_t n) {
    // The chunk size depends only on n, so the summation order is fixed.
    size_t chunk = (n + NORM_MAX_CHUNKS - 1) / NORM_MAX_CHUNKS;
    if (chunk < 16384) chunk = 16384;
    size_t nchunks = (n + chunk - 1) / chunk;
    double part[NORM_MAX_CHUNKS];
    #pragma omp parallel for schedule(static)
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
