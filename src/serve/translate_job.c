// serve/translate_job.c — the translation job kind (translate_job.h).
#include "serve/translate_job.h"
#include "decode/translate.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

void translate_job_init(TranslateJob *tj, const JobEnv *env, char *const *lines, size_t n, int beam, int nbest,
                        int attention) {
    memset(tj, 0, sizeof *tj);
    tj->job.kind = &TRANSLATE_JOB;
    tj->job.env = env;
    tj->job.n = n;
    tj->job.weight = (size_t)beam;  // a sentence decodes beam rows
    tj->lines = lines;
    tj->o = decode_defaults();
    tj->o.beam = beam;
    tj->o.nbest = nbest;
    tj->attention = attention;
    // Filled piece by piece (the queue runs a long job in calls of max_batch sentences).
    tj->texts = xcalloc(n * (size_t)nbest + 1, sizeof *tj->texts);
    tj->scores = xcalloc(n * (size_t)nbest + 1, sizeof *tj->scores);
    if (attention) tj->maps = xcalloc(n + 1, sizeof *tj->maps);
}

void translate_job_free(TranslateJob *tj) {
    for (size_t i = 0; tj->texts && i < tj->job.n * (size_t)tj->o.nbest; i++) free(tj->texts[i]);
    free(tj->texts);
    free(tj->scores);
    for (size_t i = 0; tj->maps && i < tj->job.n; i++) attention_map_free(&tj->maps[i]);
    free(tj->maps);
    tj->texts = NULL;
    tj->scores = NULL;
    tj->maps = NULL;
}

// Every option but the batch (the queue's) must agree.
static int same_options(const ServeJob *a, const ServeJob *b) {
    const DecodeOptions *x = &((const TranslateJob *)a)->o, *y = &((const TranslateJob *)b)->o;
    return x->beam == y->beam && x->nbest == y->nbest && x->alpha == y->alpha && x->max_len_a == y->max_len_a &&
           x->max_len_b == y->max_len_b && x->recompute == y->recompute;
}

// What one translate_lines call over the group hands back.
typedef struct {
    size_t n, nb;             // sentences, hypotheses per sentence
    char **lines, **texts;
    double *scores;
    int **src;                // with attention: the sources and hypotheses decoded
    Hypothesis *hyps;
} Group;

// The maps of this call's sentences: each one's best hypothesis, force-decoded.
static void attention_maps(TranslateJob *tj, const Group *g, size_t at, const JobEnv *env) {
    for (size_t i = 0; i < tj->job.take && !tj->job.rc; i++) {
        const int *src = g->src[at + i], *out = g->hyps[(at + i) * g->nb].ids;
        int rc = attention_map_forced(&tj->maps[tj->job.from + i], env->e.m[0], env->t, src, (size_t)arrlen(src), out,
                                      (size_t)arrlen(out));
        if (rc) serve_job_fail(&tj->job, rc);
    }
}

// Hands each job its texts and scores (and maps); on an error, the error.
static void hand_out(ServeJob *const *jobs, size_t count, const Group *g, int rc, const JobEnv *env) {
    size_t at = 0;
    for (size_t k = 0; k < count; k++) {
        TranslateJob *tj = (TranslateJob *)jobs[k];
        if (rc) {
            serve_job_fail(&tj->job, rc);
            continue;
        }
        size_t n = tj->job.take, to = tj->job.from * g->nb;
        memcpy(tj->texts + to, g->texts + at * g->nb, n * g->nb * sizeof *tj->texts);
        memcpy(tj->scores + to, g->scores + at * g->nb, n * g->nb * sizeof *tj->scores);
        if (tj->attention) attention_maps(tj, g, at, env);
        at += n;
    }
}

static void translate_run(ServeJob *const *jobs, size_t count) {
    const TranslateJob *first = (const TranslateJob *)jobs[0];
    const JobEnv *env = first->job.env;  // the group's (the queue runs one env a call)
    DecodeOptions o = first->o;
    o.batch = env->max_batch ? (int)env->max_batch : 1;
    o.scratch = env->scratch;
    Group g = {0, (size_t)o.nbest, NULL, NULL, NULL, NULL, NULL};
    int attention = 0;
    for (size_t k = 0; k < count; k++) {
        g.n += jobs[k]->take;
        attention |= ((const TranslateJob *)jobs[k])->attention;
    }
    g.lines = xcalloc(g.n + 1, sizeof *g.lines);
    g.texts = xcalloc(g.n * g.nb + 1, sizeof *g.texts);
    g.scores = xcalloc(g.n * g.nb + 1, sizeof *g.scores);
    if (attention) {  // kept only when a map needs them
        g.src = xcalloc(g.n + 1, sizeof *g.src);
        g.hyps = xcalloc(g.n * g.nb + 1, sizeof *g.hyps);
    }
    size_t at = 0;
    for (size_t k = 0; k < count; k++)
        for (size_t i = 0; i < jobs[k]->take; i++)
            g.lines[at++] = ((const TranslateJob *)jobs[k])->lines[jobs[k]->from + i];
    int rc = translate_lines_keep(&env->e, env->t, env->max_src, g.lines, g.n, &o, "request", g.texts, g.scores, NULL,
                                  g.src, g.hyps);
    hand_out(jobs, count, &g, rc, env);
    for (size_t i = 0; g.src && i < g.n; i++) arrfree(g.src[i]);
    for (size_t i = 0; g.hyps && i < g.n * g.nb; i++) arrfree(g.hyps[i].ids);
    free(g.src);
    free(g.hyps);
    free(g.lines);
    free(g.texts);
    free(g.scores);
}

const JobKind TRANSLATE_JOB = {"translate", same_options, translate_run};
