// serve/libre.c — LibreTranslate's /translate and /detect (libre.h).
#include "serve/libre.h"
#include "serve/segments.h"
#include "serve/translate_job.h"
#include "common/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const ServedModel *model;   // NULL: the text comes back as it is
    Segments seg;
    const char *lang;           // detected ("source": "auto"), with its confidence
    double conf;
    size_t first;               // its first sentence in its model's job
} Text;

static void fail(LibreReply *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(LibreReply *r, unsigned status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->status = status;
}

static const char *given(const char *s) { return s && *s ? s : NULL; }

// The source and target of the request, each checked (when given) against
// the languages served; when left out, the only model's.
static int languages(const Served *s, const Ask *a, const char **src, const char **tgt, LibreReply *r) {
    *src = given(a->source);
    *tgt = given(a->target);
    const ServedModel *only = served_find(s, NULL, NULL);
    if (a->opennmt && !only) return fail(r, 400, "the OpenNMT-py shape names no languages and this server has several models; send LibreTranslate's {\"q\", \"source\", \"target\"}"), 0;
    if (!*tgt && !only) return fail(r, 400, "Invalid request: missing target parameter"), 0;
    if (!*src && !only) return fail(r, 400, "Invalid request: missing source parameter"), 0;
    if (!*tgt) *tgt = only->tgt;
    if (!*src) *src = only->src;
    if (**src && strcmp(*src, "auto") && !served_knows(s, *src)) return fail(r, 400, "%s is not supported", *src), 0;
    if (**tgt && !served_knows(s, *tgt)) return fail(r, 400, "%s is not supported", *tgt), 0;
    if (!strcmp(*src, "auto") && !**tgt)
        return fail(r, 400, "\"source\": \"auto\" needs the model's languages (start the server with --languages SRC:TGT)"), 0;
    return 1;
}

// Each text's model (or none: it comes back as it is).
static int route(const LibreCtx *c, const Ask *a, Text *t, LibreReply *r) {
    const char *src, *tgt;
    if (!languages(c->models, a, &src, &tgt, r)) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const char *from = src;
        if (!strcmp(src, "auto")) {
            served_detect(c->models, a->lines[i], tgt, &t[i].lang, &t[i].conf, 1);
            from = t[i].lang;
        }
        if (!strcmp(from, tgt) && *tgt) continue;
        t[i].model = served_find(c->models, from, tgt);
        if (!t[i].model)
            return fail(r, 400, "%s (%s) is not available as a target language from %s (%s)", lang_name(tgt), tgt,
                        lang_name(from), from), 0;
    }
    return 1;
}

// The jobs' lines: each model's sentences, text by text.
static char **model_lines(const Ask *a, Text *t, const ServedModel *m, size_t *n) {
    *n = 0;
    for (size_t i = 0; i < a->n; i++)
        if (t[i].model == m) *n += t[i].seg.sentences;
    if (!*n) return NULL;
    char **lines = xcalloc(*n + 1, sizeof *lines);
    size_t at = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (t[i].model != m) continue;
        t[i].first = at;
        for (size_t k = 0; k < t[i].seg.n; k++)
            if (t[i].seg.seg[k].sentence) lines[at++] = t[i].seg.seg[k].text;
    }
    return lines;
}

// Posts a job per model with sentences and waits for them all; the first
// cancellation cancels the rest. Returns 0 with r set when one failed.
static int decode(const LibreCtx *c, TranslateJob *jobs, char ***lines, LibreReply *r) {
    size_t nm = c->models->n;
    for (size_t k = 0; k < nm; k++)
        if (lines[k]) queue_post(c->q, &jobs[k].job);
    int ok = 1;
    for (size_t k = 0; k < nm; k++) {
        if (!lines[k]) continue;
        int why = queue_wait_for(c->q, &jobs[k].job, r->cancel ? 1e-9 : c->deadline, c->gone, c->arg);
        if (why && !r->cancel) {
            r->cancel = why;
            snprintf(r->why, sizeof r->why, "%s", jobs[k].job.error);
        }
        r->sentences += jobs[k].job.n;
        r->decoded += jobs[k].job.from;
        if (!why && jobs[k].job.rc && ok) fail(r, 500, "%s", jobs[k].job.error);
        ok &= !why && !jobs[k].job.rc;
    }
    return ok;
}

