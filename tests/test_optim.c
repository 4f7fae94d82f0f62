// test_optim.c — the optimizers against the textbook formulas computed in
// double, the learning-rate schedules, the gradient norm and clipping factor,
// optimizer state in checkpoints (SGD's momentum saved and loaded, a resume
// with another optimizer refused), and train_step against its pieces.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "model/shape.h"
#include "optim/optim.h"
#include "kernels/par.h"
#include "common/rng.h"
#include "train/train.h"
#include "train/step.h"
#include "common/util.h"
#include "copy_corpus.h"

// ---------------------------------------------------------------- a tiny parameter set

// Two tensors laid out as a model lays them out: a (3, 1500) weight with
// weight decay, which crosses the update's 4096-real chunks, and a 7-real
// bias without, 16-aligned; the gaps stay zero.
enum { W_ROWS = 3, W_COLS = 1500, B_OFF = 4512, B_N = 7, SET_N = 4528, STEPS = 4 };
static const Tensor TENSORS[] = {{"w", 0, W_ROWS, W_COLS, 1, 0.1f}, {"b", B_OFF, 1, B_N, 0, 0}};

// 1 if element i belongs to a tensor; *decay gets that tensor's flag.
static int in_tensor(size_t i, int *decay) {
    *decay = i < (size_t)W_ROWS * W_COLS;
    return *decay || (i >= B_OFF && i < B_OFF + B_N);
}

static ParamSet make_set(void) {
    ParamSet p = {xcalloc(SET_N, sizeof(real)), xcalloc(SET_N, sizeof(real)), SET_N, TENSORS, 2};
    int d;
    for (size_t i = 0; i < SET_N; i++)
        if (in_tensor(i, &d)) p.value[i] = (real)(sin(0.37 * (double)i) + 0.5);
    return p;
}

// Step k's gradient: magnitudes from 1e-3 to 1, so that epsilon matters for some.
static void set_grads(ParamSet *p, int k) {
    int d;
    for (size_t i = 0; i < SET_N; i++)
        p->grad[i] = in_tensor(i, &d) ? (real)(cos(0.11 * (double)i + k) * pow(10, -(double)(i % 4))) : 0;
}

static const double LR[STEPS] = {1e-2, 3e-2, 2e-2, 5e-3};
static const real GMUL[STEPS] = {0.5f, 1.0f, 0.25f, 0.75f};  // clipping factors; exact in float

// Config with the optimizer's keys set; everything else default.
static void optim_config(Config *c, int type, double wd) {
    config_defaults(c);
    c->optimizer = type;
    c->beta1 = 0.9;
    c->beta2 = 0.98;
    c->eps = 1e-3;
    c->momentum = 0.9;
    c->weight_decay = wd;
}

