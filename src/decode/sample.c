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

// The order drawn in: larger score first, then the lower index (a total
// order, so any way of finding the first c gives the same ones).
static const double *sort_lp;
#pragma omp threadprivate(sort_lp)
static int ahead(const double *lp, int i, int j) {
    return lp[i] > lp[j] || (lp[i] == lp[j] && i < j);
}
static int by_score(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    return ahead(sort_lp, i, j) ? -1 : ahead(sort_lp, j, i);
}

// Moves the c first of order[0..n) (in that order) to order[0..c), sorted;
// the rest follow in no order. Quickselect, then a sort of the c alone: a
// nucleus or a top-k is usually a few dozen tokens of thousands.
static void first_sorted(const double *lp, int *order, size_t n, size_t c) {
    size_t lo = 0, hi = n;  // the c-th is within [lo, hi)
    while (hi - lo > 1) {
        int a = order[lo], b = order[lo + (hi - lo) / 2], d = order[hi - 1], pivot;
        // the median of three: a stable choice whatever the scores
        if (ahead(lp, a, b)) pivot = ahead(lp, b, d) ? b : (ahead(lp, a, d) ? d : a);
        else pivot = ahead(lp, a, d) ? a : (ahead(lp, b, d) ? d : b);
        size_t i = lo, j = hi;  // [lo, i): ahead of the pivot; [j, hi): behind it
        for (size_t k = lo; k < j;) {
            int x = order[k];
            if (ahead(lp, x, pivot)) {
                order[k++] = order[i];
                order[i++] = x;
            } else if (ahead(lp, pivot, x)) {
                order[k] = order[--j];
                order[j] = x;
            } else {
                k++;
            }
        }
        if (c <= i) hi = i;        // the c first are among those ahead
        else if (c <= j) break;    // the pivot's place: done
        else lo = j;
    }
    sort_lp = lp;
    qsort(order, c, sizeof *order, by_score);
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
    size_t keep = rule->topk > 0 && (size_t)rule->topk < n ? (size_t)rule->topk : n;
    double top = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (lp[i] > top) top = lp[i];
    if (keep == n && rule->topp >= 1) {  // the whole distribution, in index order: no sorting
        double total = 0;
        for (size_t i = 0; i < n; i++) total += s->p[i] = exp((lp[i] - top) / rule->temperature);
        return walk(s->p, s->order, n, u * total);
    }
    // The top-k (sorted), then the nucleus within it: the fewest most likely
    // holding topp of the top-k's probability.
    size_t sorted = keep < n ? keep : (n < 64 ? n : 64);
    first_sorted(lp, s->order, n, sorted);
    double total = 0;  // what topp is a share of: the top-k's, or every token's
    for (size_t j = 0; rule->topp < 1 && j < keep; j++)
        total += exp((lp[keep < n ? (size_t)s->order[j] : j] - top) / rule->temperature);
    double run = 0;
    size_t j = 0;
    for (;;) {
        for (; j < sorted; j++) {
            run += s->p[j] = exp((lp[s->order[j]] - top) / rule->temperature);
            if (rule->topp < 1 && run >= rule->topp * total) return walk(s->p, s->order, j + 1, u * run);
        }
        if (sorted == keep) return walk(s->p, s->order, keep, u * run);
        size_t more = sorted * 4 < keep ? sorted * 4 : keep;  // the nucleus is wider: sort further
        first_sorted(lp, s->order, n, more);
        sorted = more;
    }
}
