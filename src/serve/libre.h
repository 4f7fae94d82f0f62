// serve/libre.h — LibreTranslate's POST /translate and POST /detect, from a
// checked request (request.h) to the answer's JSON, the HTTP side aside.
// A request names its source and target (both may be left out when one
// model is served); "source": "auto" detects each text's language among the
// sources of the models into the target and the target itself (a text found
// to be in the target, or a source equal to the target, comes back as it
// is, as LibreTranslate does). Each text is cut into sentences
// (segments.h); the sentences for each model run as one job of the queue,
// and each text is put back together: its translation, its alternatives
// (the k-th hypotheses of its sentences), and its score (the sum of its
// sentences').
//   {"translatedText", ["alternatives"], ["detectedLanguage": {"confidence",
//    "language"}], "scores", ["alternative_scores"], ["attention"]}
// with a list under each key when "q" was a list.
#ifndef NMT_SERVE_LIBRE_H
#define NMT_SERVE_LIBRE_H

#include "serve/models.h"
#include "serve/queue.h"
#include "serve/request.h"

#include <cjson/cJSON.h>

typedef struct {
    const Served *models;
    ServeQueue *q;
    int max_sentences, max_work;  // the request's sentences, once its texts are cut
    double deadline;              // now_seconds() by which the answer is due (0: none)
    int (*gone)(void *arg);       // whether the client has gone (may be NULL)
    void *arg;
} LibreCtx;

typedef struct {
    unsigned status;     // 200 with json; else error says why
    cJSON *json;
    char error[512];
    int cancel;          // JOB_* when decoding was cancelled (JOB_GONE: nobody to answer)
    char why[256];       // then the queue's words for it,
    size_t sentences, decoded;  // and how far the decoding had gone
} LibreReply;

void libre_translate(const LibreCtx *c, const Ask *a, LibreReply *r);
// POST /detect {"q": "text"}: [{"confidence", "language"}], most likely first.
cJSON *libre_detect(const Served *models, const char *text);

#endif