// The largest |a - b| over the parameter set.
static double max_diff(const real *a, const double *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

// Tolerance for the parameters after STEPS = 4 updates, |p| < 1.5. Each step
// rounds p to float (half an ulp: <= 1.2e-7); the hyperparameters as floats
// (1 - 0.9f and 1 - 0.98f are 2.4e-7 and 9.5e-7 off) and the float
// arithmetic move an update (< 0.06 here) by < 1e-6 relative, < 6e-8. Four
// steps: < 7.2e-7 (seen: 2.3e-7). A wrong formula (decay on the bias, no bias
// correction, epsilon outside it, the clipping factor ignored) moves some
// parameter by 1e-5 or more.
#define P_TOL 1e-6

Test(optim, adam_matches_the_textbook_formula) {
    Config c;
    optim_config(&c, OPT_ADAM, 0.1);
    ParamSet p = make_set();
    Optimizer o;
    optim_init(&o, &c, p.n);
    cr_assert_str_eq(o.name, "adam");
    cr_assert_eq(o.nstate, 2);
    cr_assert_str_eq(o.state_name[0], "adam_m");
    cr_assert_str_eq(o.state_name[1], "adam_v");
    double *ref = xcalloc(SET_N, sizeof *ref), *m = xcalloc(SET_N, sizeof *m), *v = xcalloc(SET_N, sizeof *v);
    double *mabs = xcalloc(SET_N, sizeof *mabs);   // m's terms without their signs (what rounding scales with)
    for (size_t i = 0; i < SET_N; i++) ref[i] = p.value[i];
    double moved = 0;
    for (int k = 0; k < STEPS; k++) {
        set_grads(&p, k);
        int t = k + 1, d;
        for (size_t i = 0; i < SET_N; i++) {
            if (!in_tensor(i, &d)) continue;
            double g = (double)p.grad[i] * GMUL[k];
            m[i] = 0.9 * m[i] + 0.1 * g;
            mabs[i] = 0.9 * mabs[i] + 0.1 * fabs(g);
            v[i] = 0.98 * v[i] + 0.02 * g * g;
            double mhat = m[i] / (1 - pow(0.9, t)), vhat = v[i] / (1 - pow(0.98, t));
            double upd = LR[k] * mhat / (sqrt(vhat) + 1e-3) + (d ? LR[k] * 0.1 * ref[i] : 0);
            ref[i] -= upd;
            moved = fmax(moved, fabs(upd));
        }
        optim_step(&o, &p, LR[k], GMUL[k]);
    }
    cr_assert_eq(o.step, STEPS);
    cr_assert_gt(moved, 1000 * P_TOL, "the updates are too small to tell anything");
    double err = max_diff(p.value, ref, SET_N);
    cr_assert_leq(err, P_TOL, "parameters differ from the formula by %g", err);
    double em = 0, ev = 0;
    for (size_t i = 0; i < SET_N; i++) {
        if (mabs[i] > 0) em = fmax(em, fabs((double)o.state[0][i] - m[i]) / mabs[i]);
        if (v[i] > 0) ev = fmax(ev, fabs((double)o.state[1][i] - v[i]) / v[i]);
    }
    // The moments, relative to the sizes of their terms (m's may cancel): the
    // float (1 - beta) above plus a few roundings (seen: 3.3e-7 and 1.1e-6).
    cr_assert_leq(em, 1e-6, "m differs by %g of its terms", em);
    cr_assert_leq(ev, 2e-6, "v differs by %g relative", ev);
    // The gaps between tensors are not parameters: they stay exactly zero.
    for (size_t i = (size_t)W_ROWS * W_COLS; i < B_OFF; i++) cr_assert_eq(p.value[i], 0);
    optim_free(&o);
    free(ref), free(m), free(v), free(mabs), free(p.value), free(p.grad);
    config_free(&c);
}

Test(optim, sgd_momentum_matches_the_textbook_formula) {
    Config c;
    optim_config(&c, OPT_SGD_MOMENTUM, 0.1);
    ParamSet p = make_set();
    Optimizer o;
    optim_init(&o, &c, p.n);
    cr_assert_str_eq(o.name, "sgd_momentum");
    cr_assert_eq(o.nstate, 1);
    cr_assert_str_eq(o.state_name[0], "momentum");
    double *ref = xcalloc(SET_N, sizeof *ref), *buf = xcalloc(SET_N, sizeof *buf);
    for (size_t i = 0; i < SET_N; i++) ref[i] = p.value[i];
    double moved = 0;
    for (int k = 0; k < STEPS; k++) {
        set_grads(&p, k);
        int d;
        for (size_t i = 0; i < SET_N; i++) {
            if (!in_tensor(i, &d)) continue;
            buf[i] = 0.9 * buf[i] + (double)p.grad[i] * GMUL[k];
            double upd = LR[k] * buf[i] + (d ? LR[k] * 0.1 * ref[i] : 0);
            ref[i] -= upd;
            moved = fmax(moved, fabs(upd));
        }
        optim_step(&o, &p, LR[k], GMUL[k]);
    }
    cr_assert_gt(moved, 1000 * P_TOL, "the updates are too small to tell anything");
    double err = max_diff(p.value, ref, SET_N);
    cr_assert_leq(err, P_TOL, "parameters differ from the formula by %g", err);
    // The buffer: |b| < 4, a few roundings per step and momentum 0.9f for 0.9.
    double berr = max_diff(o.state[0], buf, SET_N);
    // |b| < 3.5: a rounding per multiply and add per step, and 0.9f for 0.9
    // (2.6e-8 relative): < 4 x 3 x 2.4e-7 (seen: 2.6e-7).
    cr_assert_leq(berr, 3e-6, "momentum buffer differs by %g", berr);
    optim_free(&o);
    free(ref), free(buf), free(p.value), free(p.grad);
    config_free(&c);
}

// train.ema_decay: an "ema" buffer beside the optimizer's own, equal to the
// weights after the first update, then d*ema + (1-d)*p with d = min(decay,
// (1+t)/(10+t)), computed here the same way in the same precision.
Test(optim, ema_follows_its_formula) {
    Config c;
    optim_config(&c, OPT_ADAM, 0);
    c.ema_decay = 0.2;  // below the warm-up's 2/11 .. 5/14 from update 3 on: both branches
    ParamSet p = make_set();
    Optimizer o;
    optim_init(&o, &c, p.n);
    cr_assert_eq(o.nstate, 3);
    cr_assert_eq(o.ema, 2);
    cr_assert_str_eq(o.state_name[2], "ema");
    real *want = xcalloc(SET_N, sizeof *want);
    for (int k = 0; k < STEPS; k++) {
        set_grads(&p, k);
        optim_step(&o, &p, LR[k], GMUL[k]);
        double t = (double)(k + 1);
        real d = (real)(k == 0 ? 0 : fmin(0.2, (1 + t) / (10 + t))), keep = 1 - d;
        for (size_t i = 0; i < SET_N; i++) want[i] = d * want[i] + keep * p.value[i];
        cr_assert(memcmp(o.state[2], want, SET_N * sizeof(real)) == 0, "update %d", k + 1);
        if (k == 0) cr_assert(memcmp(o.state[2], p.value, SET_N * sizeof(real)) == 0, "not the weights after update 1");
    }
    Config off;
    optim_config(&off, OPT_ADAM, 0);
    cr_assert_eq(optim_configure(&o, &off, "run.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "train.ema_decay"), "%s", err_msg());
    optim_free(&o);
    free(want), free(p.value), free(p.grad);
    config_free(&c), config_free(&off);
}

Test(optim, configure_takes_new_settings_and_refuses_another_optimizer) {
    Config a, b;
    optim_config(&a, OPT_SGD_MOMENTUM, 0);
    optim_config(&b, OPT_SGD_MOMENTUM, 0.25);
    b.momentum = 0.5;
    Optimizer o;
    optim_init(&o, &a, 16);
    err_clear();
    cr_assert_eq(optim_configure(&o, &b, "x.ckpt"), NMT_OK);
    cr_assert_eq(o.set.momentum, 0.5);
    cr_assert_eq(o.set.weight_decay, 0.25);
    b.optimizer = OPT_ADAM;
    cr_assert_eq(optim_configure(&o, &b, "x.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "x.ckpt") && strstr(err_msg(), "train.optimizer"), "%s", err_msg());
    cr_assert_str_eq(o.name, "sgd_momentum");
    optim_free(&o);
    config_free(&a);
    config_free(&b);
}

// ---------------------------------------------------------------- schedules

static double rel_err(double a, double b) { return fabs(a - b) / fabs(b); }

Test(optim, noam_schedule) {
    const double d = 512, w = 4000, scale = 2;
    const LrSchedule noam = {.kind = LR_NOAM, .d_model = d, .warmup = w, .scale = scale};
    const long steps[] = {1, 2, 100, 3999, 4000, 4001, 40000};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        double s = (double)steps[i];
        double want = scale * pow(d, -0.5) * fmin(pow(s, -0.5), s * pow(w, -1.5));
        cr_assert_leq(rel_err(lr_at(&noam, steps[i]), want), 1e-14, "step %ld", steps[i]);
    }
    // Step 0 (before any update) counts as step 1; the peak is at the warmup's end.
    cr_assert_eq(lr_at(&noam, 0), lr_at(&noam, 1));
    cr_assert_leq(rel_err(lr_at(&noam, 4000), scale / sqrt(d * w)), 1e-14);
    cr_assert_lt(lr_at(&noam, 3999), lr_at(&noam, 4000));
    cr_assert_lt(lr_at(&noam, 4001), lr_at(&noam, 4000));
}

Test(optim, inverse_sqrt_schedule) {
    const double w = 300, peak = 2e-3;
    const LrSchedule inv = {.kind = LR_INVSQRT, .d_model = 64, .warmup = w, .scale = 1, .peak = peak};
    const long steps[] = {1, 2, 150, 299, 300, 301, 1200};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        double s = (double)steps[i];
        double want = s <= w ? peak * s / w : peak * sqrt(w / s);
        cr_assert_leq(rel_err(lr_at(&inv, steps[i]), want), 1e-15, "step %ld", steps[i]);
    }
    cr_assert_eq(lr_at(&inv, 0), lr_at(&inv, 1));
    cr_assert_eq(lr_at(&inv, 300), peak);
    cr_assert_leq(rel_err(lr_at(&inv, 1200), peak / 2), 1e-15);
}

// Warmup as inverse_sqrt's, then down to 0 at step total + 1: the halfway
// point of the decay is half the peak on both curves, and the last step's
// rate is the curve's value one step before zero.
Test(optim, decaying_schedules) {
    const double w = 100, peak = 1e-3;
    const long total = 1099;  // decay span total + 1 - w = 1000 steps
    for (int kind = LR_COSINE; kind <= LR_LINEAR; kind++) {
        LrSchedule l = {.kind = kind, .warmup = w, .peak = peak, .total = total};
        cr_assert_eq(lr_at(&l, 0), lr_at(&l, 1));
        cr_assert_leq(rel_err(lr_at(&l, 50), peak / 2), 1e-15, "kind %d", kind);
        cr_assert_eq(lr_at(&l, 100), peak, "kind %d", kind);
        cr_assert_leq(rel_err(lr_at(&l, 600), peak / 2), 1e-12, "kind %d", kind);
        cr_assert_eq(lr_at(&l, total + 1), 0, "kind %d", kind);
        cr_assert_eq(lr_at(&l, total + 50), 0, "kind %d", kind);
        for (long s = 101; s <= total; s++) {
            cr_assert_lt(lr_at(&l, s), lr_at(&l, s - 1), "kind %d step %ld", kind, s);
            cr_assert_gt(lr_at(&l, s), 0, "kind %d step %ld", kind, s);
        }
    }
    LrSchedule lin = {.kind = LR_LINEAR, .warmup = w, .peak = peak, .total = total};
    cr_assert_leq(rel_err(lr_at(&lin, total), peak / 1000), 1e-12);
    LrSchedule cosine = {.kind = LR_COSINE, .warmup = w, .peak = peak, .total = total};
    cr_assert_leq(rel_err(lr_at(&cosine, 350), peak * (1 + cos(M_PI / 4)) / 2), 1e-14);
}

// ---------------------------------------------------------------- norm and clipping

static real *random_vector(size_t n, uint64_t seed) {
    real *g = xmalloc(n * sizeof *g);
    uint64_t key = rng_key(seed, 7, 7);
    for (size_t i = 0; i < n; i++) g[i] = (real)((double)(rng_u64(key, i) >> 11) / 9007199254740992.0 * 2 - 1);
    return g;
}

Test(optim, global_norm_matches_a_double_reference) {
    // 13: a tail after the 8-wide sums; 16389 and 100003: more than one 16384-real chunk.
    const size_t sizes[] = {1, 7, 8, 13, 16384, 16389, 100003};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        real *g = random_vector(n, n);
        long double s = 0;
        for (size_t i = 0; i < n; i++) s += (long double)g[i] * g[i];
        double want = sqrt((double)s), got = global_norm(g, n);
        // Squares of floats are exact in double; n additions lose < n * 2^-53 relative.
        cr_assert_leq(rel_err(got, want), 1e-12, "n = %zu: %.17g vs %.17g", n, got, want);
        free(g);
    }
    cr_assert_eq(global_norm(NULL, 0), 0);
}

Test(optim, global_norm_does_not_depend_on_the_thread_count) {
    const size_t sizes[] = {13, 70001, 300007};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        real *g = random_vector(sizes[k], 3 + k);
        omp_set_num_threads(1);
        double one = global_norm(g, sizes[k]);
        omp_set_num_threads(2);
        double two = global_norm(g, sizes[k]);
        omp_set_num_threads(3);
        double three = global_norm(g, sizes[k]);
        cr_assert(memcmp(&one, &two, sizeof one) == 0 && memcmp(&one, &three, sizeof one) == 0,
                  "n = %zu: %.17g %.17g %.17g", sizes[k], one, two, three);
        free(g);
    }
}

Test(optim, clip_factor_edges) {
    cr_assert_eq(clip_factor(5, 0), 1);          // 0: no clipping
    cr_assert_eq(clip_factor(5, -1), 1);
    cr_assert_eq(clip_factor(0, 1), 1);          // a zero gradient
    cr_assert_eq(clip_factor(0.5, 1), 1);        // under the limit
    cr_assert_eq(clip_factor(1, 1), 1);          // at the limit: untouched
    cr_assert_eq(clip_factor(4, 1), (real)(1 / (4 + 1e-6)));
    cr_assert_eq(clip_factor(1e30, 2), (real)(2 / (1e30 + 1e-6)));
    cr_assert_eq(clip_factor(INFINITY, 1), 0);   // an infinite norm zeroes the step
    real f = clip_factor(3, 1.5);
    cr_assert(f < 0.5f && f > 0.5f - 1e-6f, "%.9g", (double)f);
}

// ---------------------------------------------------------------- checkpoints and resume

static char *tiny_run_dir(void) {
    char *d = xstrdup("/tmp/nmt-optim-XXXXXX");
    cr_assert(mkdtemp(d));
    write_copy_corpus(d, "train", 200, 10, 8, 5);
    char path[512];
    snprintf(path, sizeof path, "%s/cfg.json", d);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f,
            "{\"model\": {\"d_model\": 16, \"heads\": 2, \"d_ff\": 32, \"encoder_layers\": 1, \"decoder_layers\": 1},"
            " \"data\": {\"train_src\": \"%s/train.src\", \"train_tgt\": \"%s/train.tgt\"},"
            " \"train\": {\"max_steps\": 3, \"batch_tokens\": 200, \"log_every\": 1, \"save_every\": 0,"
            " \"checkpoint_dir\": \"%s/ck\"}}\n",
            d, d, d);
    fclose(f);
    return d;
}

