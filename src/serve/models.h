// serve/models.h — the models one server serves, each for a language pair
// (`--model de-en=A.ckpt`, or one `--checkpoint` with the languages it
// records or `--languages`), all decoded by the one worker thread of the
// queue. Which model answers a source and target, what GET /languages lists,
// and which language a text is in (for "source": "auto" and POST /detect:
// the character profiles of each model's training text that its checkpoint
// carries, text/langid.h).
#ifndef NMT_SERVE_MODELS_H
#define NMT_SERVE_MODELS_H

#include "decode/ensemble.h"
#include "serve/queue.h"

#include <cjson/cJSON.h>

enum { LANG_CODE_MAX = 16 };

typedef struct {
    const char *src, *tgt;   // the pair asked for ("" or NULL: the checkpoint's)
    const char *path;        // a checkpoint, or an ensemble's: FILE,FILE,...
    const char *weights;     // an ensemble's weights, "W1,W2,..." (NULL: equal)
} ModelSpec;

typedef struct {
    char src[LANG_CODE_MAX], tgt[LANG_CODE_MAX];  // "" when unknown (one model, no languages)
    const char *path;
    Members ms;     // the checkpoint, or an ensemble's
    Loaded *l;      // the first: its tokenizer and config serve them all
    JobEnv env;
} ServedModel;

typedef struct {
    ServedModel *m;
    size_t n;
} Served;

// "de-en" or "de:en" (codes as config_lang_code_ok takes them) into src and tgt (each LANG_CODE_MAX); 0 when it is not a pair of codes.
int lang_pair_parse(const char *pair, char *src, char *tgt);
// The English name of a language code (the code itself when not known).
const char *lang_name(const char *code);

// Loads every model (int8: quantized at load; an ensemble's checkpoints
// must share one vocabulary, decode/ensemble.h); each decodes batches of
// max_batch sentences of the default beam. A pair given that disagrees with
// the checkpoint's languages, or a pair served twice: NMT_ERR_INPUT naming
// them. On error nothing is left loaded.
int served_load(Served *s, const ModelSpec *specs, size_t n, int int8, int max_batch, int beam);
void served_free(Served *s);
// The model translating src into tgt, or NULL; with src and tgt NULL, the
// only model (NULL when there are several).
const ServedModel *served_find(const Served *s, const char *src, const char *tgt);
// Whether code is a source or target of some model.
int served_knows(const Served *s, const char *code);
// GET /languages: [{"code", "name", "targets"}] for every language served.
cJSON *served_languages(const Served *s);
// The languages text may be in, most likely first, with their confidence in
// percent: among the candidates (target NULL: every language served; else
// the sources of the models into target, and target itself), ranked by
// their profiles; candidates without one are ranked only when none has one
// (then equal). Returns how many (at most max) were written.
size_t served_detect(const Served *s, const char *text, const char *target, const char **codes, double *conf,
                     size_t max);

#endif
