// decode/ensemble.c — loading an ensemble's checkpoints and checking they fit together.
#include "decode/ensemble.h"
#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Member k against the first: the same tokenizer bytes, the same languages.
static int same_vocabulary(const Loaded *a, const Loaded *b, const char *pa, const char *pb) {
    size_t la, lb;
    char *sa = tokenizer_serialize(&a->t, &la), *sb = tokenizer_serialize(&b->t, &lb);
    int same = la == lb && !memcmp(sa, sb, la);
    free(sa);
    free(sb);
    if (!same)
        return err_set(NMT_ERR_INPUT, "%s: its vocabulary is not %s's: the models of an ensemble must share one "
                       "(the same BPE model or word vocabulary)", pb, pa);
    // Languages recorded by both must agree (a checkpoint from before them records none).
    if (a->c.src_lang[0] && b->c.src_lang[0] &&
        (strcmp(a->c.src_lang, b->c.src_lang) || strcmp(a->c.tgt_lang, b->c.tgt_lang)))
        return err_set(NMT_ERR_INPUT, "%s: its languages (%s -> %s) are not %s's (%s -> %s)", pb, b->c.src_lang,
                       b->c.tgt_lang, pa, a->c.src_lang, a->c.tgt_lang);
    return NMT_OK;
}

// "W1,W2,..." into n weights (each a finite number >= 0, some > 0).
static int parse_weights(const char *text, size_t n, double *w, const char *what) {
    const char *p = text;
    double sum = 0;
    for (size_t k = 0; k < n; k++) {
        char *end;
        errno = 0;
        w[k] = strtod(p, &end);
        if (end == p || errno || !isfinite(w[k]) || w[k] < 0)
            return err_set(NMT_ERR_INPUT, "%s %s: weight %zu is not a number >= 0", what, text, k + 1);
        sum += w[k];
        p = end;
        if (k + 1 < n && *p++ != ',')
            return err_set(NMT_ERR_INPUT, "%s %s: give %zu weights, one per checkpoint, separated by commas", what,
                           text, n);
    }
    if (*p)
        return err_set(NMT_ERR_INPUT, "%s %s: give %zu weights, one per checkpoint, separated by commas", what, text, n);
    if (!(sum > 0)) return err_set(NMT_ERR_INPUT, "%s %s: the weights sum to 0", what, text);
    return NMT_OK;
}

int members_load(Members *s, char *const *paths, size_t n, const char *weights, int int8) {
    memset(s, 0, sizeof *s);
    double *w = xcalloc(n, sizeof *w);
    for (size_t k = 0; k < n; k++) w[k] = 1;  // equal, unless --weights says
    int rc = weights ? parse_weights(weights, n, w, "--weights") : NMT_OK;
    if (rc) {
        free(w);
        return rc;
    }
    Loaded *l = xcalloc(n, sizeof *l);
    size_t loaded = 0;
    for (; loaded < n && !rc; loaded++) {
        if ((rc = checkpoint_load_decoding(&l[loaded], paths[loaded], int8))) break;
        if (loaded) rc = same_vocabulary(&l[0], &l[loaded], paths[0], paths[loaded]);
    }
    if (rc) {
        for (size_t k = 0; k < loaded; k++) loaded_free(&l[k]);
        free(l);
        free(w);
        return rc;
    }
    s->l = l;
    s->n = n;
    s->path = xcalloc(n, sizeof *s->path);
    for (size_t k = 0; k < n; k++) s->path[k] = xstrdup(paths[k]);
    s->m = xcalloc(n, sizeof *s->m);
    s->w = w;
    double sum = 0;
    for (size_t k = 0; k < n; k++) sum += w[k];
    for (size_t k = 0; k < n; k++) {
        s->m[k] = &l[k].m;
        s->w[k] /= sum;
    }
    s->e = (Ensemble){s->m, s->w, n};
    return NMT_OK;
}

void members_free(Members *s) {
    for (size_t k = 0; k < s->n; k++) {
        loaded_free(&s->l[k]);
        free(s->path[k]);
    }
    free(s->l);
    free(s->path);
    free(s->m);
    free(s->w);
    memset(s, 0, sizeof *s);
}
