// decode.c — greedy and beam search.
//
// Each sentence owns `beam` rows of the decoder state. Its live hypotheses
// sit in the first rows; at every step the best `beam - finished` candidates
// (over live rows x vocabulary) are taken: those ending in EOS are finished,
// the others live on, so the beam shrinks as hypotheses finish (as in
// Marian). With beam 1 this is exactly greedy search. A sentence also stops when no live
// hypothesis can still beat its best finished one.
#include "decode.h"
#include "decode_state.h"
#include "ops.h"
#include "util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

DecodeOptions decode_defaults(void) {
    DecodeOptions o = {1, 0.6, 1, 32, 1.5, 10, 0};
    return o;
}

static size_t max_out_len(const DecodeOptions *o, size_t src_len, size_t limit) {
    double n = o->max_len_a * (double)src_len + o->max_len_b;
    if (n < 1) n = 1;
    if (n > (double)limit) n = (double)limit;
    return (size_t)n;
}

static double length_penalty(double alpha, size_t len) {
    return alpha == 0 ? 1 : pow((5.0 + (double)len) / 6.0, alpha);
}

typedef struct {
    double score;   // cumulative log-probability
    int row, tok;
} Cand;

// Orders candidates best first; ties by row, then token (deterministic).
static int better(const Cand *a, const Cand *b) {
    if (a->score != b->score) return a->score > b->score;
    if (a->row != b->row) return a->row < b->row;
    return a->tok < b->tok;
}

