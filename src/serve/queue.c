// serve/queue.c — the decoder thread and its queue (queue.h).
#include "serve/queue.h"
#include "decode/translate.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ServeQueue {
    Model *m;
    const Tokenizer *t;
    int max_src;
    size_t max_batch;
    double window_s;
    DecodeOptions defaults;
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
    ServeJob *head;  // FIFO
    int stopping;
    size_t sentences, batches;
    pthread_t thread;
};

static int same_options(const ServeJob *a, const ServeJob *b) {
    return a->beam == b->beam && a->nbest == b->nbest;
}

// Waiting sentences that could join the first job.
static size_t waiting_like_first(const ServeQueue *q) {
    size_t n = 0;
    for (const ServeJob *j = q->head; j; j = j->next)
        if (same_options(j, q->head)) n += j->n;
    return n;
}

static struct timespec deadline_after(double s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(s * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    return ts;
}

// Takes the first job and every waiting job with its options, up to
// max_batch sentences (the first job always, however long); the others stay
// in order. Under the lock.
static ServeJob *take_group(ServeQueue *q) {
    ServeJob *all = q->head, *group = NULL, **gtail = &group, **rtail = &q->head;
    size_t n = 0;
    q->head = NULL;
    while (all) {
        ServeJob *j = all;
        all = j->next;
        j->next = NULL;
        if (group && !(same_options(j, group) && n + j->n <= q->max_batch)) {
            *rtail = j;
            rtail = &j->next;
            continue;
        }
        *gtail = j;
        gtail = &j->next;
        n += j->n;
    }
    return group;
}

// Decodes a group of jobs with the same options in one call.
static void decode_group(ServeQueue *q, ServeJob *group) {
    size_t n = 0;
    for (ServeJob *j = group; j; j = j->next) n += j->n;
    DecodeOptions o = q->defaults;
    o.beam = group->beam;
    o.nbest = group->nbest;
    o.batch = (int)q->max_batch;
    size_t nb = (size_t)o.nbest;
    char **lines = xcalloc(n + 1, sizeof *lines), **texts = xcalloc(n * nb + 1, sizeof *texts);
    double *scores = xcalloc(n * nb + 1, sizeof *scores);
    size_t at = 0;
    for (ServeJob *j = group; j; j = j->next)
        for (size_t i = 0; i < j->n; i++) lines[at++] = j->lines[i];
    err_clear();  // this thread's errors are per group
    int rc = translate_lines(q->m, q->t, q->max_src, lines, n, &o, "request", texts, scores, NULL);
    at = 0;
    for (ServeJob *j = group; j; j = j->next) {
        j->rc = rc;
        if (rc) snprintf(j->error, sizeof j->error, "%s", err_msg());
        j->texts = xcalloc(j->n * nb + 1, sizeof *j->texts);
        j->scores = xcalloc(j->n * nb + 1, sizeof *j->scores);
        for (size_t i = 0; !rc && i < j->n * nb; i++, at++) {
            j->texts[i] = texts[at];
            j->scores[i] = scores[at];
        }
        if (!rc && j->attention) {
            j->maps = xcalloc(j->n, sizeof *j->maps);
            for (size_t i = 0; i < j->n && !j->rc; i++) {
                j->rc = attention_map(&j->maps[i], q->m, q->t, q->max_src, j->lines[i], &o, "request");
                if (j->rc) snprintf(j->error, sizeof j->error, "%s", err_msg());
            }
        }
    }
    free(lines);
    free(texts);
    free(scores);
    pthread_mutex_lock(&q->mu);
    q->sentences += n;
    q->batches += (n + q->max_batch - 1) / q->max_batch;
    for (ServeJob *j = group; j;) {
        ServeJob *next = j->next;
        j->done = 1;
        j = next;
    }
    pthread_cond_broadcast(&q->finished);
    pthread_mutex_unlock(&q->mu);
}

static void *decoder_main(void *arg) {
    ServeQueue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->work, &q->mu);
        if (!q->head) break;  // stopping, nothing left
        // A window for company, unless the batch is full or the server stops.
        struct timespec until = deadline_after(q->window_s);
        while (!q->stopping && waiting_like_first(q) < q->max_batch)
            if (pthread_cond_timedwait(&q->work, &q->mu, &until) == ETIMEDOUT) break;
        ServeJob *group = take_group(q);
        pthread_mutex_unlock(&q->mu);
        decode_group(q, group);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

ServeQueue *queue_start(Model *m, const Tokenizer *t, int max_src, size_t max_batch, double window_s,
                        const DecodeOptions *defaults) {
    ServeQueue *q = xcalloc(1, sizeof *q);
    q->m = m;
    q->t = t;
    q->max_src = max_src;
    q->max_batch = max_batch ? max_batch : 1;
    q->window_s = window_s;
    q->defaults = *defaults;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->finished, NULL);
    if (pthread_create(&q->thread, NULL, decoder_main, q) != 0) {
        fprintf(stderr, "nmt: internal error: cannot start the decoder thread\n");
        abort();
    }
    return q;
}

void queue_submit(ServeQueue *q, ServeJob *j) {
    j->done = 0;
    j->next = NULL;
    pthread_mutex_lock(&q->mu);
    ServeJob **p = &q->head;
    while (*p) p = &(*p)->next;
    *p = j;
    pthread_cond_signal(&q->work);
    while (!j->done) pthread_cond_wait(&q->finished, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

void serve_job_free(ServeJob *j) {
    for (size_t i = 0; j->texts && i < j->n * (size_t)j->nbest; i++) free(j->texts[i]);
    free(j->texts);
    free(j->scores);
    for (size_t i = 0; j->maps && i < j->n; i++) attention_map_free(&j->maps[i]);
    free(j->maps);
    j->texts = NULL;
    j->scores = NULL;
    j->maps = NULL;
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
