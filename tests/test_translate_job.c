// test_translate_job.c — the serve queue's translation kind (serve/translate_job.h)
// on a tiny random model: a group run in one call gives each job what
// translate_lines gives its lines alone, and attention maps equal to
// attention_map()'s (which translates again) bit for bit, for greedy, beam
// and n-best, run directly or through the queue; options tell the groups;
// two models in one queue each translate their own jobs.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "decode/translate.h"
#include "serve/translate_job.h"
#include "common/util.h"
#include "text/vocab.h"
#include "tmpdir.h"
#include "word_model.h"

TestSuite(translate_job, .init = make_tmpdir, .fini = remove_tmpdir);

static const char SRC_TEXT[] = "ein mann fährt ein rad\ndas haus ist klein und alt\nzwei hunde spielen im schnee\n";
static const char TGT_TEXT[] = "a man rides a bike\nthe house is small and old\ntwo dogs play in the snow\n";

typedef struct {
    Tokenizer t;
    Model m, *mp;   // mp = &m: the server's ensemble of one
    JobEnv env;
} Fixture;

enum { MAX_SRC = 6 };

// A random model of this seed (and tgt_text's target words).
static void fixture_of(Fixture *f, const char *tgt_text, uint64_t seed) {
    memset(f, 0, sizeof *f);
    ModelShape s = {.d_model = 16, .heads = 2, .d_ff = 32, .enc_layers = 1, .dec_layers = 2, .pre_norm = 1, .max_len = 64};
    word_model(&f->t, &f->m, SRC_TEXT, tgt_text, s, seed);
    // Batches of 2 inside a call; the decoder's buffers kept from call to call, as the server keeps them.
    f->mp = &f->m;
    f->env = (JobEnv){{&f->mp, NULL, 1}, &f->t, MAX_SRC, 2, 0, decode_scratch_create()};
}

static void fixture(Fixture *f) { fixture_of(f, TGT_TEXT, 11); }

static void fixture_free(Fixture *f) {
    decode_scratch_free(f->env.scratch);
    model_free(&f->m);
    tokenizer_free(&f->t);
}

// Three requests: the last has an empty line and one longer than MAX_SRC tokens.
static char *const A[] = {"ein mann", "das haus ist klein"};
static char *const B[] = {"zwei hunde spielen im schnee"};
static char *const C[] = {"ein rad", "", "das haus ist klein und alt und ein mann im schnee"};
static char *const *const LINES[3] = {A, B, C};
static const size_t COUNTS[3] = {2, 1, 3};

static void jobs_init(TranslateJob *j, const JobEnv *env, int beam, int nbest) {
    for (int k = 0; k < 3; k++) translate_job_init(&j[k], env, LINES[k], COUNTS[k], beam, nbest, k != 1);
}

static void expect_same_map(const AttnMap *a, const AttnMap *b, const char *what) {
    cr_assert(a->H == b->H && a->T == b->T && a->S == b->S, "%s: %zux%zux%zu vs %zux%zux%zu", what, a->H, a->T,
              a->S, b->H, b->T, b->S);
    cr_assert(!memcmp(a->w, b->w, a->H * a->T * a->S * sizeof *a->w), "%s: weights differ", what);
    for (size_t t = 0; t < a->T; t++) cr_assert_str_eq(a->rows[t], b->rows[t], "%s: row %zu", what, t);
    for (size_t s = 0; s < a->S; s++) cr_assert_str_eq(a->cols[s], b->cols[s], "%s: col %zu", what, s);
}

