// serve/translate_job.h — translation as a serve job kind (queue.h): jobs
// with the same decoding options run together in one translate_lines call
// (batches of max_batch); translations are batch-independent, so each
// sentence comes back exactly as `nmt translate` prints it. An attention map
// force-decodes the best hypothesis already decoded (attention_map_forced).
#ifndef NMT_SERVE_TRANSLATE_JOB_H
#define NMT_SERVE_TRANSLATE_JOB_H

#include "decode/attnmap.h"
#include "decode/search.h"
#include "serve/queue.h"

typedef struct {
    ServeJob job;             // first: the queue's part (job.n sentences)
    // in: the sentences (valid UTF-8, no line breaks) and how to decode them
    char *const *lines;
    DecodeOptions o;          // decode_defaults() with the request's beam and n-best
    int attention;
    // out, once done without error: n * nbest texts (best first per
    // sentence) and their scores; with attention, one map per sentence
    // (allocated by translate_job_init, filled call by call)
    char **texts;
    double *scores;
    AttnMap *maps;
} TranslateJob;

extern const JobKind TRANSLATE_JOB;

// A job of n lines (not copied) on env's model (env outlives the job) with
// the default options but beam and nbest.
void translate_job_init(TranslateJob *tj, const JobEnv *env, char *const *lines, size_t n, int beam, int nbest,
                        int attention);
// Frees the results (not the lines).
void translate_job_free(TranslateJob *tj);

#endif
