// serve/queue.c — the worker thread and its queue (queue.h); what a job does
// is its kind's.
#include "serve/queue.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ServeQueue {
    double window_s;
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
    ServeJob *head;  // FIFO
    ServeJob *running;  // the group of the call running (its jobs linked by next)
    int stopping;
    int closed;      // queue_cancel_all: a job posted from now on is cancelled at once
    double call_end; // when the last call ended (now_seconds)
    size_t sentences, batches;
    pthread_t thread;
};

// Whether a and b can run in one call: the same model and limits, the same
// kind, and its same group.
static int together(const ServeJob *a, const ServeJob *b) {
    return a->env == b->env && a->kind == b->kind && a->kind->same_group(a, b);
}

// The sentences a call of j's env holds at most (at least 1).
static size_t max_batch(const ServeJob *j) {
    return j->env->max_batch ? j->env->max_batch : 1;
}

void serve_job_fail(ServeJob *j, int rc) {
    j->rc = rc;
    snprintf(j->error, sizeof j->error, "%s", err_msg());
}

// Waiting sentences that could join the first job.
static size_t waiting_like_first(const ServeQueue *q) {
    size_t n = 0;
    for (const ServeJob *j = q->head; j; j = j->next)
        if (together(j, q->head)) n += j->n - j->from;
    return n;
}

static void append(ServeQueue *q, ServeJob *j) {
    j->next = NULL;
    ServeJob **p = &q->head;
    while (*p) p = &(*p)->next;
    *p = j;
}

// Done, as cancelled for why (which stays the first reason given). Under the lock.
static void cancelled(ServeJob *j, int why) {
    if (!j->cancel) j->cancel = why;
    j->rc = NMT_ERR_RUNTIME;
    snprintf(j->error, sizeof j->error, "%s",
             j->cancel == JOB_DEADLINE ? "cancelled: past its deadline"
             : j->cancel == JOB_GONE   ? "cancelled: the client has gone"
                                       : "cancelled: the server is stopping");
}

// Cancels j for why: out of the queue and done if it waits; if it runs, marked
// (the worker ends it after its call). Under the lock.
static void cancel_locked(ServeQueue *q, ServeJob *j, int why) {
    for (ServeJob **p = &q->head; *p; p = &(*p)->next) {
        if (*p != j) continue;
        *p = j->next;
        cancelled(j, why);
        j->done = 1;
        pthread_cond_broadcast(&q->finished);
        return;
    }
    if (!j->cancel) j->cancel = why;
}