// Job k's results are those of its lines translated alone, and its maps attention_map()'s.
static void expect_as_alone(Fixture *f, TranslateJob *j) {
    size_t nb = (size_t)j->o.nbest;
    DecodeOptions o = j->o;
    o.batch = 1;
    char **texts = xcalloc(j->job.n * nb, sizeof *texts);
    double *scores = xcalloc(j->job.n * nb, sizeof *scores);
    cr_assert_eq(j->job.rc, NMT_OK, "%s", j->job.error);
    cr_assert_eq(translate_lines(&f->m, &f->t, MAX_SRC, j->lines, j->job.n, &o, "alone", texts, scores, NULL), NMT_OK);
    for (size_t i = 0; i < j->job.n * nb; i++) {
        cr_assert_str_eq(j->texts[i], texts[i], "hypothesis %zu", i);
        cr_assert(j->scores[i] == scores[i], "hypothesis %zu: score %.17g vs %.17g", i, j->scores[i], scores[i]);
        free(texts[i]);
    }
    free(texts);
    free(scores);
    cr_assert_eq(j->maps != NULL, j->attention, "maps without attention, or none with it");
    for (size_t i = 0; j->attention && i < j->job.n; i++) {
        AttnMap ref;
        cr_assert_eq(attention_map(&ref, &f->m, &f->t, MAX_SRC, j->lines[i], &j->o, "alone"), NMT_OK);
        char what[64];
        snprintf(what, sizeof what, "\"%s\" beam %d nbest %d", j->lines[i], j->o.beam, j->o.nbest);
        expect_same_map(&j->maps[i], &ref, what);
        attention_map_free(&ref);
    }
}

static void run_directly(int beam, int nbest) {
    Fixture f;
    fixture(&f);
    TranslateJob j[3];
    jobs_init(j, &f.env, beam, nbest);
    ServeJob *jobs[3] = {&j[0].job, &j[1].job, &j[2].job};
    for (int k = 0; k < 3; k++) j[k].job.take = j[k].job.n;  // all of each in one call
    TRANSLATE_JOB.run(jobs, 3);
    for (int k = 0; k < 3; k++) {
        expect_as_alone(&f, &j[k]);
        translate_job_free(&j[k]);
    }
    fixture_free(&f);
}

Test(translate_job, greedy_group_equals_each_alone) { run_directly(1, 1); }
Test(translate_job, beam_group_equals_each_alone) { run_directly(4, 1); }
// Maps of the best of n equal those of a 1-best translation.
Test(translate_job, nbest_group_equals_each_alone) { run_directly(4, 3); }

Test(translate_job, through_the_queue) {
    Fixture f;
    fixture(&f);
    ServeQueue *q = queue_start(0.05);
    TranslateJob j[6];
    jobs_init(j, &f.env, 3, 2);
    jobs_init(j + 3, &f.env, 1, 1);
    for (int k = 0; k < 6; k++) queue_post(q, &j[k].job);
    for (int k = 0; k < 6; k++) queue_wait(q, &j[k].job);
    queue_stop(q);
    for (int k = 0; k < 6; k++) {
        expect_as_alone(&f, &j[k]);
        translate_job_free(&j[k]);
    }
    fixture_free(&f);
}

// Two models posted together, interleaved: each job is translated by its own
// model (as that model translates its lines alone), in one call per model.
Test(translate_job, two_models_in_one_queue_run_apart_each_its_own) {
    static const char OTHER_TGT[] = "ein hund schläft im haus\nzwei kinder lachen laut\n";
    Fixture f[2];
    fixture(&f[0]);
    fixture_of(&f[1], OTHER_TGT, 12);
    for (int m = 0; m < 2; m++) f[m].env.max_batch = 6;  // each model's 3 jobs: a full call
    ServeQueue *q = queue_start(10.0);  // a window only a full batch ends: no timing in the test
    TranslateJob j[2][3];
    for (int m = 0; m < 2; m++) jobs_init(j[m], &f[m].env, 2, 1);
    // The first model's first job opens the window, which its last one closes,
    // after every job of the second model waits.
    queue_post(q, &j[0][0].job);
    for (int k = 0; k < 3; k++) queue_post(q, &j[1][k].job);
    for (int k = 1; k < 3; k++) queue_post(q, &j[0][k].job);
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 3; k++) queue_wait(q, &j[m][k].job);
    size_t sentences, batches;
    queue_counts(q, &sentences, &batches);
    queue_stop(q);
    cr_assert_eq(sentences, 12);
    cr_assert_eq(batches, 2, "%zu calls for two models", batches);
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 3; k++) expect_as_alone(&f[m], &j[m][k]);
    // The models translate differently (else the test could not tell them apart).
    cr_assert_str_neq(j[0][0].texts[0], j[1][0].texts[0]);
    for (int m = 0; m < 2; m++) {
        for (int k = 0; k < 3; k++) translate_job_free(&j[m][k]);
        fixture_free(&f[m]);
    }
}

