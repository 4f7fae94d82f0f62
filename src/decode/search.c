// decode/search.c — greedy and beam search.
//
// Each sentence owns `beam` rows of the decoder state. Its live hypotheses
// sit in the first rows; at every step the best `beam - finished` candidates
// (over live rows x vocabulary) are taken: those ending in EOS are finished,
// the others live on, so the beam shrinks as hypotheses finish (as in
// Marian). With beam 1 this is exactly greedy search. A sentence also stops when no live
// hypothesis can still beat its best finished one. At the length limit EOS
// is the only choice, and its log-probability is charged (as fairseq does).
// An ensemble's members each keep a decoder state with the same rows; the
// search ranks the weighted mean of their log-probabilities. Sampling keeps
// each of a sentence's rows its own draw (decode/sample.h).
#include "decode/search.h"
#include "decode/sample.h"
#include "common/rng.h"
#include "kernels/par.h"
#include "model/decode_state.h"
#include "kernels/ops.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

DecodeOptions decode_defaults(void) {
    DecodeOptions o = {1, 0.6, 1, 32, 1.5, 10, 0, NULL, 0, 0, 1.0, 1.0, 0};
    return o;
}

// One decoder state per ensemble member (one for a single model).
typedef struct {
    const Model *m;         // the model state was made for
    DecodeState *state;     // for up to B sentences of K rows, sources of S, outputs of T
    size_t B, K, S, T;
} ScratchState;

struct DecodeScratch {
    ScratchState *member;
    size_t n;
    size_t builds;
};

DecodeScratch *decode_scratch_create(void) {
    return xcalloc(1, sizeof(DecodeScratch));
}

void decode_scratch_free(DecodeScratch *s) {
    if (!s) return;
    for (size_t k = 0; k < s->n; k++) decode_state_free(s->member[k].state);
    free(s->member);
    free(s);
}

size_t decode_scratch_builds(const DecodeScratch *s) {
    return s->builds;
}

static size_t larger(size_t a, size_t b) {
    return a > b ? a : b;
}

