// decode/score.c — forced decoding over batches of (source, target) pairs.
#include "decode/score.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Encodes both sides of n pairs into src[i], tgt[i] (no BOS/EOS).
static int encode_pairs(const Model *m, const Tokenizer *t, int max_src, char *const *src_lines,
                        char *const *tgt_lines, size_t n, const char *src_what, const char *tgt_what, int **src,
                        int **tgt) {
    for (size_t i = 0; i < n; i++) {
        int cut;
        int rc = tokenizer_encode_prefix(t, SIDE_SRC, src_lines[i], max_src, &src[i], &cut, src_what, (long)i + 1);
        if (rc) return rc;
        if (cut)
            fprintf(stderr, "nmt: warning: %s:%zu: more than data.max_src_len (%d) tokens, truncated\n", src_what,
                    i + 1, max_src);
        rc = tokenizer_encode(t, SIDE_TGT, tgt_lines[i], &tgt[i], tgt_what, (long)i + 1);
        if (rc) return rc;
        // Sinusoidal positions stop at the table's end (relative ones never do).
        if (!m->s.relative && arrlen(tgt[i]) + 1 > m->s.max_len)
            return err_set(NMT_ERR_INPUT, "%s:%zu: %td tokens, more than the model's %d positions", tgt_what, i + 1,
                           arrlen(tgt[i]), m->s.max_len - 1);
    }
    return NMT_OK;
}

// Scores pairs [i0, i1): one padded batch, one forward pass.
static void score_batch(Model *m, int *const *src, int *const *tgt, size_t i0, size_t i1, double *logprob,
                        size_t *ntok) {
    size_t B = i1 - i0, S = 1, T = 1;
    for (size_t i = i0; i < i1; i++) {
        if ((size_t)arrlen(src[i]) + 1 > S) S = (size_t)arrlen(src[i]) + 1;
        if ((size_t)arrlen(tgt[i]) + 1 > T) T = (size_t)arrlen(tgt[i]) + 1;
    }
    Batch b = {B, S, T, xcalloc(B * S, sizeof(int)), xcalloc(B, sizeof(int)), xcalloc(B * T, sizeof(int)),
               xcalloc(B * T, sizeof(int)), xcalloc(B, sizeof(int)), 0};
    for (size_t r = 0; r < B; r++) {  // TOK_PAD is 0: the calloc'ed tails are padding
        const int *s = src[i0 + r], *g = tgt[i0 + r];
        size_t ls = (size_t)arrlen(s), lt = (size_t)arrlen(g);
        // (an empty side is a NULL array: no memcpy from it)
        if (ls) memcpy(b.src + r * S, s, ls * sizeof(int));
        b.src[r * S + ls] = TOK_EOS;
        b.src_len[r] = (int)ls + 1;
        b.tgt_in[r * T] = TOK_BOS;
        if (lt) {
            memcpy(b.tgt_in + r * T + 1, g, lt * sizeof(int));
            memcpy(b.tgt_out + r * T, g, lt * sizeof(int));
        }
        b.tgt_out[r * T + lt] = TOK_EOS;
        b.tgt_len[r] = (int)lt + 1;
        b.ntok += lt + 1;
    }
    Acts *a = acts_create(m, B * (S > T ? S : T), S, T, 0);
    model_forward(m, a, &b, 0, 0, 0, NULL);
    const real *nll = model_row_nll(a);
    for (size_t r = 0; r < B; r++) {
        double sum = 0;
        for (size_t t = 0; t < (size_t)b.tgt_len[r]; t++) sum -= nll[r * T + t];
        logprob[i0 + r] = sum;
        ntok[i0 + r] = (size_t)b.tgt_len[r];
    }
    acts_free(a);
    free(b.src);
    free(b.src_len);
    free(b.tgt_in);
    free(b.tgt_out);
    free(b.tgt_len);
}

int score_lines(Model *m, const Tokenizer *t, int max_src, char *const *src_lines, char *const *tgt_lines, size_t n,
                size_t batch, const char *src_what, const char *tgt_what, double *logprob, size_t *ntok) {
    int **src = xcalloc(n ? n : 1, sizeof *src), **tgt = xcalloc(n ? n : 1, sizeof *tgt);
    int rc = encode_pairs(m, t, max_src, src_lines, tgt_lines, n, src_what, tgt_what, src, tgt);
    for (size_t i0 = 0; !rc && i0 < n; i0 += batch) {
        size_t i1 = i0 + batch < n ? i0 + batch : n;
        score_batch(m, src, tgt, i0, i1, logprob, ntok);
        // Finite logits give a finite log-probability: anything else is a model that overflows.
        for (size_t i = i0; !rc && i < i1; i++)
            if (!isfinite(logprob[i]))
                rc = err_set(NMT_ERR_RUNTIME, "%s:%zu: the model's score is not finite (%g): its weights overflow "
                             "float in the forward pass", src_what, i + 1, logprob[i]);
    }
    for (size_t i = 0; i < n; i++) {
        arrfree(src[i]);
        arrfree(tgt[i]);
    }
    free(src);
    free(tgt);
    return rc;
}