static int train_in(const char *dir, const char *const *sets, int nset) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/cfg.json", dir);
    TrainArgs a = {cfg, sets, nset, NULL, 1, 0, NULL};
    err_clear();
    return train_run(&a);
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

// Timeouts: in run order (suite, then test name) never shorter than an earlier
// one: libcriterion's runner leaks (and LeakSanitizer fails the suite) when a
// shorter timeout follows a longer one.
Test(optim, sgd_momentum_state_round_trips_through_a_checkpoint, .timeout = 60) {
    char *dir = tiny_run_dir();
    const char *sets[] = {"train.optimizer=sgd_momentum", "train.momentum=0.8"};
    cr_assert_eq(train_in(dir, sets, 2), 0, "%s", err_msg());
    char ck[512], ck2[512];
    snprintf(ck, sizeof ck, "%s/ck/last.ckpt", dir);
    snprintf(ck2, sizeof ck2, "%s/again.ckpt", dir);
    // The file holds the optimizer's one buffer under its name, and no Adam state.
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, ck), 0, "%s", err_msg());
    uint64_t size;
    cr_assert_not_null(ckpt_section(f, "momentum", &size));
    cr_assert_null(ckpt_section(f, "adam_m", &size));
    ckpt_close(f);

    Config c;
    Tokenizer t;
    Model m;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(ck, &c, &t, &m, &o, &st), 0, "%s", err_msg());
    cr_assert_str_eq(o.name, "sgd_momentum");
    cr_assert_eq(o.set.momentum, 0.8);
    cr_assert_eq(o.step, 3);
    cr_assert_eq(o.nstate, 1);
    cr_assert_eq(o.n, m.nparams);
    // Arbitrary bits (not the ones training left) come back exactly.
    real *want = random_vector(o.n, 42);
    memcpy(o.state[0], want, o.n * sizeof(real));
    cr_assert_eq(train_state_save(ck2, &c, &t, &m, &o, &st), 0, "%s", err_msg());
    Config c2;
    Tokenizer t2;
    Model m2;
    Optimizer o2;
    TrainState st2;
    cr_assert_eq(train_state_load(ck2, &c2, &t2, &m2, &o2, &st2), 0, "%s", err_msg());
    cr_assert_str_eq(o2.state_name[0], "momentum");
    cr_assert(memcmp(o2.state[0], want, o.n * sizeof(real)) == 0, "momentum buffer changed in the round trip");
    cr_assert(memcmp(m2.params, m.params, m.nparams * sizeof(real)) == 0);
    free(want);
    optim_free(&o2), model_free(&m2), tokenizer_free(&t2), config_free(&c2);
    optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
    rm_rf(dir);
    free(dir);
}

