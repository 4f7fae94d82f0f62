// serve/queue.h — dynamic batching for `nmt serve`: requests that arrive
// together run together. One worker thread decodes, one call at a time, for
// every model the server holds (so two models never share the cores at
// once); request threads submit jobs and wait. Each job names its model and
// limits (its JobEnv); jobs of different envs never run in one call. A job
// is of a kind (JobKind: translation today, serve/translate_job.h) that says
// which waiting jobs can run in one call and runs them. The first waiting
// job waits for company until a window (a few milliseconds) from its
// arrival has passed, or max_batch sentences of its group wait: a job that
// arrived while a call ran has had its window and runs as soon as the call
// ends. Then the waiting jobs of its group that fit are run in one call (up
// to its env's max_batch sentences, and max_rows sentences x weight: of the
// first job, as many of its next sentences as fit, one at least); the
// others wait their turn, in order. A job with sentences left goes back to
// the end of the queue, so a long request delays the others by one call at
// most. A waiter may cancel
// its job (its client gone, its deadline passed; or every job, the server
// stopping): a waiting job leaves the queue, a running one stops after its
// call.
#ifndef NMT_SERVE_QUEUE_H
#define NMT_SERVE_QUEUE_H

#include <stddef.h>
#include "decode/search.h"
#include "model/model.h"
#include "text/tokenizer.h"

// What a job runs with: a model the server holds, and its limits (set by the
// poster; it outlives the queue).
typedef struct {
    Ensemble e;           // the model, or the models decoded as one
    const Tokenizer *t;
    int max_src;          // source tokens kept
    size_t max_batch;     // sentences run together (0 is 1)
    size_t max_rows;      // and their weights together (0: no limit; one sentence always runs)
    DecodeScratch *scratch;  // the decoder's buffers kept between this model's calls (NULL: none)
} JobEnv;

typedef struct ServeJob ServeJob;

typedef struct JobKind {
    const char *name;
    // Whether waiting jobs a and b (both of this kind) can run in one call.
    int (*same_group)(const ServeJob *a, const ServeJob *b);
    // Runs sentences [from, from + take) of each of jobs[0..n) (one group, in
    // arrival order, all of one env: jobs[0]->env) in one call and leaves
    // their results in the job, or its rc and error (serve_job_fail).
    void (*run)(ServeJob *const *jobs, size_t n);
} JobKind;

// Why a job was cancelled (ServeJob.cancel).
enum { JOB_RUNS = 0, JOB_GONE = 1, JOB_DEADLINE = 2, JOB_STOPPING = 3 };

// The queue's part of a job: a kind's job struct begins with it.
struct ServeJob {
    const JobKind *kind;
    const JobEnv *env;    // the model and limits it runs on (jobs of two envs never run together)
    size_t n;             // sentences (what max_batch counts)
    size_t weight;        // the work of one (what max_rows counts; 0 is 1): a translation's beam
    size_t from, take;    // the queue's: sentences done, and those of the call running
    double posted;        // the queue's: when it was posted (now_seconds)
    int rc;               // once done: NMT_OK, or the error and why
    char error[256];
    int cancel;           // once done: JOB_RUNS, or why it was cancelled (then rc is set too)
    int done;             // the queue's
    ServeJob *next;
};

// Marks j failed with rc and this thread's error message (err_msg).
void serve_job_fail(ServeJob *j, int rc);

typedef struct ServeQueue ServeQueue;

// Starts the worker thread. window_s: how long the first waiting job waits
// for company.
ServeQueue *queue_start(double window_s);
// Queues j and returns at once; queue_wait(q, j) then blocks until it is done.
void queue_post(ServeQueue *q, ServeJob *j);
void queue_wait(ServeQueue *q, ServeJob *j);
// queue_post, then queue_wait: j->rc tells how it went.
void queue_submit(ServeQueue *q, ServeJob *j);
// queue_wait, but every 50 ms: past deadline (now_seconds(); 0: none) the job
// is cancelled as JOB_DEADLINE, and when gone(arg) says so (gone may be
// NULL), as JOB_GONE; a cancelled job is answered once its call running, if
// any, is over. Returns j->cancel.
int queue_wait_for(ServeQueue *q, ServeJob *j, double deadline, int (*gone)(void *arg), void *arg);
// Cancels every job, waiting or running, as JOB_STOPPING, and every job
// posted from now on.
void queue_cancel_all(ServeQueue *q);
// Runs what is waiting, then stops the thread and frees the queue.
void queue_stop(ServeQueue *q);
// Sentences and batches run so far (for /info and the log).
void queue_counts(ServeQueue *q, size_t *sentences, size_t *batches);

#endif
