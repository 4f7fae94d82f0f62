// test_queue.c — the serve queue (serve/queue.h) with a fake job kind that
// records every call: jobs of one group run together and other groups apart,
// in arrival order, at most max_batch sentences a call (a longer job alone);
// each waiter gets its own answers in order; many threads submitting at once
// are all answered; a failing job fails alone; stopping runs what waits.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/queue.h"
#include "common/util.h"

enum { MAX_CALLS = 64, MAX_JOBS = 64 };

typedef struct {
    ServeJob job;
    int id, group;
    int in[16];      // job.n inputs; a negative one fails the job
    int out[16];     // answers: in * 3 + 1
    int gate;        // run waits for open_gate() before answering this one
} FakeJob;

// What run was given, call by call.
static struct {
    pthread_mutex_t mu;
    int calls;
    int ids[MAX_CALLS][MAX_JOBS];
    size_t njobs[MAX_CALLS], sentences[MAX_CALLS];
    int mixed[MAX_CALLS];   // jobs of more than one group in one call
    pthread_cond_t gate_cv;
    int gate_open;
} rec = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0}, {0}, {0}, PTHREAD_COND_INITIALIZER, 0};

static void open_gate(void) {
    pthread_mutex_lock(&rec.mu);
    rec.gate_open = 1;
    pthread_cond_broadcast(&rec.gate_cv);
    pthread_mutex_unlock(&rec.mu);
}

static void *open_gate_later(void *arg) {
    (void)arg;
    nanosleep(&(struct timespec){0, 300000000L}, NULL);
    open_gate();
    return NULL;
}

static int fake_same_group(const ServeJob *a, const ServeJob *b) {
    return ((const FakeJob *)a)->group == ((const FakeJob *)b)->group;
}

static void fake_run(ServeJob *const *jobs, size_t n) {
    pthread_mutex_lock(&rec.mu);
    int c = rec.calls++;
    if (c >= MAX_CALLS || n > MAX_JOBS) abort();  // (not cr_assert: this is the worker thread)
    rec.njobs[c] = n;
    for (size_t k = 0; k < n; k++) {
        const FakeJob *f = (const FakeJob *)jobs[k];
        rec.ids[c][k] = f->id;
        rec.sentences[c] += f->job.take;
        rec.mixed[c] |= f->group != ((const FakeJob *)jobs[0])->group || f->job.env != jobs[0]->env;
        while (f->gate && !rec.gate_open) pthread_cond_wait(&rec.gate_cv, &rec.mu);
    }
    pthread_mutex_unlock(&rec.mu);
    for (size_t k = 0; k < n; k++) {
        FakeJob *f = (FakeJob *)jobs[k];
        for (size_t i = f->job.from; i < f->job.from + f->job.take; i++) {
            if (f->in[i] < 0) {
                serve_job_fail(&f->job, err_set(NMT_ERR_INPUT, "job %d: input %zu is negative", f->id, i));
                break;
            }
            f->out[i] = f->in[i] * 3 + 1;
        }
    }
}

static const JobKind FAKE = {"fake", fake_same_group, fake_run};
static const JobKind OTHER = {"other", fake_same_group, fake_run};  // another kind, the same rules

// The limits of this test's jobs (no model: the fake kind needs none).
static JobEnv env;

static void fake(FakeJob *f, int id, int group, size_t n) {
    memset(f, 0, sizeof *f);
    f->job.kind = &FAKE;
    f->job.env = &env;
    f->job.n = n;
    f->id = id;
    f->group = group;
    for (size_t i = 0; i < n; i++) f->in[i] = id * 10 + (int)i;
}

static ServeQueue *start(size_t max_batch, double window_s) {
    env = (JobEnv){{NULL, NULL, 0}, NULL, 0, max_batch, 0, NULL};
    return queue_start(window_s);
}

static void expect_answered(const FakeJob *f) {
    cr_assert_eq(f->job.rc, NMT_OK, "job %d: %s", f->id, f->job.error);
    for (size_t i = 0; i < f->job.n; i++)
        cr_assert_eq(f->out[i], f->in[i] * 3 + 1, "job %d answer %zu: %d for input %d", f->id, i, f->out[i], f->in[i]);
}

