// test_sample.c — drawing a token: over a fine grid of uniform draws each
// index comes up in proportion to its probability under the rule
// (temperature, top-k, top-p), and never outside the rule's set.
#include <criterion/criterion.h>
#include <math.h>

#include "decode/sample.h"

enum { N = 6, BIG = 700, GRID = 200000 };

// The rule's distribution over lp[0..N), worked out directly (a full sort).
static void expected(const double *lp, int N, const SampleRule *r, double *p) {
    int order[BIG];
    for (int i = 0; i < N; i++) order[i] = i;
    for (int i = 1; i < N; i++)  // most likely first, lower index on ties
        for (int j = i; j > 0 && (lp[order[j]] > lp[order[j - 1]] ||
                                  (lp[order[j]] == lp[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int keep = r->topk > 0 && r->topk < N ? r->topk : N;
    double q[BIG] = {0}, total = 0;
    for (int j = 0; j < keep; j++) total += q[j] = exp(lp[order[j]] / r->temperature);
    double run = 0;
    int nucleus = keep;
    for (int j = 0; j < keep; j++) {
        run += q[j];
        if (run >= r->topp * total) {
            nucleus = j + 1;
            break;
        }
    }
    double sum = 0;
    for (int j = 0; j < nucleus; j++) sum += q[j];
    for (int i = 0; i < N; i++) p[i] = 0;
    for (int j = 0; j < nucleus; j++) p[order[j]] = q[j] / sum;
}

static void expect_frequencies_of(const double *lp, int N, const SampleRule *r) {
    double p[BIG];
    expected(lp, N, r, p);
    SampleScratch s = {0};
    int count[BIG] = {0};
    for (int g = 0; g < GRID; g++) count[sample_pick(lp, (size_t)N, r, (g + 0.5) / GRID, &s)]++;
    for (int i = 0; i < N; i++) {
        if (p[i] == 0) cr_assert_eq(count[i], 0, "topk %d topp %g: index %d outside the set drawn %d times", r->topk,
                                    r->topp, i, count[i]);
        cr_assert_float_eq((double)count[i] / GRID, p[i], 2.0 / GRID, "topk %d topp %g T %g: index %d drawn %.5f, want %.5f",
                           r->topk, r->topp, r->temperature, i, (double)count[i] / GRID, p[i]);
    }
    sample_scratch_free(&s);
}

static void expect_frequencies(const SampleRule *r) {
    const double lp[N] = {-2.0, -0.5, -1.2, -3.5, -0.5, -1.9};
    expect_frequencies_of(lp, N, r);
}

Test(sample, draws_follow_the_distribution) {
    expect_frequencies(&(SampleRule){0, 1, 1});
    expect_frequencies(&(SampleRule){0, 1, 0.5});
    expect_frequencies(&(SampleRule){0, 1, 3});
}

Test(sample, top_k_keeps_the_k_most_likely) {
    expect_frequencies(&(SampleRule){1, 1, 1});
    expect_frequencies(&(SampleRule){3, 1, 1});  // a tie at the top: both kept
    expect_frequencies(&(SampleRule){4, 1, 2});
}

Test(sample, top_p_keeps_the_fewest_holding_p) {
    expect_frequencies(&(SampleRule){0, 0.5, 1});
    expect_frequencies(&(SampleRule){0, 0.9, 1});
    expect_frequencies(&(SampleRule){4, 0.7, 1.5});
    expect_frequencies(&(SampleRule){0, 1e-9, 1});  // the most likely alone
}

// A vocabulary of hundreds with ties, flat enough that the nucleus and the
// top-k reach past the first tokens sorted (the sort goes on in steps).
Test(sample, wide_nucleus_and_top_k_over_a_large_vocabulary) {
    double lp[BIG];
    for (int i = 0; i < BIG; i++) lp[i] = -0.01 * (double)((i * 7919) % 301);  // each value about twice
    expect_frequencies_of(lp, BIG, &(SampleRule){0, 0.9, 1});
    expect_frequencies_of(lp, BIG, &(SampleRule){0, 0.3, 2});
    expect_frequencies_of(lp, BIG, &(SampleRule){300, 1, 1});
    expect_frequencies_of(lp, BIG, &(SampleRule){500, 0.8, 0.7});
    expect_frequencies_of(lp, BIG, &(SampleRule){40, 1, 1});
    expect_frequencies_of(lp, BIG, &(SampleRule){0, 1, 1});
}

// Uniform draws: in [0, 1), and a function of (key, index) alone.
Test(sample, uniform_draws_are_in_range_and_repeatable) {
    double sum = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        double u = sample_uniform(42, i);
        cr_assert(u >= 0 && u < 1);
        cr_assert_eq(u, sample_uniform(42, i));
        sum += u;
    }
    cr_assert_float_eq(sum / 100000, 0.5, 0.01);
    cr_assert_neq(sample_uniform(42, 0), sample_uniform(43, 0));
}