// A decoder state for B sentences of K rows (sources S, outputs T): the
// scratch's if it fits, else a new one (kept), at least as large as the old
// one for the same model and beam, so that calls of varying sizes settle on one.
// Member k's (a scratch grows to hold as many members as it is asked for).
static DecodeState *scratch_state(DecodeScratch *d, size_t k, Model *m, size_t B, size_t K, size_t S, size_t T) {
    if (k >= d->n) {
        d->member = xrealloc(d->member, (k + 1) * sizeof *d->member);
        for (; d->n <= k; d->n++) d->member[d->n] = (ScratchState){NULL, NULL, 0, 0, 0, 0};
    }
    ScratchState *s = &d->member[k];
    if (s->state && s->m == m && s->K == K && B <= s->B && S <= s->S && T <= s->T) return s->state;
    if (s->state && s->m == m && s->K == K) {
        B = larger(B, s->B);
        S = larger(S, s->S);
        T = larger(T, s->T);
    }
    decode_state_free(s->state);
    *s = (ScratchState){m, decode_state_create(m, B, K, S, T), B, K, S, T};
    d->builds++;
    return s->state;
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

// Logits provider: each member's incremental state, or (for tests) full recomputation.
typedef struct {
    const Ensemble *e;
    const DecodeOptions *o;
    DecodeState **state;                 // per member
    Acts **acts;                         // recompute: per member
    const real **logits;                 // per member: the last step's, a row per live row
    int *rsrc, *rsrc_len, *tin, *tlen;   // recompute: per-row source and prefix
    size_t S, T;
} Stepper;

static void step_logits(Stepper *st, const int *tokens, int *const *hist, size_t rows, size_t t) {
    size_t n = st->e->n;
    if (!st->o->recompute) {
        for (size_t k = 0; k < n; k++) st->logits[k] = model_decode_step(st->e->m[k], st->state[k], tokens, t);
        return;
    }
    size_t T = t + 1;
    for (size_t r = 0; r < rows; r++) {
        st->tin[r * T] = TOK_BOS;
        // Rows of finished hypotheses have short histories: pad them.
        for (size_t j = 0; j < t; j++) st->tin[r * T + 1 + j] = j < (size_t)arrlen(hist[r]) ? hist[r][j] : TOK_PAD;
        st->tlen[r] = (int)T;
    }
    Batch b = {rows, st->S, T, st->rsrc, st->rsrc_len, st->tin, NULL, st->tlen, 0};
    for (size_t k = 0; k < n; k++) st->logits[k] = model_next_logits(st->e->m[k], st->acts[k], &b);
}

// The whole search: the logits provider and every per-row and per-sentence
// buffer, sized once for batches of B sentences of K rows each.
typedef struct {
    const DecodeOptions *o;
    size_t K, NB, B, V, limit;
    double *w;                   // the members' weights
    Stepper st;
    int *bsrc, *slen;            // the batch's sources (B, S) with EOS, and their lengths
    int *tokens, *from, *live;   // per row: next input, parent row; per sentence: live rows
    double *score, *nscore;      // per row: cumulative log-probability
    int **hist, **nhist;         // per row: stb_ds token history
    Hypothesis **fin;            // per sentence: stb_ds array of finished hypotheses
    Cand *top, *cands, *row_top; // a sentence's best k; its live ones; each row's best K
    int *row_n;
    // Only live rows are computed: row r's place among the decoder state's
    // rows (-1: not live), and the next step's (select's arguments).
    int *phys, *next_phys, *pfrom, *ptok;
    // Sampling: the sample each row draws for (its random stream), the next
    // step's, and the first sentence's index in the call.
    int *sid, *nsid;
    size_t lo;
} Search;

// The members' weights (equal when not given) and the limit on output
// length their positions allow.
static void search_members(Search *se, const Ensemble *e) {
    se->w = xcalloc(e->n, sizeof *se->w);
    se->limit = (size_t)e->m[0]->s.max_len - 2;
    for (size_t k = 0; k < e->n; k++) {
        se->w[k] = e->w ? e->w[k] : 1.0 / (double)e->n;
        if ((size_t)e->m[k]->s.max_len - 2 < se->limit) se->limit = (size_t)e->m[k]->s.max_len - 2;
    }
}

static void stepper_init(Search *se, const Ensemble *e, size_t B, size_t K, size_t S, size_t T) {
    const DecodeOptions *o = se->o;
    size_t R = B * K, n = e->n;
    se->st = (Stepper){e, o, xcalloc(n, sizeof(DecodeState *)), xcalloc(n, sizeof(Acts *)),
                       xcalloc(n, sizeof(real *)), NULL, NULL, NULL, NULL, S, T};
    if (o->recompute) {
        size_t wide = S > T ? S : T;
        for (size_t k = 0; k < n; k++) se->st.acts[k] = acts_create(e->m[k], R * wide, S, T, 0);
        se->st.rsrc = xcalloc(R * S, sizeof(int));
        se->st.rsrc_len = xcalloc(R, sizeof(int));
        se->st.tin = xcalloc(R * T, sizeof(int));
        se->st.tlen = xcalloc(R, sizeof(int));
        return;
    }
    for (size_t k = 0; k < n; k++)
        se->st.state[k] = o->scratch ? scratch_state(o->scratch, k, e->m[k], B, K, S, T)
                                     : decode_state_create(e->m[k], B, K, S, T);
}

static void search_init(Search *se, const Ensemble *e, int *const *src, size_t n, const DecodeOptions *o) {
    memset(se, 0, sizeof *se);
    se->o = o;
    se->NB = (size_t)(o->nbest > 0 ? o->nbest : 1);
    // Sampling: a row per sample, each its own draw.
    se->K = o->sample ? se->NB : (size_t)(o->beam > 0 ? o->beam : 1);
    if (se->NB > se->K) se->NB = se->K;
    se->B = (size_t)(o->batch > 0 ? o->batch : 1);
    se->V = (size_t)e->m[0]->s.tgt_vocab;
    search_members(se, e);
    size_t S = 1, T = 1, K = se->K;
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)arrlen(src[i]) + 1;
        if (s > S) S = s;
        size_t t = max_out_len(o, s - 1, se->limit) + 1;
        if (t > T) T = t;
    }
    if (se->B > n) se->B = n ? n : 1;
    size_t B = se->B, R = B * K;
    stepper_init(se, e, B, K, S, T);
    se->bsrc = xcalloc(B * S, sizeof(int));
    se->slen = xcalloc(B, sizeof(int));
    se->tokens = xcalloc(R, sizeof(int));
    se->from = xcalloc(R, sizeof(int));
    se->live = xcalloc(B, sizeof(int));
    se->score = xcalloc(R, sizeof(double));
    se->nscore = xcalloc(R, sizeof(double));
    se->hist = xcalloc(R, sizeof(int *));
    se->nhist = xcalloc(R, sizeof(int *));
    se->fin = xcalloc(B, sizeof(Hypothesis *));
    se->top = xcalloc(K, sizeof(Cand));
    se->cands = xcalloc(K, sizeof(Cand));
    se->row_top = xcalloc(R * K, sizeof(Cand));
    se->row_n = xcalloc(R, sizeof(int));
    se->phys = xcalloc(R, sizeof(int));
    se->next_phys = xcalloc(R, sizeof(int));
    se->pfrom = xcalloc(R, sizeof(int));
    se->ptok = xcalloc(R, sizeof(int));
    se->sid = xcalloc(R, sizeof(int));
    se->nsid = xcalloc(R, sizeof(int));
}