// Call c ran exactly the jobs ids[0..n), in that order.
static void expect_call(int c, const int *ids, size_t n) {
    cr_assert_lt(c, rec.calls, "only %d calls", rec.calls);
    cr_assert_eq(rec.njobs[c], n, "call %d ran %zu jobs, not %zu", c, rec.njobs[c], n);
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(rec.ids[c][k], ids[k], "call %d job %zu: %d, not %d", c, k, rec.ids[c][k], ids[k]);
}

// A gate job runs first and holds the worker until every other job waits:
// what runs together is then decided by the queue alone, not by timing.
static void post_gated(ServeQueue *q, FakeJob *gate, FakeJob *jobs, size_t n) {
    fake(gate, 0, 99, 1);
    gate->gate = 1;
    queue_post(q, &gate->job);
    for (size_t k = 0; k < n; k++) queue_post(q, &jobs[k].job);
    open_gate();
    queue_wait(q, &gate->job);
    for (size_t k = 0; k < n; k++) queue_wait(q, &jobs[k].job);
}

Test(serve_queue, same_group_runs_together_others_apart_in_order) {
    ServeQueue *q = start(4, 0.2);
    FakeJob gate, j[5];
    size_t sizes[5] = {2, 1, 1, 3, 1};
    int groups[5] = {1, 2, 1, 2, 1};
    for (int k = 0; k < 5; k++) fake(&j[k], k + 1, groups[k], sizes[k]);
    post_gated(q, &gate, j, 5);
    for (int k = 0; k < 5; k++) expect_answered(&j[k]);
    cr_assert_eq(rec.calls, 3);
    expect_call(0, (int[]){0}, 1);
    expect_call(1, (int[]){1, 3, 5}, 3);
    expect_call(2, (int[]){2, 4}, 2);
    size_t sentences, batches;
    queue_counts(q, &sentences, &batches);
    cr_assert_eq(sentences, 9);
    cr_assert_eq(batches, 3);
    queue_stop(q);
}

Test(serve_queue, batches_hold_at_most_max_batch_sentences_a_longer_job_in_pieces) {
    ServeQueue *q = start(4, 0.2);
    FakeJob gate, j[8];
    size_t sizes[8] = {2, 2, 2, 1, 3, 1, 2, 6};
    for (int k = 0; k < 8; k++) fake(&j[k], k + 1, 1, sizes[k]);
    post_gated(q, &gate, j, 8);
    for (int k = 0; k < 8; k++) expect_answered(&j[k]);
    // Those that fit join the first; the rest keep their order; 6 sentences are two calls.
    cr_assert_eq(rec.calls, 7);
    expect_call(1, (int[]){1, 2}, 2);
    expect_call(2, (int[]){3, 4, 6}, 3);
    expect_call(3, (int[]){5}, 1);
    expect_call(4, (int[]){7}, 1);
    expect_call(5, (int[]){8}, 1);
    expect_call(6, (int[]){8}, 1);
    cr_assert_eq(rec.sentences[5], 4);
    cr_assert_eq(rec.sentences[6], 2);
    size_t sentences, batches;
    queue_counts(q, &sentences, &batches);
    cr_assert_eq(sentences, 20);
    cr_assert_eq(batches, 7);
    queue_stop(q);
}

// A long job goes back to the end of the queue after each call: a job
// posted meanwhile runs after one piece of it, not after all of it.
Test(serve_queue, a_long_job_lets_others_in_between_its_pieces) {
    ServeQueue *q = start(2, 0.0);
    FakeJob big, small;
    fake(&big, 1, 1, 7);
    big.gate = 1;  // its first call waits until the small job waits too
    fake(&small, 2, 2, 1);
    queue_post(q, &big.job);
    while (!rec.calls) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    queue_post(q, &small.job);
    open_gate();
    queue_wait(q, &big.job);
    queue_wait(q, &small.job);
    expect_answered(&big);
    expect_answered(&small);
    cr_assert_eq(rec.calls, 5);
    expect_call(0, (int[]){1}, 1);
    expect_call(1, (int[]){2}, 1);
    for (int c = 2; c < 5; c++) expect_call(c, (int[]){1}, 1);
    cr_assert_eq(rec.sentences[4], 1);
    queue_stop(q);
}