// The moment t (now_seconds(): the monotonic clock, which the queue's
// conditions wait on) as a pthread_cond_timedwait deadline.
static struct timespec deadline_at(double t) {
    if (t < 0) t = 0;
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

static size_t weight(const ServeJob *j) {
    return j->weight ? j->weight : 1;
}

// How many of j's sentences left fit beside n sentences of the given rows
// (in a call of j's env).
static size_t fits(const ServeJob *j, size_t n, size_t rows) {
    size_t left = j->n - j->from, cap = max_batch(j), max_rows = j->env->max_rows;
    size_t room = n < cap ? cap - n : 0;
    if (max_rows) {
        size_t by_rows = rows < max_rows ? (max_rows - rows) / weight(j) : 0;
        if (by_rows < room) room = by_rows;
    }
    return left < room ? left : room;
}

// Takes the first job (its next max_batch sentences and max_rows rows at
// most, one sentence at least) and every waiting job of its group whose
// sentences left fit beside; the others stay in order. Under the lock.
static ServeJob *take_group(ServeQueue *q) {
    ServeJob *all = q->head, *group = NULL, **gtail = &group, **rtail = &q->head;
    size_t n = 0, rows = 0;
    q->head = NULL;
    while (all) {
        ServeJob *j = all;
        all = j->next;
        j->next = NULL;
        size_t left = j->n - j->from, take = fits(j, n, rows);
        if (group && !(together(j, group) && take == left)) {
            *rtail = j;
            rtail = &j->next;
            continue;
        }
        j->take = group || take || !left ? take : 1;
        *gtail = j;
        gtail = &j->next;
        n += j->take;
        rows += j->take * weight(j);
    }
    return group;
}

// Runs a group in one call (its kind's); then a job with sentences left (not
// failed, not cancelled) goes back to the end of the queue, and the others'
// waiters are woken.
static void run_group(ServeQueue *q, ServeJob *group) {
    size_t n = 0, count = 0;
    for (ServeJob *j = group; j; j = j->next) n += j->take, count++;
    ServeJob **jobs = xcalloc(count, sizeof *jobs);
    count = 0;
    for (ServeJob *j = group; j; j = j->next) jobs[count++] = j;
    err_clear();  // this thread's errors are per group
    group->kind->run(jobs, count);
    pthread_mutex_lock(&q->mu);
    q->running = NULL;
    q->call_end = now_seconds();
    q->sentences += n;
    q->batches += n > 0;
    for (size_t k = 0; k < count; k++) {
        ServeJob *j = jobs[k];
        j->from += j->take;
        j->take = 0;
        if (!j->rc && j->cancel) cancelled(j, j->cancel);
        if (!j->rc && j->from < j->n) append(q, j);
        else j->done = 1;
    }
    pthread_cond_broadcast(&q->finished);
    pthread_mutex_unlock(&q->mu);
    free(jobs);
}

static void *worker_main(void *arg) {
    ServeQueue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->work, &q->mu);
        if (!q->head) break;  // stopping, nothing left
        // A window for company from the moment the first job came, unless the
        // batch is full or the server stops; none for a job that came while
        // the last call ran (its company was gathered meanwhile) or is back
        // for its next piece. The window is the first job's: when it is
        // cancelled meanwhile, the next one waits from its own arrival.
        while (q->head && !q->head->from && q->head->posted > q->call_end && !q->stopping &&
               waiting_like_first(q) < max_batch(q->head)) {
            double end = q->head->posted + q->window_s;
            if (now_seconds() >= end) break;
            struct timespec until = deadline_at(end);
            pthread_cond_timedwait(&q->work, &q->mu, &until);
        }
        if (!q->head) continue;  // cancelled while it waited
        ServeJob *group = take_group(q);
        q->running = group;
        pthread_mutex_unlock(&q->mu);
        run_group(q, group);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

ServeQueue *queue_start(double window_s) {
    ServeQueue *q = xcalloc(1, sizeof *q);
    q->window_s = window_s;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&q->work, &monotonic);
    pthread_cond_init(&q->finished, &monotonic);
    pthread_condattr_destroy(&monotonic);
    if (pthread_create(&q->thread, NULL, worker_main, q) != 0) {
        fprintf(stderr, "nmt: internal error: cannot start the serve worker thread\n");
        abort();
    }
    return q;
}

void queue_post(ServeQueue *q, ServeJob *j) {
    if (!j->env) {
        fprintf(stderr, "nmt: internal error: a serve job posted without its model (ServeJob.env)\n");
        abort();
    }
    j->done = 0;
    j->from = j->take = 0;
    j->cancel = JOB_RUNS;
    j->rc = NMT_OK;
    j->error[0] = 0;
    j->posted = now_seconds();
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        cancelled(j, JOB_STOPPING);
        j->done = 1;
    } else {
        append(q, j);
        pthread_cond_signal(&q->work);
    }
    pthread_mutex_unlock(&q->mu);
}

void queue_wait(ServeQueue *q, ServeJob *j) {
    queue_wait_for(q, j, 0, NULL, NULL);
}

int queue_wait_for(ServeQueue *q, ServeJob *j, double deadline, int (*gone)(void *arg), void *arg) {
    pthread_mutex_lock(&q->mu);
    while (!j->done) {
        if (!deadline && !gone) {
            pthread_cond_wait(&q->finished, &q->mu);
            continue;
        }
        struct timespec until = deadline_at(now_seconds() + 0.05);
        pthread_cond_timedwait(&q->finished, &q->mu, &until);
        if (j->done || j->cancel) continue;  // cancelled: its call ends soon
        if (deadline && now_seconds() >= deadline) cancel_locked(q, j, JOB_DEADLINE);
        else if (gone && gone(arg)) cancel_locked(q, j, JOB_GONE);
    }
    pthread_mutex_unlock(&q->mu);
    return j->cancel;
}

void queue_submit(ServeQueue *q, ServeJob *j) {
    queue_post(q, j);
    queue_wait(q, j);
}

void queue_cancel_all(ServeQueue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    while (q->head) cancel_locked(q, q->head, JOB_STOPPING);
    for (ServeJob *j = q->running; j; j = j->next)
        if (!j->cancel) j->cancel = JOB_STOPPING;
    pthread_mutex_unlock(&q->mu);
}

void queue_stop(ServeQueue *q) {
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->finished);
    free(q);
}

void queue_counts(ServeQueue *q, size_t *sentences, size_t *batches) {
    pthread_mutex_lock(&q->mu);
    *sentences = q->sentences;
    *batches = q->batches;
    pthread_mutex_unlock(&q->mu);
}