// ---------------------------------------------------------------- the answer

static cJSON *attention_json(const AttnMap *m) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "source", cJSON_CreateStringArray(m->cols, (int)m->S));
    cJSON_AddItemToObject(j, "target", cJSON_CreateStringArray(m->rows, (int)m->T));
    float *mean = attention_map_mean(m);
    cJSON *w = cJSON_AddArrayToObject(j, "weights");
    for (size_t t = 0; t < m->T; t++) {
        cJSON *row = cJSON_CreateArray();
        for (size_t s = 0; s < m->S; s++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber(round((double)mean[t * m->S + s] * 1e4) / 1e4));
        cJSON_AddItemToArray(w, row);
    }
    free(mean);
    return j;
}

// Text i's k-th translation (its sentences' k-th hypotheses) and its score.
static char *text_version(const Text *t, const Ask *a, size_t i, const TranslateJob *j, size_t k, double *score) {
    *score = 0;
    if (!t->model) return xstrdup(a->lines[i]);
    size_t nb = (size_t)a->nbest, n = t->seg.sentences;
    char **tr = xcalloc(n + 1, sizeof *tr);
    for (size_t s = 0; s < n; s++) {
        tr[s] = j->texts[(t->first + s) * nb + k];
        *score += j->scores[(t->first + s) * nb + k];
    }
    char *text = segments_join(&t->seg, tr);
    free(tr);
    return text;
}

// Whether each sentence of text t has a k-th hypothesis (a search may find
// fewer than n-best: the missing ones score -inf and are not alternatives).
static int found(const Text *t, const TranslateJob *j, size_t nb, size_t k) {
    for (size_t s = 0; s < t->seg.sentences; s++)
        if (j->scores[(t->first + s) * nb + k] == -INFINITY) return 0;
    return 1;
}

// Text i's part of the answer, added under each key of obj (as the value for
// one text, appended to lists for several).
static void add_text(cJSON *obj, const Ask *a, const Text *t, size_t i, const TranslateJob *j) {
    size_t nb = (size_t)a->nbest;
    double score;
    char *text = text_version(t, a, i, j, 0, &score);
    cJSON *items[6] = {cJSON_CreateString(text), NULL, NULL, cJSON_CreateNumber(score), NULL, NULL};
    free(text);
    const char *keys[6] = {"translatedText", "alternatives", "detectedLanguage", "scores", "alternative_scores", "attention"};
    if (nb > 1 || a->alternatives) {
        items[1] = cJSON_CreateArray();
        items[4] = cJSON_CreateArray();
        for (size_t k = 1; t->model && k < nb && found(t, j, nb, k); k++) {
            char *alt = text_version(t, a, i, j, k, &score);
            cJSON_AddItemToArray(items[1], cJSON_CreateString(alt));
            cJSON_AddItemToArray(items[4], cJSON_CreateNumber(score));
            free(alt);
        }
    }
    if (t->lang) {
        items[2] = cJSON_CreateObject();
        cJSON_AddNumberToObject(items[2], "confidence", round(t->conf * 10) / 10);
        cJSON_AddStringToObject(items[2], "language", t->lang);
    }
    if (a->attention && t->model) items[5] = attention_json(&j->maps[t->first]);
    for (int k = 0; k < 6; k++) {
        if (!items[k]) continue;
        if (!a->many) {
            cJSON_AddItemToObject(obj, keys[k], items[k]);
            continue;
        }
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, keys[k]);
        if (!arr) arr = cJSON_AddArrayToObject(obj, keys[k]);
        cJSON_AddItemToArray(arr, items[k]);
    }
}