static int always_gone(void *arg) {
    (void)arg;
    return 1;
}

// A waiting job cancelled at its deadline leaves the queue at once, never run.
Test(serve_queue, a_waiting_job_past_its_deadline_is_cancelled_unrun) {
    ServeQueue *q = start(2, 0.0);
    FakeJob gate, late;
    fake(&gate, 1, 1, 1);
    gate.gate = 1;
    fake(&late, 2, 2, 1);
    queue_post(q, &gate.job);
    queue_post(q, &late.job);
    double t0 = now_seconds();
    cr_assert_eq(queue_wait_for(q, &late.job, t0 + 0.2, NULL, NULL), JOB_DEADLINE);
    cr_assert_lt(now_seconds() - t0, 2.0);
    cr_assert_eq(late.job.rc, NMT_ERR_RUNTIME);
    cr_assert(strstr(late.job.error, "deadline"), "%s", late.job.error);
    open_gate();
    queue_wait(q, &gate.job);
    queue_stop(q);
    cr_assert_eq(rec.calls, 1, "the cancelled job ran");
}

// A running job whose client has gone stops after the call running.
Test(serve_queue, a_running_job_whose_client_has_gone_stops_after_its_call) {
    ServeQueue *q = start(2, 0.0);
    FakeJob big;
    fake(&big, 1, 1, 10);
    big.gate = 1;
    queue_post(q, &big.job);
    while (!rec.calls) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    // The gate opens only after the waiter has seen the client gone.
    pthread_t opener;
    pthread_create(&opener, NULL, open_gate_later, NULL);
    cr_assert_eq(queue_wait_for(q, &big.job, 0, always_gone, NULL), JOB_GONE);
    pthread_join(opener, NULL);
    cr_assert_eq(big.job.rc, NMT_ERR_RUNTIME);
    cr_assert_eq(big.job.from, 2);
    queue_stop(q);
    cr_assert_eq(rec.calls, 1, "%d calls: the job went on", rec.calls);
}

// Stopping: every job cancelled, the waiting ones at once, the running one after its call.
Test(serve_queue, cancel_all_ends_waiting_and_running_jobs) {
    ServeQueue *q = start(2, 0.0);
    FakeJob big, other;
    fake(&big, 1, 1, 10);
    big.gate = 1;
    fake(&other, 2, 2, 1);
    queue_post(q, &big.job);
    while (!rec.calls) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    queue_post(q, &other.job);
    queue_cancel_all(q);
    queue_wait(q, &other.job);
    cr_assert_eq(other.job.cancel, JOB_STOPPING);
    open_gate();
    queue_wait(q, &big.job);
    cr_assert_eq(big.job.cancel, JOB_STOPPING);
    cr_assert(strstr(big.job.error, "stopping"), "%s", big.job.error);
    queue_stop(q);
    cr_assert_eq(rec.calls, 1);
}

Test(serve_queue, different_kinds_never_run_together) {
    ServeQueue *q = start(8, 0.05);
    FakeJob gate, j[4];
    for (int k = 0; k < 4; k++) fake(&j[k], k + 1, 1, 1);
    j[1].job.kind = &OTHER;
    j[3].job.kind = &OTHER;
    post_gated(q, &gate, j, 4);
    for (int k = 0; k < 4; k++) expect_answered(&j[k]);
    cr_assert_eq(rec.calls, 3);
    expect_call(1, (int[]){1, 3}, 2);
    expect_call(2, (int[]){2, 4}, 2);
    queue_stop(q);
}

// Two models in one server: jobs of different envs never share a call, even
// of one kind and group, and each call holds at most its own env's max_batch.
Test(serve_queue, different_envs_never_run_together_each_with_its_limits) {
    ServeQueue *q = start(2, 0.05);
    JobEnv wide = {{NULL, NULL, 0}, NULL, 0, 4, 0, NULL};
    FakeJob gate, j[6];
    for (int k = 0; k < 6; k++) fake(&j[k], k + 1, 1, 1);
    for (int k = 1; k < 6; k += 2) j[k].job.env = &wide;
    post_gated(q, &gate, j, 6);
    for (int k = 0; k < 6; k++) expect_answered(&j[k]);
    cr_assert_eq(rec.calls, 4);
    expect_call(1, (int[]){1, 3}, 2);     // env's max_batch: 2
    expect_call(2, (int[]){2, 4, 6}, 3);  // wide's: 4
    expect_call(3, (int[]){5}, 1);
    for (int c = 0; c < rec.calls; c++) cr_assert(!rec.mixed[c], "call %d mixed envs", c);
    queue_stop(q);
}