// A run with train.ema_decay: the checkpoint keeps the average as a state
// section; a resume gets it back exactly, and decoding gets it as the weights.
Test(optim, ema_round_trips_and_is_what_decoding_loads, .timeout = 60) {
    char *dir = tiny_run_dir();
    const char *sets[] = {"train.ema_decay=0.5"};
    cr_assert_eq(train_in(dir, sets, 1), 0, "%s", err_msg());
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck/last.ckpt", dir);
    Config c;
    Tokenizer t;
    Model m, md;
    Optimizer o;
    TrainState st;
    cr_assert_eq(train_state_load(ck, &c, &t, &m, &o, &st), 0, "%s", err_msg());
    cr_assert_eq(o.ema, 2);
    cr_assert(memcmp(o.state[o.ema], m.params, m.nparams * sizeof(real)) != 0, "the average is the weights");
    Config cd;
    Tokenizer td;
    cr_assert_eq(train_state_load(ck, &cd, &td, &md, NULL, &st), 0, "%s", err_msg());
    cr_assert(memcmp(md.params, o.state[o.ema], m.nparams * sizeof(real)) == 0, "decoding does not get the average");
    model_free(&md), tokenizer_free(&td), config_free(&cd);
    optim_free(&o), model_free(&m), tokenizer_free(&t), config_free(&c);
    // Resuming with the average switched off is refused.
    const char *off[] = {"train.ema_decay=0", "train.max_steps=4"};
    cr_assert_neq(train_in(dir, off, 2), 0);
    cr_assert(strstr(err_msg(), "train.ema_decay"), "%s", err_msg());
    rm_rf(dir);
    free(dir);
}

