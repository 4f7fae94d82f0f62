// decode.c — greedy decoding in batches with padding masks.
#include "decode.h"
#include "util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

static size_t max_out_len(const DecodeOptions *o, size_t src_len, size_t limit) {
    double n = o->max_len_a * (double)src_len + o->max_len_b;
    if (n < 1) n = 1;
    if (n > (double)limit) n = (double)limit;
    return (size_t)n;
}

void greedy_decode(Model *m, int *const *src, size_t n, const DecodeOptions *o, int **out) {
    size_t B = (size_t)(o->batch > 0 ? o->batch : 1);
    size_t limit = (size_t)m->s.max_len - 1;
    // Longest source and output over all sentences: one arena for every batch.
    size_t S = 1, T = 1;
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)arrlen(src[i]) + 1;
        if (s > S) S = s;
        size_t t = max_out_len(o, s - 1, limit) + 1;
        if (t > T) T = t;
    }
    size_t wide = S > T ? S : T;
    Acts *a = acts_create(m, B * wide, S, T, 0);
    int *bsrc = xmalloc(B * S * sizeof(int)), *slen = xmalloc(B * sizeof(int));
    int *tin = xmalloc(B * T * sizeof(int)), *tlen = xmalloc(B * sizeof(int)), *done = xmalloc(B * sizeof(int));
    size_t V = (size_t)m->s.tgt_vocab;
    for (size_t lo = 0; lo < n; lo += B) {
        size_t nb = n - lo < B ? n - lo : B, bs = 1, bt = 1;
        for (size_t r = 0; r < nb; r++) {
            size_t s = (size_t)arrlen(src[lo + r]) + 1;
            if (s > bs) bs = s;
            size_t t = max_out_len(o, s - 1, limit);
            if (t > bt) bt = t;
        }
        memset(bsrc, 0, nb * bs * sizeof(int));
        for (size_t r = 0; r < nb; r++) {
            size_t s = (size_t)arrlen(src[lo + r]);
            if (s) memcpy(bsrc + r * bs, src[lo + r], s * sizeof(int));
            bsrc[r * bs + s] = TOK_EOS;
            slen[r] = (int)s + 1;
            done[r] = 0;
            out[lo + r] = NULL;
        }
        // Step t decodes position t from the prefix of length t+1 (BOS first).
        for (size_t t = 0; t < bt; t++) {
            size_t Tcur = t + 1;
            for (size_t r = 0; r < nb; r++) {
                tin[r * Tcur] = TOK_BOS;
                for (size_t j = 0; j < t; j++) tin[r * Tcur + 1 + j] = j < (size_t)arrlen(out[lo + r]) ? out[lo + r][j] : TOK_PAD;
                tlen[r] = (int)Tcur;
            }
            Batch b = {nb, bs, Tcur, bsrc, slen, tin, NULL, tlen, 0};
            const real *logits = model_next_logits(m, a, &b);
            int live = 0;
            for (size_t r = 0; r < nb; r++) {
                if (done[r]) continue;
                const real *row = logits + r * V;
                int best = TOK_EOS;
                // Never emit pad, unk or bos; ties go to the lower id.
                for (size_t v = TOK_EOS; v < V; v++)
                    if (row[v] > row[best]) best = (int)v;
                size_t cap = max_out_len(o, (size_t)slen[r] - 1, limit);
                if (best == TOK_EOS) done[r] = 1;
                else {
                    arrput(out[lo + r], best);
                    if ((size_t)arrlen(out[lo + r]) >= cap) done[r] = 1;
                }
                live += !done[r];
            }
            if (!live) break;
        }
    }
    free(bsrc);
    free(slen);
    free(tin);
    free(tlen);
    free(done);
    acts_free(a);
}