// Keeps the best k candidates in top[0..*n) (insertion into a sorted array).
static void offer(Cand *top, int *n, int k, Cand c) {
    if (*n == k && !better(&c, &top[k - 1])) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && better(&c, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

// Logits provider: the incremental state, or (for tests) full recomputation.
typedef struct {
    Model *m;
    const DecodeOptions *o;
    DecodeState *state;
    Acts *acts;
    int *rsrc, *rsrc_len, *tin, *tlen;   // recompute: per-row source and prefix
    size_t S, T;
} Stepper;

static const real *step_logits(Stepper *st, const int *tokens, int *const *hist, size_t rows, size_t t) {
    if (!st->o->recompute) return model_decode_step(st->m, st->state, tokens, t);
    size_t T = t + 1;
    for (size_t r = 0; r < rows; r++) {
        st->tin[r * T] = TOK_BOS;
        // Rows of finished hypotheses have short histories: pad them.
        for (size_t j = 0; j < t; j++) st->tin[r * T + 1 + j] = j < (size_t)arrlen(hist[r]) ? hist[r][j] : TOK_PAD;
        st->tlen[r] = (int)T;
    }
    Batch b = {rows, st->S, T, st->rsrc, st->rsrc_len, st->tin, NULL, st->tlen, 0};
    return model_next_logits(st->m, st->acts, &b);
}

void translate_ids(Model *m, int *const *src, size_t n, const DecodeOptions *o, Hypothesis *out) {
    size_t K = (size_t)(o->beam > 0 ? o->beam : 1), NB = (size_t)(o->nbest > 0 ? o->nbest : 1);
    if (NB > K) NB = K;
    size_t B = (size_t)(o->batch > 0 ? o->batch : 1), V = (size_t)m->s.tgt_vocab;
    size_t limit = (size_t)m->s.max_len - 2;
    size_t S = 1, T = 1;
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)arrlen(src[i]) + 1;
        if (s > S) S = s;
        size_t t = max_out_len(o, s - 1, limit) + 1;
        if (t > T) T = t;
    }
    if (B > n) B = n ? n : 1;
    size_t R = B * K;
    Stepper st = {m, o, NULL, NULL, NULL, NULL, NULL, NULL, S, T};
    if (o->recompute) {
        size_t wide = S > T ? S : T;
        st.acts = acts_create(m, R * wide, S, T, 0);
        st.rsrc = xcalloc(R * S, sizeof(int));
        st.rsrc_len = xcalloc(R, sizeof(int));
        st.tin = xcalloc(R * T, sizeof(int));
        st.tlen = xcalloc(R, sizeof(int));
    } else {
        st.state = decode_state_create(m, B, K, S, T);
    }
    int *bsrc = xcalloc(B * S, sizeof(int)), *slen = xcalloc(B, sizeof(int));
    int *tokens = xcalloc(R, sizeof(int)), *from = xcalloc(R, sizeof(int)), *live = xcalloc(B, sizeof(int));
    double *score = xcalloc(R, sizeof(double)), *nscore = xcalloc(R, sizeof(double));
    int **hist = xcalloc(R, sizeof(int *)), **nhist = xcalloc(R, sizeof(int *));
    Hypothesis **fin = xcalloc(B, sizeof(Hypothesis *));  // stb_ds arrays of finished hypotheses
    Cand *top = xcalloc(K, sizeof(Cand)), *cands = xcalloc(K, sizeof(Cand));
    Cand *row_top = xcalloc(R * K, sizeof(Cand));  // each row's best K candidates
    int *row_n = xcalloc(R, sizeof(int));

    for (size_t lo = 0; lo < n; lo += B) {
        size_t nb = n - lo < B ? n - lo : B, bs = 1;
        for (size_t i = 0; i < nb; i++)
            if ((size_t)arrlen(src[lo + i]) + 1 > bs) bs = (size_t)arrlen(src[lo + i]) + 1;
        memset(bsrc, 0, nb * bs * sizeof(int));
        for (size_t i = 0; i < nb; i++) {
            size_t len = (size_t)arrlen(src[lo + i]);
            if (len) memcpy(bsrc + i * bs, src[lo + i], len * sizeof(int));
            bsrc[i * bs + len] = TOK_EOS;
            slen[i] = (int)len + 1;
            live[i] = 1;
            arrsetlen(fin[i], 0);
        }
        size_t rows = nb * K;
        if (o->recompute) {
            st.S = bs;
            for (size_t r = 0; r < rows; r++) {
                memcpy(st.rsrc + r * bs, bsrc + (r / K) * bs, bs * sizeof(int));
                st.rsrc_len[r] = slen[r / K];
            }
        } else {
            model_decode_begin(m, st.state, bsrc, slen, nb, bs);
        }
        for (size_t r = 0; r < rows; r++) {
            tokens[r] = TOK_BOS;
            score[r] = 0;
            arrsetlen(hist[r], 0);
        }
        size_t tmax = 0;
        for (size_t i = 0; i < nb; i++) {
            size_t c = max_out_len(o, (size_t)slen[i] - 1, limit);
            if (c > tmax) tmax = c;
        }
        for (size_t t = 0; t <= tmax; t++) {
            int any = 0;
            for (size_t i = 0; i < nb; i++) any |= live[i] > 0;
            if (!any) break;
            const real *logits = step_logits(&st, tokens, hist, rows, t);
            // Each live row's best K candidates, rows in parallel. The best k <= K
            // of a sentence are among the union of its rows' best K, and the
            // order (score, row, token) is total: the same choice as one scan.
            #pragma omp parallel for schedule(static)
            for (size_t r = 0; r < rows; r++) {
                row_n[r] = 0;
                if (r % K >= (size_t)live[r / K]) continue;
                const real *x = logits + r * V;
                double base = score[r], lse = log_sum_exp(x, V);
                for (size_t v = TOK_EOS; v < V; v++) {  // never pad, unk or bos
                    Cand c = {base + (double)x[v] - lse, (int)r, (int)v};
                    offer(row_top + r * K, &row_n[r], (int)K, c);
                }
            }
            for (size_t r = 0; r < rows; r++) from[r] = (int)r;
            for (size_t i = 0; i < nb; i++) {
                if (!live[i]) continue;
                // Slots left: the beam minus the hypotheses already finished.
                int k = (int)K - (int)arrlen(fin[i]);
                size_t cap = max_out_len(o, (size_t)slen[i] - 1, limit);
                int nt = 0;
                for (size_t r = i * K; r < i * K + (size_t)live[i]; r++)
                    for (int c = 0; c < row_n[r]; c++) offer(top, &nt, k, row_top[r * K + (size_t)c]);
                // Finish EOS candidates (and all of them at the length limit).
                int nl = 0;
                for (int c = 0; c < nt; c++) {
                    size_t r = (size_t)top[c].row;
                    int eos = top[c].tok == TOK_EOS;
                    if (eos || (size_t)arrlen(hist[r]) + 1 >= cap) {
                        Hypothesis h = {NULL, top[c].score, 0};
                        for (ptrdiff_t j = 0; j < arrlen(hist[r]); j++) arrput(h.ids, hist[r][j]);
                        if (!eos) arrput(h.ids, top[c].tok);
                        h.score = h.logprob / length_penalty(o->alpha, (size_t)arrlen(h.ids) + (size_t)eos);
                        arrput(fin[i], h);
                    } else {
                        cands[nl++] = top[c];
                    }
                }
                // Early stop: no live hypothesis can beat the best finished one
                // (log-probabilities only fall; the penalty is largest at cap).
                double best_fin = -INFINITY;
                for (ptrdiff_t h = 0; h < arrlen(fin[i]); h++)
                    if (fin[i][h].score > best_fin) best_fin = fin[i][h].score;
                double bound = -INFINITY;
                for (int c = 0; c < nl; c++) {
                    double b = cands[c].score / length_penalty(o->alpha, cap + 1);
                    if (b > bound) bound = b;
                }
                if (arrlen(fin[i]) >= (ptrdiff_t)NB && best_fin >= bound) nl = 0;
                for (int c = 0; c < nl; c++) {
                    size_t r = i * K + (size_t)c;
                    from[r] = cands[c].row;
                    nscore[r] = cands[c].score;
                    tokens[r] = cands[c].tok;
                }
                for (size_t r = i * K + (size_t)nl; r < (i + 1) * K; r++) tokens[r] = TOK_PAD;
                live[i] = nl;
            }
            // New histories and cache rows follow the chosen parents.
            for (size_t r = 0; r < rows; r++) {
                arrsetlen(nhist[r], 0);
                size_t i = r / K;
                if (r - i * K >= (size_t)live[i]) continue;
                for (ptrdiff_t j = 0; j < arrlen(hist[from[r]]); j++) arrput(nhist[r], hist[from[r]][j]);
                arrput(nhist[r], tokens[r]);
                score[r] = nscore[r];
            }
            for (size_t r = 0; r < rows; r++) {
                int *tmp = hist[r];
                hist[r] = nhist[r];
                nhist[r] = tmp;
            }
            if (!o->recompute && K > 1) model_decode_reorder(st.state, from, t);
        }
        for (size_t i = 0; i < nb; i++) {
            // Best first: score, then log-probability, then shorter.
            Hypothesis *f = fin[i];
            size_t nf = (size_t)arrlen(f);
            for (size_t a = 1; a < nf; a++)
                for (size_t b = a; b > 0 && (f[b].score > f[b - 1].score ||
                                             (f[b].score == f[b - 1].score && arrlen(f[b].ids) < arrlen(f[b - 1].ids)));
                     b--) {
                    Hypothesis tmp = f[b];
                    f[b] = f[b - 1];
                    f[b - 1] = tmp;
                }
            for (size_t h = 0; h < NB; h++) {
                if (h < nf) {
                    out[(lo + i) * NB + h] = f[h];
                    f[h].ids = NULL;
                } else {
                    out[(lo + i) * NB + h] = (Hypothesis){NULL, -INFINITY, -INFINITY};
                }
            }
            for (size_t h = NB; h < nf; h++) arrfree(f[h].ids);
        }
    }
    for (size_t r = 0; r < R; r++) {
        arrfree(hist[r]);
        arrfree(nhist[r]);
    }
    for (size_t i = 0; i < B; i++) arrfree(fin[i]);
    free(fin); free(hist); free(nhist); free(top); free(cands); free(row_top); free(row_n);
    free(bsrc); free(slen); free(tokens); free(from); free(live); free(score); free(nscore);
    free(st.rsrc); free(st.rsrc_len); free(st.tin); free(st.tlen);
    acts_free(st.acts);
    decode_state_free(st.state);
}