// The whole file, to see that a refused resume leaves it alone.
static char *file_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *buf = xmalloc(*n);
    cr_assert_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

// Trains 3 steps with optimizer `from`, then resumes with `to`: refused with
// NMT_ERR_INPUT, a message naming the file and the key, the checkpoint untouched.
static void refuse_switch(const char *from, const char *to) {
    char *dir = tiny_run_dir(), ck[512], set_from[64], set_to[64];
    snprintf(ck, sizeof ck, "%s/ck/last.ckpt", dir);
    snprintf(set_from, sizeof set_from, "train.optimizer=%s", from);
    snprintf(set_to, sizeof set_to, "train.optimizer=%s", to);
    const char *first[] = {set_from}, *second[] = {set_to, "train.max_steps=6"};
    cr_assert_eq(train_in(dir, first, 1), 0, "%s", err_msg());
    size_t n0, n1;
    char *before = file_bytes(ck, &n0);
    cr_assert_eq(train_in(dir, second, 2), NMT_ERR_INPUT, "resuming %s with %s was not refused", from, to);
    cr_assert(strstr(err_msg(), ck) && strstr(err_msg(), "train.optimizer"), "%s", err_msg());
    char *after = file_bytes(ck, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "the checkpoint changed");
    free(before);
    free(after);
    rm_rf(dir);
    free(dir);
}

