// decode/translate.c — the text side of translation, shared by translate, eval and
// validation during training.
#include "decode/translate.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

int translate_lines(Model *m, const Tokenizer *t, int max_src, char *const *lines, size_t n,
                    const DecodeOptions *o, const char *what, char **texts, double *scores,
                    TranslateStats *stats) {
    return translate_lines_keep(&(Ensemble){&m, NULL, 1}, t, max_src, lines, n, o, what, texts, scores, stats, NULL, NULL);
}

int translate_lines_keep(const Ensemble *e, const Tokenizer *t, int max_src, char *const *lines, size_t n,
                         const DecodeOptions *o, const char *what, char **texts, double *scores,
                         TranslateStats *stats, int **keep_src, Hypothesis *keep_hyps) {
    int **src = xcalloc(n ? n : 1, sizeof *src);
    int rc = NMT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        int cut;
        rc = tokenizer_encode_prefix(t, SIDE_SRC, lines[i], max_src, &src[i], &cut, what, (long)i + 1);
        if (!rc && cut)
            fprintf(stderr, "nmt: warning: %s:%zu: more than data.max_src_len (%d) tokens, truncated\n", what,
                    i + 1, max_src);
    }
    if (!rc) {
        size_t nb = (size_t)(o->nbest > 0 ? o->nbest : 1);
        Hypothesis *h = xcalloc(n * nb + 1, sizeof *h);
        double t0 = now_seconds();
        rc = translate_ensemble_ids(e, src, n, o, h);
        if (rc) err_prefix("%s", what);  // the message names the input too
        if (stats) {
            stats->sentences = n;
            stats->seconds = now_seconds() - t0;
            stats->tokens = 0;
        }
        for (size_t i = 0; i < n * nb; i++) {
            if (rc) {  // nothing is handed over
                arrfree(h[i].ids);
                continue;
            }
            // Empty input lines give empty output lines.
            texts[i] = arrlen(src[i / nb]) ? tokenizer_decode(t, h[i].ids, (size_t)arrlen(h[i].ids)) : xstrdup("");
            if (scores) scores[i] = h[i].score;
            if (stats && i % nb == 0) stats->tokens += (size_t)arrlen(h[i].ids) + 1;  // EOS: chosen or forced, a step either way
            if (keep_hyps) keep_hyps[i] = h[i];
            else arrfree(h[i].ids);
        }
        free(h);
    }
    for (size_t i = 0; i < n; i++) {
        if (!rc && keep_src) keep_src[i] = src[i];
        else arrfree(src[i]);
    }
    free(src);
    return rc;
}