static void search_free(Search *se) {
    for (size_t r = 0; r < se->B * se->K; r++) {
        arrfree(se->hist[r]);
        arrfree(se->nhist[r]);
    }
    for (size_t i = 0; i < se->B; i++) arrfree(se->fin[i]);
    free(se->fin); free(se->hist); free(se->nhist); free(se->top); free(se->cands); free(se->row_top);
    free(se->row_n); free(se->bsrc); free(se->slen); free(se->tokens); free(se->from); free(se->live);
    free(se->score); free(se->nscore); free(se->phys); free(se->next_phys); free(se->pfrom); free(se->ptok);
    free(se->sid); free(se->nsid); free(se->w);
    Stepper *st = &se->st;
    free(st->rsrc); free(st->rsrc_len); free(st->tin); free(st->tlen);
    for (size_t k = 0; k < st->e->n; k++) {
        if (st->acts[k]) acts_free(st->acts[k]);
        if (!se->o->scratch) decode_state_free(st->state[k]);  // else the scratch keeps it
    }
    free(st->acts); free(st->state); free(st->logits);
}

// Sentences lo..lo+nb: padded sources, encoder run, one live BOS row each.
// Returns the longest output any of them may have.
static size_t search_begin(Search *se, int *const *src, size_t lo, size_t nb) {
    size_t K = se->K, bs = 1;
    se->lo = lo;
    for (size_t i = 0; i < nb; i++)
        if ((size_t)arrlen(src[lo + i]) + 1 > bs) bs = (size_t)arrlen(src[lo + i]) + 1;
    memset(se->bsrc, 0, nb * bs * sizeof(int));
    for (size_t i = 0; i < nb; i++) {
        size_t len = (size_t)arrlen(src[lo + i]);
        if (len) memcpy(se->bsrc + i * bs, src[lo + i], len * sizeof(int));
        se->bsrc[i * bs + len] = TOK_EOS;
        se->slen[i] = (int)len + 1;
        se->live[i] = 1;
        arrsetlen(se->fin[i], 0);
    }
    size_t rows = nb * K;
    Stepper *st = &se->st;
    if (se->o->recompute) {
        st->S = bs;
        for (size_t r = 0; r < rows; r++) {
            memcpy(st->rsrc + r * bs, se->bsrc + (r / K) * bs, bs * sizeof(int));
            st->rsrc_len[r] = se->slen[r / K];
        }
        for (size_t r = 0; r < rows; r++) se->phys[r] = (int)r;
    } else {
        // Each sentence starts with one live row: only those are computed.
        for (size_t k = 0; k < st->e->n; k++) model_decode_begin(st->e->m[k], st->state[k], se->bsrc, se->slen, nb, bs);
        // Sampling: every row is live from the start (each its own draw).
        size_t first = se->o->sample ? K : 1;
        for (size_t r = 0; r < rows; r++) se->phys[r] = r % K < first ? (int)((r / K) * first + r % K) : -1;
        for (size_t q = 0; q < nb * first; q++) se->pfrom[q] = (int)((q / first) * K);
        for (size_t k = 0; k < st->e->n; k++) model_decode_select(st->state[k], se->pfrom, nb * first, 0);
    }
    for (size_t r = 0; r < rows; r++) {
        se->tokens[r] = TOK_BOS;
        se->score[r] = 0;
        se->sid[r] = (int)(r % K);
        arrsetlen(se->hist[r], 0);
    }
    if (se->o->sample)
        for (size_t i = 0; i < nb; i++) se->live[i] = (int)K;
    size_t tmax = 0;
    for (size_t i = 0; i < nb; i++) {
        size_t c = max_out_len(se->o, (size_t)se->slen[i] - 1, se->limit);
        if (c > tmax) tmax = c;
    }
    return tmax;
}