Test(optim, resume_with_another_optimizer_is_refused, .timeout = 60) {
    refuse_switch("sgd_momentum", "adam");
    refuse_switch("adam", "sgd_momentum");
}

// ---------------------------------------------------------------- train_step

// A tiny model (V = 12) with dropout, and one batch of two sentences.
typedef struct {
    Config c;
    Model m;
    Acts *acts;
    Optimizer o;
    Batch b;
    int src[10], src_len[2], tgt_in[8], tgt_out[8], tgt_len[2];
} Tiny;

static void tiny_init(Tiny *x) {
    memset(x, 0, sizeof *x);
    config_defaults(&x->c);
    Config *c = &x->c;
    c->d_model = 16, c->heads = 2, c->d_ff = 32, c->enc_layers = 1, c->dec_layers = 1;
    c->dropout = 0.2, c->label_smoothing = 0.1, c->clip_norm = 0.05, c->weight_decay = 0.01;
    c->lr_schedule = LR_INVSQRT, c->lr = 1e-2, c->warmup_steps = 4;
    ModelShape s = model_shape_sized(c, 12, 12);
    cr_assert_eq(model_create(&x->m, &s), 0);
    model_init_params(&x->m, 9);
    x->acts = acts_create(&x->m, 10, 5, 4, 1);
    optim_init(&x->o, c, x->m.nparams);
    const int src[10] = {4, 5, 6, 7, TOK_EOS, 8, 9, TOK_EOS, TOK_PAD, TOK_PAD};
    const int tin[8] = {TOK_BOS, 10, 11, 4, TOK_BOS, 5, TOK_PAD, TOK_PAD};
    const int tout[8] = {10, 11, 4, TOK_EOS, 5, TOK_EOS, TOK_PAD, TOK_PAD};
    memcpy(x->src, src, sizeof src);
    memcpy(x->tgt_in, tin, sizeof tin);
    memcpy(x->tgt_out, tout, sizeof tout);
    x->src_len[0] = 5, x->src_len[1] = 3, x->tgt_len[0] = 4, x->tgt_len[1] = 2;
    x->b = (Batch){2, 5, 4, x->src, x->src_len, x->tgt_in, x->tgt_out, x->tgt_len, 6};
}

static void tiny_free(Tiny *x) {
    optim_free(&x->o);
    acts_free(x->acts);
    model_free(&x->m);
    config_free(&x->c);
}

