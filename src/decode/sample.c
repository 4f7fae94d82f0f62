// decode/sample.c — one token drawn from a distribution cut by top-k and top-p.
#include "decode/sample.h"
#include "common/rng.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>

void sample_scratch_reserve(SampleScratch *s, size_t n) {
    if (n <= s->cap) return;
    free(s->p);
    free(s->order);
    s->p = xmalloc(n * sizeof *s->p);
    s->order = xmalloc(n * sizeof *s->order);
    s->cap = n;
}

void sample_scratch_free(SampleScratch *s) {
    free(s->p);
    free(s->order);
    *s = (SampleScratch){NULL, NULL, 0};
}

double sample_uniform(uint64_t key, uint64_t index) {
    return (double)(rng_u64(key, index) >> 11) * (1.0 / 9007199254740992.0);
}

// Sorting order: larger score first, then the lower index.
static const double *sort_lp;
#pragma omp threadprivate(sort_lp)
static int by_score(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_lp[i] != sort_lp[j]) return sort_lp[i] > sort_lp[j] ? -1 : 1;
    return (i > j) - (i < j);
}

// The first of order[0..n) whose running sum of p passes target (the last
// one with any probability when rounding leaves target unreached).
static size_t walk(const double *p, const int *order, size_t n, double target) {
    double run = 0;
    size_t last = 0;
    for (size_t j = 0; j < n; j++) {
        if (p[j] <= 0) continue;
        run += p[j];
        last = j;
        if (run > target) break;
    }
    return (size_t)order[last];
}

size_t sample_pick(const double *lp, size_t n, const SampleRule *rule, double u, SampleScratch *s) {
    sample_scratch_reserve(s, n);
    for (size_t i = 0; i < n; i++) s->order[i] = (int)i;
    size_t keep = n;
    int cut = (rule->topk > 0 && (size_t)rule->topk < n) || rule->topp < 1;
    if (cut) {  // most likely first (index order otherwise: no sort needed)
        sort_lp = lp;
        qsort(s->order, n, sizeof *s->order, by_score);
        if (rule->topk > 0 && (size_t)rule->topk < n) keep = (size_t)rule->topk;
    }
    double top = -INFINITY;
    for (size_t j = 0; j < keep; j++)
        if (lp[s->order[j]] > top) top = lp[s->order[j]];
    double total = 0;
    for (size_t j = 0; j < keep; j++) {
        s->p[j] = exp((lp[s->order[j]] - top) / rule->temperature);
        total += s->p[j];
    }
    if (rule->topp < 1) {  // the nucleus: the fewest most likely holding topp
        double run = 0;
        for (size_t j = 0; j < keep; j++) {
            run += s->p[j];
            if (run >= rule->topp * total) {
                keep = j + 1;
                break;
            }
        }
        total = run;
    }
    return walk(s->p, s->order, keep, u * total);
}