// Runs all of job j in one call.
static void run_alone(TranslateJob *j) {
    j->job.take = j->job.n;
    ServeJob *jobs[1] = {&j->job};
    TRANSLATE_JOB.run(jobs, 1);
}

// The decoder's buffers are kept from call to call, built again only when a
// call needs larger ones or another beam; every call still gives what
// translating alone gives.
Test(translate_job, the_decoders_buffers_are_kept_between_calls) {
    Fixture f;
    fixture(&f);
    f.env.max_batch = 4;
    struct { char *const *lines; size_t n; int beam; size_t builds; } calls[] = {
        {A, 2, 2, 1}, {C, 3, 2, 2} /* longer: larger buffers */, {A, 2, 2, 2}, {B, 1, 2, 2}, {A, 2, 3, 3},
        {A, 1, 3, 3}, {C, 3, 2, 4}};
    for (size_t k = 0; k < sizeof calls / sizeof *calls; k++) {
        TranslateJob j;
        translate_job_init(&j, &f.env, calls[k].lines, calls[k].n, calls[k].beam, 1, 0);
        run_alone(&j);
        expect_as_alone(&f, &j);
        translate_job_free(&j);
        cr_assert_eq(decode_scratch_builds(f.env.scratch), calls[k].builds, "call %zu: %zu builds, not %zu", k,
                     decode_scratch_builds(f.env.scratch), calls[k].builds);
    }
    fixture_free(&f);
}

Test(translate_job, groups_are_the_decoding_options) {
    static const JobEnv env = {{NULL, NULL, 0}, NULL, MAX_SRC, 2, 0, NULL};  // the groups need no model
    TranslateJob a, b;
    translate_job_init(&a, &env, A, 2, 4, 1, 0);
    translate_job_init(&b, &env, B, 1, 4, 1, 1);  // attention does not split a group
    cr_assert(TRANSLATE_JOB.same_group(&a.job, &b.job));
    translate_job_free(&b);
    translate_job_init(&b, &env, B, 1, 3, 1, 0);
    cr_assert(!TRANSLATE_JOB.same_group(&a.job, &b.job), "beam 4 and 3 together");
    translate_job_free(&b);
    translate_job_init(&b, &env, B, 1, 4, 2, 0);
    cr_assert(!TRANSLATE_JOB.same_group(&a.job, &b.job), "nbest 1 and 2 together");
    translate_job_free(&b);
    b = a;
    b.o.alpha = 1.0;
    cr_assert(!TRANSLATE_JOB.same_group(&a.job, &b.job), "alpha 0.6 and 1 together");
    translate_job_free(&a);
}

Test(translate_job, invalid_utf8_fails_every_job_of_the_group) {
    Fixture f;
    fixture(&f);
    char *const bad[] = {"ein \xff mann"};
    TranslateJob j[2];
    translate_job_init(&j[0], &f.env, A, 2, 1, 1, 1);
    translate_job_init(&j[1], &f.env, bad, 1, 1, 1, 0);
    ServeJob *jobs[2] = {&j[0].job, &j[1].job};
    for (int k = 0; k < 2; k++) j[k].job.take = j[k].job.n;
    TRANSLATE_JOB.run(jobs, 2);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(j[k].job.rc, NMT_ERR_INPUT);
        cr_assert(strstr(j[k].job.error, "request:3: invalid UTF-8"), "job %d: %s", k, j[k].job.error);
        for (size_t i = 0; i < j[k].job.n; i++) cr_assert_null(j[k].texts[i], "job %d: text %zu handed out", k, i);
        translate_job_free(&j[k]);
    }
    fixture_free(&f);
}