Test(serve_queue, a_failing_job_fails_alone) {
    ServeQueue *q = start(8, 0.05);
    FakeJob gate, j[3];
    for (int k = 0; k < 3; k++) fake(&j[k], k + 1, 1, 2);
    j[1].in[1] = -1;
    post_gated(q, &gate, j, 3);
    expect_call(1, (int[]){1, 2, 3}, 3);
    expect_answered(&j[0]);
    expect_answered(&j[2]);
    cr_assert_eq(j[1].job.rc, NMT_ERR_INPUT);
    cr_assert(strstr(j[1].job.error, "job 2: input 1 is negative"), "error: %s", j[1].job.error);
    queue_stop(q);
}

Test(serve_queue, stopping_runs_what_waits) {
    ServeQueue *q = start(2, 10.0);  // a window nobody waits out: stopping ends it
    FakeJob j[3];
    for (int k = 0; k < 3; k++) fake(&j[k], k + 1, k, 1);
    for (int k = 0; k < 3; k++) queue_post(q, &j[k].job);
    queue_stop(q);
    for (int k = 0; k < 3; k++) {
        cr_assert(j[k].job.done, "job %d not run", k + 1);
        expect_answered(&j[k]);
    }
    cr_assert_eq(rec.calls, 3);
}

// Jobs that came while a call ran were gathered meanwhile: they run as soon
// as it ends, together, not after another window.
Test(serve_queue, jobs_that_came_during_a_call_run_when_it_ends) {
    ServeQueue *q = start(8, 5.0);  // a window the test would notice
    JobEnv one = {{NULL, NULL, 0}, NULL, 0, 1, 0, NULL};
    FakeJob gate, j[2];
    fake(&gate, 1, 1, 1);
    gate.gate = 1;
    gate.job.env = &one;  // a full batch by itself: it runs at once
    queue_post(q, &gate.job);
    while (!rec.calls) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    for (int k = 0; k < 2; k++) {
        fake(&j[k], k + 2, 2, 1);
        queue_post(q, &j[k].job);
    }
    nanosleep(&(struct timespec){0, 100000000L}, NULL);
    open_gate();
    double t0 = now_seconds();
    for (int k = 0; k < 2; k++) queue_wait(q, &j[k].job);
    cr_assert_lt(now_seconds() - t0, 2.0, "they waited %.2f s after the call", now_seconds() - t0);
    cr_assert_eq(rec.calls, 2);
    expect_call(1, (int[]){2, 3}, 2);
    queue_stop(q);
}

// An idle worker waits the window for company: a job that comes within it
// joins the first; the call starts when the window is over.
Test(serve_queue, a_job_within_the_window_joins_the_first) {
    ServeQueue *q = start(8, 0.5);
    FakeJob j[2];
    for (int k = 0; k < 2; k++) fake(&j[k], k + 1, 1, 1);
    double t0 = now_seconds();
    queue_post(q, &j[0].job);
    nanosleep(&(struct timespec){0, 300000000L}, NULL);
    queue_post(q, &j[1].job);
    for (int k = 0; k < 2; k++) queue_wait(q, &j[k].job);
    double took = now_seconds() - t0;
    cr_assert_eq(rec.calls, 1);
    expect_call(0, (int[]){1, 2}, 2);
    cr_assert(took >= 0.5 && took < 1.5, "answered after %.3f s (window 0.5 s from the first)", took);
    queue_stop(q);
}

// ---------------------------------------------------------------- many threads

enum { THREADS = 24, BATCH = 4 };

typedef struct {
    ServeQueue *q;
    FakeJob f;
    pthread_barrier_t *go;
} Client;

