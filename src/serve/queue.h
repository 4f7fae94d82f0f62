// serve/queue.h — dynamic batching for `nmt serve`: requests that arrive
// together are decoded together. One decoder thread owns the model; request
// threads submit jobs and wait. The first waiting job opens a window (a few
// milliseconds, or until max_batch sentences wait); then every waiting job
// with the same decoding options is decoded in one translate_lines call
// (batches of max_batch). Translations are batch-independent, so each
// sentence comes back exactly as `nmt translate` prints it.
#ifndef NMT_SERVE_QUEUE_H
#define NMT_SERVE_QUEUE_H

#include <stddef.h>
#include "decode/attnmap.h"
#include "decode/search.h"
#include "model/model.h"
#include "text/tokenizer.h"

typedef struct ServeJob {
    // in: n sentences (valid UTF-8, no line breaks) and how to decode them
    char *const *lines;
    size_t n;
    int beam, nbest, attention;
    // out, once done: n * nbest texts (best first per sentence) and scores;
    // with attention, one map per sentence; rc and the error when it failed
    char **texts;
    double *scores;
    AttnMap *maps;
    int rc;
    char error[256];
    // the queue's
    int done;
    struct ServeJob *next;
} ServeJob;

typedef struct ServeQueue ServeQueue;

// Starts the decoder thread. window_s: how long the first waiting job waits
// for company.
ServeQueue *queue_start(Model *m, const Tokenizer *t, int max_src, size_t max_batch, double window_s,
                        const DecodeOptions *defaults);
// Decodes j (blocking until it is done); j->rc tells how it went.
void queue_submit(ServeQueue *q, ServeJob *j);
void serve_job_free(ServeJob *j);
// Decodes what is waiting, then stops the thread and frees the queue.
void queue_stop(ServeQueue *q);
// Sentences and batches decoded so far (for /info and the log).
void queue_counts(ServeQueue *q, size_t *sentences, size_t *batches);

#endif