// Row r's view of every member's logits, and the weighted sum of their
// log-sum-exps: the row's log-probability of token v is then
// row_xw(v) - L. 0 when a logit is not finite (the model overflowed).
static int row_norm(const Search *se, size_t r, const real **x, double *L) {
    const Stepper *st = &se->st;
    *L = 0;
    for (size_t k = 0; k < st->e->n; k++) {
        x[k] = st->logits[k] + (size_t)se->phys[r] * se->V;
        double lse = log_sum_exp(x[k], se->V);
        if (!isfinite(lse)) return 0;
        *L += se->w[k] * lse;
    }
    return 1;
}

// The weighted sum of the members' logits for token v (one member: its logit,
// exactly; two equal members at weight 1/2: the same value).
static inline double row_xw(const Search *se, const real *const *x, size_t v) {
    double s = 0;
    for (size_t k = 0; k < se->st.e->n; k++) s += se->w[k] * (double)x[k][v];
    return s;
}

// A row at the length limit: its history holds cap tokens.
static int at_cap(const Search *se, size_t r) {
    size_t i = r / se->K;
    return (size_t)arrlen(se->hist[r]) >= max_out_len(se->o, (size_t)se->slen[i] - 1, se->limit);
}

// Each live row's best K candidates, rows in parallel. The best k <= K of a
// sentence are among the union of its rows' best K, and the order (score,
// row, token) is total: the same choice as one scan. A row at the length
// limit has one candidate: EOS.
static void row_candidates(Search *se, size_t rows) {
    size_t K = se->K, V = se->V;
    #pragma omp parallel for schedule(dynamic, 8)
    for (size_t r = 0; r < rows; r++) {
        se->row_n[r] = 0;
        if (r % K >= (size_t)se->live[r / K]) continue;
        const real *x[se->st.e->n];
        double base = se->score[r], L;
        if (!row_norm(se, r, x, &L)) {  // a NaN or infinite logit: the model overflowed (translate_ids stops)
            se->row_n[r] = -1;
            continue;
        }
        Cand *top = se->row_top + r * K;
        size_t end = at_cap(se, r) ? TOK_EOS + 1 : V;
        for (size_t v = TOK_EOS; v < end; v++) {  // never pad, unk or bos
            double sc = base + row_xw(se, x, v) - L;
            // Once K are kept, a score no higher than the K-th loses (on a tie
            // the lower token, kept first, wins): most tokens stop here.
            if (se->row_n[r] == (int)K && sc <= top[K - 1].score) continue;
            offer(top, &se->row_n[r], (int)K, (Cand){sc, (int)r, (int)v});
        }
    }
}

// Sampling: each live row draws its next token from its own stream, named
// by (seed, sentence, sample); the draw's index is the output position.
static void row_samples(Search *se, size_t rows) {
    size_t K = se->K, V = se->V;
    const DecodeOptions *o = se->o;
    SampleRule rule = {o->topk, o->topp, o->temperature};
    #pragma omp parallel
    {
        SampleScratch scratch = {NULL, NULL, 0};
        double *lp = xmalloc(V * sizeof *lp);
        #pragma omp for schedule(dynamic, 4)
        for (size_t r = 0; r < rows; r++) {
            se->row_n[r] = 0;
            if (r % K >= (size_t)se->live[r / K]) continue;
            const real *x[se->st.e->n];
            double L;
            if (!row_norm(se, r, x, &L)) {
                se->row_n[r] = -1;
                continue;
            }
            size_t t = (size_t)arrlen(se->hist[r]), v = TOK_EOS;
            if (!at_cap(se, r)) {
                for (size_t u = TOK_EOS; u < V; u++) lp[u - TOK_EOS] = row_xw(se, x, u) - L;
                uint64_t key = rng_key(o->seed, se->lo + r / K, (uint64_t)se->sid[r]);
                v = TOK_EOS + sample_pick(lp, V - TOK_EOS, &rule, sample_uniform(key, t), &scratch);
            }
            // The score is the model's log-probability of the draw (as nmt score gives it).
            se->row_top[r * K] = (Cand){se->score[r] + row_xw(se, x, v) - L, (int)r, (int)v};
            se->row_n[r] = 1;
        }
        free(lp);
        sample_scratch_free(&scratch);
    }
}

// A finished hypothesis of sentence i from candidate c of row r.
static void finish(Search *se, size_t i, const Cand *c) {
    int **hist = se->hist;
    size_t r = (size_t)c->row;
    Hypothesis h = {NULL, c->score, 0, !at_cap(se, r)};
    for (ptrdiff_t j = 0; j < arrlen(hist[r]); j++) arrput(h.ids, hist[r][j]);
    h.score = h.logprob / length_penalty(se->o->alpha, (size_t)arrlen(h.ids) + 1);
    arrput(se->fin[i], h);
}