static cJSON *opennmt_json(const Ask *a, const Text *t, const TranslateJob *j) {
    cJSON *outer = cJSON_CreateArray(), *inner = cJSON_CreateArray();
    for (size_t i = 0; i < a->n; i++) {
        double score;
        char *text = text_version(&t[i], a, i, j, 0, &score);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "src", a->lines[i]);
        cJSON_AddStringToObject(e, "tgt", text);
        cJSON_AddNumberToObject(e, "n_best", 1);
        cJSON_AddNumberToObject(e, "pred_score", score);
        cJSON_AddItemToArray(inner, e);
        free(text);
    }
    cJSON_AddItemToArray(outer, inner);
    return outer;
}

static cJSON *answer_json(const LibreCtx *c, const Ask *a, const Text *t, const TranslateJob *jobs) {
    if (a->opennmt) return opennmt_json(a, t, &jobs[0]);
    cJSON *obj = cJSON_CreateObject();
    if (a->many && a->n == 0) cJSON_AddArrayToObject(obj, "translatedText");
    for (size_t i = 0; i < a->n; i++)
        add_text(obj, a, &t[i], i, t[i].model ? &jobs[t[i].model - c->models->m] : NULL);
    return obj;
}

// ---------------------------------------------------------------- the flow

// Cuts the texts and checks the sentences against the limits.
static int cut(const LibreCtx *c, const Ask *a, Text *t, LibreReply *r) {
    if (a->attention && a->html) return fail(r, 400, "\"attention\" takes plain text (\"format\": \"text\")"), 0;
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ServedModel *m = t[i].model;
        if (a->attention && m && m->ms.n > 1)
            return fail(r, 400, "\"attention\" shows one model's, and %s%s%s is an ensemble of %zu", m->src,
                        m->src[0] ? " -> " : "this server's model", m->tgt, m->ms.n), 0;
        segments_cut(&t[i].seg, a->lines[i], a->html);
        if (t[i].model) n += t[i].seg.sentences;
    }
    if (n > (size_t)c->max_sentences)
        return fail(r, 413, "%zu sentences (the texts cut at line breaks), more than this server's %d (--max-sentences)",
                    n, c->max_sentences), 0;
    double work = (double)n * a->beam * a->nbest;
    if (work > (double)c->max_work)
        return fail(r, 413, "%zu sentences x beam %d x n-best %d = %.0f, more than this server's budget of %d (--max-work)",
                    n, a->beam, a->nbest, work, c->max_work), 0;
    return 1;
}

void libre_translate(const LibreCtx *c, const Ask *a, LibreReply *r) {
    memset(r, 0, sizeof *r);
    size_t nm = c->models->n;
    Text *t = xcalloc(a->n + 1, sizeof *t);
    TranslateJob *jobs = xcalloc(nm, sizeof *jobs);
    char ***lines = xcalloc(nm, sizeof *lines);
    if (route(c, a, t, r) && cut(c, a, t, r)) {
        for (size_t k = 0; k < nm; k++) {
            size_t n;
            lines[k] = model_lines(a, t, &c->models->m[k], &n);
            translate_job_init(&jobs[k], &c->models->m[k].env, lines[k], n, a->beam, a->nbest, a->attention);
        }
        if (decode(c, jobs, lines, r)) {
            r->status = 200;
            r->json = answer_json(c, a, t, jobs);
        }
        for (size_t k = 0; k < nm; k++) translate_job_free(&jobs[k]);
    }
    for (size_t k = 0; k < nm; k++) free(lines[k]);
    for (size_t i = 0; i < a->n; i++) segments_free(&t[i].seg);
    free(lines);
    free(jobs);
    free(t);
}

cJSON *libre_detect(const Served *models, const char *text) {
    size_t max = 2 * models->n + 1;
    const char **codes = xcalloc(max, sizeof *codes);
    double *conf = xcalloc(max, sizeof *conf);
    size_t n = served_detect(models, text, NULL, codes, conf, max);
    cJSON *list = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "confidence", round(conf[k] * 10) / 10);
        cJSON_AddStringToObject(e, "language", codes[k]);
        cJSON_AddItemToArray(list, e);
    }
    free(codes);
    free(conf);
    return list;
}
