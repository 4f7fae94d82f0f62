// serve/queue.h — dynamic batching for `nmt serve`: requests that arrive
// together run together. One worker thread owns the model; request threads
// submit jobs and wait. A job is of a kind (JobKind: translation today,
// serve/translate_job.h) that says which waiting jobs can run in one call
// and runs them. The first waiting job opens a window (a few milliseconds,
// or until max_batch sentences of its group wait); then every waiting job of
// its group is run in one call (up to max_batch sentences, the first job
// always); the others wait their turn, in order.
#ifndef NMT_SERVE_QUEUE_H
#define NMT_SERVE_QUEUE_H

#include <stddef.h>
#include "model/model.h"
#include "text/tokenizer.h"

// What every kind runs with: the model the worker thread owns.
typedef struct {
    Model *m;
    const Tokenizer *t;
    int max_src;          // source tokens kept
    size_t max_batch;     // sentences run together
} JobEnv;

typedef struct ServeJob ServeJob;

typedef struct JobKind {
    const char *name;
    // Whether waiting jobs a and b (both of this kind) can run in one call.
    int (*same_group)(const ServeJob *a, const ServeJob *b);
    // Runs jobs[0..n) (one group, in arrival order) in one call and leaves
    // each one's results in it, or its rc and error (serve_job_fail).
    void (*run)(ServeJob *const *jobs, size_t n, const JobEnv *env);
} JobKind;

// The queue's part of a job: a kind's job struct begins with it.
struct ServeJob {
    const JobKind *kind;
    size_t n;             // sentences (what max_batch counts)
    int rc;               // once done: NMT_OK, or the error and why
    char error[256];
    int done;             // the queue's
    ServeJob *next;
};

// Marks j failed with rc and this thread's error message (err_msg).
void serve_job_fail(ServeJob *j, int rc);

typedef struct ServeQueue ServeQueue;

// Starts the worker thread. window_s: how long the first waiting job waits
// for company.
ServeQueue *queue_start(const JobEnv *env, double window_s);
// Queues j and returns at once; queue_wait(q, j) then blocks until it is done.
void queue_post(ServeQueue *q, ServeJob *j);
void queue_wait(ServeQueue *q, ServeJob *j);
// queue_post, then queue_wait: j->rc tells how it went.
void queue_submit(ServeQueue *q, ServeJob *j);
// Runs what is waiting, then stops the thread and frees the queue.
void queue_stop(ServeQueue *q);
// Sentences and batches run so far (for /info and the log).
void queue_counts(ServeQueue *q, size_t *sentences, size_t *batches);

#endif