static void *client(void *arg) {
    Client *c = arg;
    pthread_barrier_wait(c->go);
    queue_submit(c->q, &c->f.job);
    return NULL;
}

Test(serve_queue, many_threads_submitting_at_once_are_all_answered) {
    ServeQueue *q = start(BATCH, 0.05);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS);
    Client c[THREADS];
    pthread_t th[THREADS];
    size_t total = 0;
    for (int k = 0; k < THREADS; k++) {
        c[k].q = q;
        c[k].go = &go;
        fake(&c[k].f, k + 1, k % 3, 1 + (size_t)(k % 3));
        total += c[k].f.job.n;
        cr_assert_eq(pthread_create(&th[k], NULL, client, &c[k]), 0);
    }
    for (int k = 0; k < THREADS; k++) pthread_join(th[k], NULL);
    pthread_barrier_destroy(&go);
    for (int k = 0; k < THREADS; k++) expect_answered(&c[k].f);
    // Every job ran exactly once, in a call of its group within max_batch.
    int seen[THREADS + 1] = {0};
    size_t sum = 0;
    for (int call = 0; call < rec.calls; call++) {
        cr_assert(!rec.mixed[call], "call %d mixed groups", call);
        cr_assert_leq(rec.sentences[call], BATCH, "call %d: %zu sentences", call, rec.sentences[call]);
        sum += rec.sentences[call];
        for (size_t k = 0; k < rec.njobs[call]; k++) seen[rec.ids[call][k]]++;
    }
    for (int k = 1; k <= THREADS; k++) cr_assert_eq(seen[k], 1, "job %d ran %d times", k, seen[k]);
    cr_assert_eq(sum, total);
    size_t sentences, batches;
    queue_counts(q, &sentences, &batches);
    cr_assert_eq(sentences, total);
    cr_assert_eq(batches, (size_t)rec.calls);
    queue_stop(q);
}

// A job cancelled while the worker waits for company: never run, and the worker goes on.
Test(serve_queue, a_job_cancelled_in_the_window_is_dropped) {
    ServeQueue *q = start(2, 0.5);
    FakeJob a, b;
    fake(&a, 1, 1, 1);
    fake(&b, 2, 1, 1);
    queue_post(q, &a.job);
    cr_assert_eq(queue_wait_for(q, &a.job, now_seconds() + 0.1, NULL, NULL), JOB_DEADLINE);
    nanosleep(&(struct timespec){0, 600000000L}, NULL);  // the window is over
    cr_assert_eq(rec.calls, 0);
    queue_post(q, &b.job);
    queue_wait(q, &b.job);
    expect_answered(&b);
    cr_assert_eq(rec.calls, 1);
    expect_call(0, (int[]){2}, 1);
    queue_stop(q);
}

// With max_rows, a call holds at most that many sentences x weight: a heavy
// job runs in smaller pieces (one sentence at least), and light ones join it
// only within the rows left.
Test(serve_queue, max_rows_bounds_a_call_by_weight) {
    env = (JobEnv){{NULL, NULL, 0}, NULL, 0, 4, 8, NULL};
    ServeQueue *q = queue_start(0.2);
    FakeJob gate, j[3];
    fake(&j[0], 1, 1, 5);
    j[0].job.weight = 3;  // 2 sentences a call (6 rows of 8)
    fake(&j[1], 2, 2, 2);
    j[1].job.weight = 20;  // more than max_rows: one sentence a call
    fake(&j[2], 3, 1, 1);
    j[2].job.weight = 2;  // joins job 1's first call: 6 + 2 rows
    post_gated(q, &gate, j, 3);
    for (int k = 0; k < 3; k++) expect_answered(&j[k]);
    cr_assert_eq(rec.calls, 6);
    expect_call(1, (int[]){1, 3}, 2);
    expect_call(2, (int[]){2}, 1);
    expect_call(3, (int[]){1}, 1);
    expect_call(4, (int[]){2}, 1);
    expect_call(5, (int[]){1}, 1);
    size_t want[6] = {1, 3, 1, 2, 1, 1};
    for (int c = 0; c < 6; c++) cr_assert_eq(rec.sentences[c], want[c], "call %d: %zu sentences", c, rec.sentences[c]);
    queue_stop(q);
}