// Sentence i's live rows from cands[0..nl): parents in from[], tokens, scores.
static void take_live(Search *se, size_t i, int nl) {
    size_t K = se->K;
    for (int c = 0; c < nl; c++) {
        size_t r = i * K + (size_t)c;
        se->from[r] = se->cands[c].row;
        se->nscore[r] = se->cands[c].score;
        se->tokens[r] = se->cands[c].tok;
    }
    for (size_t r = i * K + (size_t)nl; r < (i + 1) * K; r++) se->tokens[r] = TOK_PAD;
    se->live[i] = nl;
}

// Sentence i's best candidates: those ending in EOS finish; the rest
// become its live rows.
static void choose(Search *se, size_t i) {
    size_t K = se->K;
    // Slots left: the beam minus the hypotheses already finished.
    int k = (int)K - (int)arrlen(se->fin[i]);
    size_t cap = max_out_len(se->o, (size_t)se->slen[i] - 1, se->limit);
    int nt = 0, nl = 0;
    for (size_t r = i * K; r < i * K + (size_t)se->live[i]; r++)
        for (int c = 0; c < se->row_n[r]; c++) offer(se->top, &nt, k, se->row_top[r * K + (size_t)c]);
    for (int c = 0; c < nt; c++) {
        if (se->top[c].tok == TOK_EOS) finish(se, i, &se->top[c]);
        else se->cands[nl++] = se->top[c];
    }
    // Early stop: no live hypothesis can beat the best finished one
    // (log-probabilities only fall; the penalty is largest at cap + EOS).
    double best_fin = -INFINITY, bound = -INFINITY;
    for (ptrdiff_t h = 0; h < arrlen(se->fin[i]); h++)
        if (se->fin[i][h].score > best_fin) best_fin = se->fin[i][h].score;
    for (int c = 0; c < nl; c++) {
        double b = se->cands[c].score / length_penalty(se->o->alpha, cap + 1);
        if (b > bound) bound = b;
    }
    if (arrlen(se->fin[i]) >= (ptrdiff_t)se->NB && best_fin >= bound) nl = 0;
    take_live(se, i, nl);
}

// Sampling: each live row's draw, in row order; EOS finishes it.
static void choose_samples(Search *se, size_t i) {
    size_t K = se->K;
    int nl = 0;
    for (size_t r = i * K; r < i * K + (size_t)se->live[i]; r++) {
        const Cand *c = &se->row_top[r * K];
        if (c->tok == TOK_EOS) finish(se, i, c);
        else se->cands[nl++] = *c;
    }
    take_live(se, i, nl);
}

// New histories (and cache rows) follow the chosen parents.
static void follow_parents(Search *se, size_t rows, size_t t) {
    size_t K = se->K;
    for (size_t r = 0; r < rows; r++) {
        arrsetlen(se->nhist[r], 0);
        size_t i = r / K;
        if (r - i * K >= (size_t)se->live[i]) continue;
        int *h = se->hist[se->from[r]];
        for (ptrdiff_t j = 0; j < arrlen(h); j++) arrput(se->nhist[r], h[j]);
        arrput(se->nhist[r], se->tokens[r]);
        se->score[r] = se->nscore[r];
        se->nsid[r] = se->sid[se->from[r]];
    }
    for (size_t r = 0; r < rows; r++) {
        int *tmp = se->hist[r];
        se->hist[r] = se->nhist[r];
        se->nhist[r] = tmp;
    }
    int *sid = se->sid;
    se->sid = se->nsid;
    se->nsid = sid;
    if (se->o->recompute) return;
    // The decoder state's next rows: the live ones, each from its parent's row.
    size_t n = 0;
    for (size_t r = 0; r < rows; r++) {
        size_t i = r / K;
        se->next_phys[r] = -1;
        if (r - i * K >= (size_t)se->live[i]) continue;
        se->pfrom[n] = se->phys[se->from[r]];
        se->next_phys[r] = (int)n++;
    }
    int *tmp = se->phys;
    se->phys = se->next_phys;
    se->next_phys = tmp;
    for (size_t k = 0; k < se->st.e->n; k++) model_decode_select(se->st.state[k], se->pfrom, n, t + 1);
}