Test(optim, train_step_is_its_pieces) {
    Tiny a, b;
    tiny_init(&a);
    tiny_init(&b);
    const long step = 6;   // updates done before; this one is number 7
    StepStats ss;
    StepTimes tm;
    real *before = xmalloc(a.m.nparams * sizeof(real));
    memcpy(before, a.m.params, a.m.nparams * sizeof(real));
    b.o.step = a.o.step = step;
    train_step(&ss, &tm, &a.m, a.acts, &a.o, &a.b, &a.c, step);
    cr_assert(isfinite(ss.loss) && ss.loss > 0 && ss.nll > 0);
    cr_assert(tm.forward >= 0 && tm.backward >= 0 && tm.norm >= 0 && tm.update >= 0);
    cr_assert_eq(a.o.step, step + 1);

    // The loss is model_forward's in training mode with dropout keyed by step + 1.
    uint64_t key = rng_key((uint64_t)b.c.seed, 0xD50, (uint64_t)step + 1);
    double nll, loss = model_forward(&b.m, b.acts, &b.b, (real)b.c.label_smoothing, 1, key, &nll);
    cr_assert_eq(loss, ss.loss);
    cr_assert_eq(nll, ss.nll);
    // The gradient it leaves is of the mean loss per target token: its norm is ss.gnorm.
    cr_assert_eq(global_norm(a.m.grads, a.m.nparams), ss.gnorm);
    cr_assert_eq(ss.lr, lr_at(&(LrSchedule){.kind = LR_INVSQRT, .warmup = 4, .peak = 1e-2}, step + 1));
    cr_assert_gt(ss.gnorm, b.c.clip_norm, "the test wants clipping to be active (norm %g)", ss.gnorm);
    // The update is the optimizer's, with the clipping factor, from the old parameters.
    memcpy(b.m.grads, a.m.grads, a.m.nparams * sizeof(real));
    ParamSet pb = model_param_set(&b.m);
    cr_assert(memcmp(b.m.params, before, a.m.nparams * sizeof(real)) == 0);
    optim_step(&b.o, &pb, ss.lr, clip_factor(ss.gnorm, b.c.clip_norm));
    cr_assert(memcmp(a.m.params, b.m.params, a.m.nparams * sizeof(real)) == 0, "parameters differ");
    for (int i = 0; i < a.o.nstate; i++)
        cr_assert(memcmp(a.o.state[i], b.o.state[i], a.o.n * sizeof(real)) == 0, "%s differs", a.o.state_name[i]);
    cr_assert(memcmp(a.m.params, before, a.m.nparams * sizeof(real)) != 0, "nothing was updated");
    free(before);
    tiny_free(&a);
    tiny_free(&b);
}

Test(optim, train_step_dropout_follows_the_step) {
    Tiny a, b;
    tiny_init(&a);
    tiny_init(&b);
    StepStats s1, s2;
    // Same parameters, same batch: the same step number gives the same bits,
    // another step number other dropout masks.
    train_step(&s1, NULL, &a.m, a.acts, &a.o, &a.b, &a.c, 10);
    train_step(&s2, NULL, &b.m, b.acts, &b.o, &b.b, &b.c, 10);
    cr_assert_eq(s1.loss, s2.loss);
    cr_assert(memcmp(a.m.params, b.m.params, a.m.nparams * sizeof(real)) == 0);
    tiny_free(&b);
    tiny_init(&b);
    train_step(&s2, NULL, &b.m, b.acts, &b.o, &b.b, &b.c, 11);
    cr_assert_neq(s1.loss, s2.loss);
    tiny_free(&a);
    tiny_free(&b);
}

// Gradient accumulation: K micro-batches through step_micro leave exactly the
// sum, in micro-batch order, of their gradients computed one by one with the
// step's token count and micro-batch j's dropout key; the loss is the sum of
// theirs; the update is the optimizer's on that sum.
Test(optim, accumulation_is_the_ordered_sum_of_micro_batches) {
    Tiny a, b;
    tiny_init(&a);
    tiny_init(&b);
    const long step = 4;
    const int K = 3;
    const size_t ntok = K * a.b.ntok;
    StepAccum u = {0};
    step_begin(&u, step, ntok, 0, K, NULL);
    for (int j = 0; j < K; j++) step_micro(&u, &a.m, a.acts, &a.b, &a.c);
    real *acc = xmalloc(a.m.nparams * sizeof(real));
    memcpy(acc, a.m.grads, a.m.nparams * sizeof(real));
    StepStats ss;
    b.o.step = a.o.step = step;
    step_end(&u, &ss, NULL, &a.m, &a.o, &a.c);

    real *sum = xcalloc(b.m.nparams, sizeof(real));
    double loss = 0, nll = 0;
    GradSink sink = {b.m.grads, NULL, NULL};
    for (int j = 0; j < K; j++) {
        model_zero_grads(&b.m, b.m.grads);
        double n;
        loss += model_forward_backward(&b.m, b.acts, &b.b, (real)b.c.label_smoothing, step_dropout_key(&b.c, step, j),
                                       (real)(1.0 / (double)ntok), &sink, &n, NULL);
        nll += n;
        for (size_t i = 0; i < b.m.nparams; i++) sum[i] = j ? sum[i] + b.m.grads[i] : b.m.grads[i];
    }
    cr_assert(memcmp(acc, sum, b.m.nparams * sizeof(real)) == 0, "the accumulated gradient is not the ordered sum");
    cr_assert_eq(ss.loss, loss);
    cr_assert_eq(ss.nll, nll);
    cr_assert_eq(ss.gnorm, global_norm(sum, b.m.nparams));
    memcpy(b.m.grads, sum, b.m.nparams * sizeof(real));
    ParamSet pb = model_param_set(&b.m);
    optim_step(&b.o, &pb, ss.lr, clip_factor(ss.gnorm, b.c.clip_norm));
    cr_assert(memcmp(a.m.params, b.m.params, a.m.nparams * sizeof(real)) == 0, "parameters differ");
    // Micro-batch 0 keeps the dropout key of one-batch steps; each j has its own.
    cr_assert_eq(step_dropout_key(&a.c, step, 0), rng_key((uint64_t)a.c.seed, 0xD50, (uint64_t)step + 1));
    cr_assert_neq(step_dropout_key(&a.c, step, 1), step_dropout_key(&a.c, step, 2));
    // A process computing only micro-batches 1 and 2 (first = 1) gets their ordered sum.
    tiny_free(&b);
    tiny_init(&b);
    step_begin(&u, step, ntok, 1, K - 1, NULL);
    for (int j = 1; j < K; j++) step_micro(&u, &b.m, b.acts, &b.b, &b.c);
    real *part = xcalloc(b.m.nparams, sizeof(real));
    memcpy(part, b.m.grads, b.m.nparams * sizeof(real));
    tiny_free(&b);
    tiny_init(&b);
    sink.dst = b.m.grads;  // b was made again
    for (int j = 1; j < K; j++) {
        model_zero_grads(&b.m, b.m.grads);
        model_forward_backward(&b.m, b.acts, &b.b, (real)b.c.label_smoothing, step_dropout_key(&b.c, step, j),
                               (real)(1.0 / (double)ntok), &sink, NULL, NULL);
        for (size_t i = 0; i < b.m.nparams; i++) sum[i] = j > 1 ? sum[i] + b.m.grads[i] : b.m.grads[i];
    }
    cr_assert(memcmp(part, sum, b.m.nparams * sizeof(real)) == 0, "micro-batches 1..2 alone: not their ordered sum");
    step_accum_free(&u);
    free(acc);
    free(sum);
    free(part);
    tiny_free(&a);
    tiny_free(&b);
}

// Which work runs in parallel (par.h: the thresholds rise on a shared machine)
// never changes the arithmetic: everything split over 2 threads and
// everything on one give the same bits.
Test(optim, train_step_bits_do_not_depend_on_parallel_thresholds) {
    Tiny a, b;
    tiny_init(&a);
    tiny_init(&b);
    omp_set_num_threads(2);
    size_t elems = par_min_elems;
    double fmas = par_min_fmas;
    StepStats s1, s2;
    par_min_elems = 0, par_min_fmas = 0;
    for (long step = 0; step < 3; step++) train_step(&s1, NULL, &a.m, a.acts, &a.o, &a.b, &a.c, step);
    par_min_elems = (size_t)1 << 40, par_min_fmas = 1e30;
    for (long step = 0; step < 3; step++) train_step(&s2, NULL, &b.m, b.acts, &b.o, &b.b, &b.c, step);
    par_min_elems = elems, par_min_fmas = fmas;
    cr_assert_eq(s1.loss, s2.loss);
    cr_assert_eq(s1.gnorm, s2.gnorm);
    cr_assert(memcmp(a.m.params, b.m.params, a.m.nparams * sizeof(real)) == 0, "parameters differ");
    tiny_free(&a);
    tiny_free(&b);
}