// The tokens of the live rows, in the decoder state's order.
static const int *state_tokens(Search *se, size_t rows) {
    for (size_t r = 0; r < rows; r++)
        if (se->phys[r] >= 0) se->ptok[se->phys[r]] = se->tokens[r];
    return se->ptok;
}

// Sentence i's finished hypotheses, best first (score, then log-probability,
// then shorter), into out[0..NB).
static void emit(Search *se, size_t i, Hypothesis *out) {
    Hypothesis *f = se->fin[i];
    size_t nf = (size_t)arrlen(f);
    for (size_t a = 1; a < nf; a++)
        for (size_t b = a; b > 0 && (f[b].score > f[b - 1].score ||
                                     (f[b].score == f[b - 1].score && arrlen(f[b].ids) < arrlen(f[b - 1].ids)));
             b--) {
            Hypothesis tmp = f[b];
            f[b] = f[b - 1];
            f[b - 1] = tmp;
        }
    for (size_t h = 0; h < se->NB; h++) {
        if (h < nf) {
            out[h] = f[h];
            f[h].ids = NULL;
        } else {
            out[h] = (Hypothesis){NULL, -INFINITY, -INFINITY, 0};
        }
    }
    for (size_t h = se->NB; h < nf; h++) arrfree(f[h].ids);
}

// A live row whose logits were not all finite (row_candidates marks it):
// the error naming the sentence (0-based in this call) and output position.
static int nonfinite_row(const Search *se, size_t lo, size_t rows, size_t t) {
    for (size_t r = 0; r < rows; r++)
        if (se->row_n[r] < 0)
            return err_set(NMT_ERR_RUNTIME, "sentence %zu, output position %zu: the model's scores are not finite "
                           "(NaN or infinite logits): its weights overflow float in the forward pass; nothing "
                           "translated", lo + r / se->K + 1, t + 1);
    return NMT_OK;
}

enum { PAR_SAMPLE_STEP = 2 };

int translate_ids(Model *m, int *const *src, size_t n, const DecodeOptions *o, Hypothesis *out) {
    return translate_ensemble_ids(&(Ensemble){&m, NULL, 1}, src, n, o, out);
}

// Members whose outputs cannot be compared token for token: an error.
static int one_target_vocabulary(const Ensemble *e) {
    for (size_t k = 1; k < e->n; k++)
        if (e->m[k]->s.tgt_vocab != e->m[0]->s.tgt_vocab)
            return err_set(NMT_ERR_INPUT, "ensemble: model %zu has %d target tokens, model 1 has %d", k + 1,
                           e->m[k]->s.tgt_vocab, e->m[0]->s.tgt_vocab);
    return NMT_OK;
}

int translate_ensemble_ids(const Ensemble *e, int *const *src, size_t n, const DecodeOptions *o, Hypothesis *out) {
    int rc = one_target_vocabulary(e);
    Search se;
    search_init(&se, e, src, n, o);
    size_t lo = 0;
    for (; lo < n && !rc; lo += se.B) {
        size_t nb = n - lo < se.B ? n - lo : se.B, rows = nb * se.K;
        size_t tmax = search_begin(&se, src, lo, nb);
        for (size_t t = 0; t <= tmax && !rc; t++) {
            // A shared machine: no work split over threads. Looked at a few
            // steps into the batch, not at its start: there a server's
            // answers to the last batch have just woken its clients, tasks
            // runnable for a moment that would count as a busy neighbour.
            if (t == PAR_SAMPLE_STEP) par_sample();
            int any = 0;
            for (size_t i = 0; i < nb; i++) any |= se.live[i] > 0;
            if (!any) break;
            const int *tok = o->recompute ? se.tokens : state_tokens(&se, rows);
            step_logits(&se.st, tok, se.hist, rows, t);
            if (o->sample) row_samples(&se, rows);
            else row_candidates(&se, rows);
            if ((rc = nonfinite_row(&se, lo, rows, t))) break;
            for (size_t r = 0; r < rows; r++) se.from[r] = (int)r;
            for (size_t i = 0; i < nb; i++)
                if (se.live[i]) (o->sample ? choose_samples : choose)(&se, i);
            follow_parents(&se, rows, t);
        }
        for (size_t i = 0; i < nb; i++) emit(&se, i, out + (lo + i) * se.NB);
    }
    // After an error the sentences not reached get empty hypotheses (the caller frees every one).
    for (size_t h = lo * se.NB; h < n * se.NB; h++) out[h] = (Hypothesis){NULL, -INFINITY, -INFINITY, 0};
    search_free(&se);
    return rc;
}
