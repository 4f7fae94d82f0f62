// kernels/attention.c — multi-head scaled dot-product attention, forward and
// backward (ops.h): padding and causal masks, attention dropout, relative
// position embeddings, local windows computed as a band, and decoding's
// one-query path. Each (sequence, head) is computed by one thread in a fixed
// order: results are identical for any thread count.
#include "kernels/ops.h"
#include "kernels/gemm.h"
#include "kernels/par.h"
#include "common/rng.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

// Below this many multiply-adds an attention is not worth a parallel region (par.h).
#define PAR_MIN par_min_elems

// The keys query i of sequence b may see: [*lo, returned end). Padding,
// the causal mask and the window; a query (of a padding row) whose window
// holds no real key sees none: its weights are all zero, its output too.
// Every product of the attention: float or bf16 as the shape says.
static void product(const AttnShape *s, int ta, int tb, size_t M, size_t N, size_t K, real alpha, const real *A,
                    size_t lda, const real *B, size_t ldb, real beta, real *C, size_t ldc) {
    gemm_call(&(GemmCall){ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, s->bf16});
}

static size_t key_range(const AttnShape *s, size_t b, size_t i, size_t *lo) {
    size_t n = (size_t)s->klen[b], t = s->q0 + i;
    if (n > s->Tk) n = s->Tk;
    if (s->causal && t + 1 < n) n = t + 1;
    *lo = 0;
    if (s->window) {
        if (t + s->window + 1 < n) n = t + s->window + 1;
        if (t > s->window) *lo = t - s->window;
        if (*lo > n) *lo = n;
    }
    return n;
}

size_t attn_cols(const AttnShape *s) {
    if (!s->window) return s->Tk;
    size_t band = s->causal ? s->window + 1 : 2 * s->window + 1;
    return band < s->Tk ? band : s->Tk;
}

// Applies the dropout mask of head (b,h) to p (Tq, attn_cols) into out; mask
// index is the element's position in probs, so forward and backward agree.
static void attn_dropout(real *out, const real *p, const AttnShape *s, size_t bh) {
    size_t n = s->Tq * attn_cols(s), base = bh * n;
    real keep_scale = 1 / (1 - s->p_drop);
    uint32_t th = rng_threshold((double)s->p_drop);
    for (size_t i = 0; i < n; i++) out[i] = rng_keep(s->drop_key, base + i, th) ? p[i] * keep_scale : 0;
}

// Offsets of head (b,h) in q, and in k and v (rows share keys/values per kv_group).
static void head_offsets(const AttnShape *s, size_t b, size_t h, size_t *oq, size_t *ok, size_t *ov) {
    size_t bq = s->bsq ? s->bsq : s->Tq * s->ldq, bk = s->bskv ? s->bskv : s->Tk * s->ldk;
    size_t bv = s->bskv ? s->bskv : s->Tk * s->ldv;
    size_t bkv = s->kv_row ? (size_t)s->kv_row[b] : s->kv_group > 1 ? b / s->kv_group : b;
    *oq = b * bq + h * s->D;
    *ok = s->k_transposed ? bkv * s->bsk + h * s->D * s->ldk : bkv * bk + h * s->D;
    *ov = bkv * bv + h * s->D;
}

// ---- relative positions: every sum below runs in one fixed order (gemm_term,
// ascending index), the same in training, recomputation and decoding.

// The embedding row of key j seen from query i.
static size_t rel_bucket(const AttnShape *s, size_t i, size_t j) {
    long d = (long)j - (long)(s->q0 + i), k = (long)s->rel_max;
    return (size_t)((d < -k ? -k : d > k ? k : d) + k);
}

// A table (2 rel_max + 1, D) transposed to (D, 2 rel_max + 1), so that
// rel_dots runs its sums side by side along contiguous memory. Caller frees.
static real *rel_transposed(const real *tab, const AttnShape *s) {
    size_t R = 2 * s->rel_max + 1, D = s->D;
    real *t = xmalloc(R * D * sizeof *t);
    for (size_t r = 0; r < R; r++)
        for (size_t d = 0; d < D; d++) t[d * R + r] = tab[r * D + d];
    return t;
}

// The embedding rows the keys [lo, hi) of query i use: [r0, r1) (a query
// sees fewer distances than the table has when the sequence is short; the
// other rows would only add zeros).
typedef struct { size_t r0, r1; } RelRange;
static RelRange rel_range(const AttnShape *s, size_t i, size_t lo, size_t hi) {
    RelRange rr = {0, 0};
    if (hi > lo) rr = (RelRange){rel_bucket(s, i, lo), rel_bucket(s, i, hi - 1) + 1};
    return rr;
}

// out[r] = x . tab[r] for the rows r in rr, from the table's transpose tabT
// (rel_transposed): each sum from zero in d order.
static void rel_dots(real *out, const real *x, const real *tabT, const AttnShape *s, RelRange rr) {
    size_t R = 2 * s->rel_max + 1;
    for (size_t r = rr.r0; r < rr.r1; r++) out[r] = 0;
    for (size_t d = 0; d < s->D; d++) {
        real xd = x[d];
        const real *t = tabT + d * R;
        for (size_t r = rr.r0; r < rr.r1; r++) out[r] = gemm_term(out[r], xd, t[r]);
    }
}

// w[r] = sum of key j's value over the keys j in [lo, hi) of bucket r
// (query i); row[j - j0] holds key j's. Returns the rows set.
static RelRange rel_buckets(real *w, const real *row, long j0, const AttnShape *s, size_t i, size_t lo, size_t hi) {
    RelRange rr = rel_range(s, i, lo, hi);
    for (size_t r = rr.r0; r < rr.r1; r++) w[r] = 0;
    for (size_t j = lo; j < hi; j++) w[rel_bucket(s, i, j)] += row[(long)j - j0];
    return rr;
}

// acc[d] += sum_r w[r] tab[r][d] over the rows in rr, the terms appended in r order.
static void rel_mix(real *acc, const real *w, const real *tab, const AttnShape *s, RelRange rr) {
    for (size_t r = rr.r0; r < rr.r1; r++)
        for (size_t d = 0; d < s->D; d++) acc[d] = gemm_term(acc[d], w[r], tab[r * s->D + d]);
}

// part[r][d] += w[r] x[d] over the rows in rr (a head's share of a table's gradient).
static void rel_outer(real *part, const real *w, const real *x, const AttnShape *s, RelRange rr) {
    for (size_t r = rr.r0; r < rr.r1; r++)
        for (size_t d = 0; d < s->D; d++) part[r * s->D + d] += w[r] * x[d];
}

// Query i's scores over keys [lo, hi) gain q_i . rel_k[r] * scale (row[j - j0]:
// key j's; kT: rel_k transposed).
static void rel_scores(real *row, long j0, const real *q, const real *kT, const AttnShape *s, size_t i, size_t lo,
                       size_t hi, real scale) {
    real qr[2 * ATTN_REL_MAX + 1];
    rel_dots(qr, q, kT, s, rel_range(s, i, lo, hi));
    for (size_t j = lo; j < hi; j++) row[(long)j - j0] += scale * qr[rel_bucket(s, i, j)];
}

// Query i's output gains sum_j w_ij rel_v[r] (w: the weights it used, w[j - j0] key j's).
static void rel_values(real *out, const real *w, long j0, const AttnShape *s, size_t i, size_t lo, size_t hi) {
    real wb[2 * ATTN_REL_MAX + 1];
    RelRange rr = rel_buckets(wb, w, j0, s, i, lo, hi);
    rel_mix(out, wb, s->rel_v, s, rr);
}

// Softmax of row[lo, hi), zeros elsewhere in [0, n) (all zeros when the range is empty).
static void masked_softmax(real *row, size_t n, size_t lo, size_t hi) {
    for (size_t j = 0; j < lo; j++) row[j] = 0;
    if (hi > lo) softmax_inplace(row + lo, hi - lo);
    for (size_t j = hi > lo ? hi : lo; j < n; j++) row[j] = 0;
}

// Decoding: one query per row, its keys transposed, no dropout. All heads of
// a row in one pass, without a product call per head: the same sums as the
// gemm path below (gemm_term in k order from zero, then the scale; the
// weights' product with V likewise, alpha 1), so the same bits. Keys before
// the window are neither scored nor read (their weights are zero).
static void attention_one_query(real *out, real *probs, const real *q, const real *k, const real *v,
                                const AttnShape *s, const real *kT) {
    size_t Tk = s->Tk, H = s->H, D = s->D, C = H * D, ldk = s->ldk;
    real scale = 1 / sqrt((real)D);
    #pragma omp parallel for schedule(dynamic, 4) if (s->B * H * Tk * D > PAR_MIN)
    for (size_t b = 0; b < s->B; b++) {
        size_t oq, ok, ov, lo, n = key_range(s, b, 0, &lo);
        head_offsets(s, b, 0, &oq, &ok, &ov);  // head h: + h*D, + h*D*ldk, + h*D
        real *p = probs + b * H * Tk;
        for (size_t i = 0; i < H * Tk; i++) p[i] = 0;
        for (size_t d = 0; d < D; d++)
            for (size_t h = 0; h < H; h++) {
                real qv = q[oq + h * D + d], *ph = p + h * Tk;
                const real *kr = k + ok + (h * D + d) * ldk;
                for (size_t j = lo; j < n; j++) ph[j] = gemm_term(ph[j], qv, kr[j]);
            }
        for (size_t h = 0; h < H; h++) {
            real *ph = p + h * Tk;
            for (size_t j = lo; j < n; j++) ph[j] = scale * ph[j];
            if (s->rel_k) rel_scores(ph, 0, q + oq + h * D, kT, s, 0, lo, n, scale);
            masked_softmax(ph, Tk, lo, n);
        }
        real *o = out + b * C;
        for (size_t i = 0; i < C; i++) o[i] = 0;
        for (size_t j = lo; j < n; j++)
            for (size_t h = 0; h < H; h++) {
                real pj = p[h * Tk + j], *oh = o + h * D;
                const real *vr = v + ov + j * s->ldv + h * D;
                for (size_t e = 0; e < D; e++) oh[e] = gemm_term(oh[e], pj, vr[e]);
            }
        if (s->rel_v)
            for (size_t h = 0; h < H; h++) rel_values(o + h * D, p + h * Tk, 0, s, 0, lo, n);
    }
}


// ---- local attention as a band: query i's weights are attn_cols slots,
// slot c for key t - window + c (t = q0 + i). Products run over blocks of
// BAND_ROWS queries and the keys any of them sees, so time and memory grow
// with Tq * window, not Tq * Tk.
enum { BAND_ROWS = 32 };

// The keys of queries [i0, i1): [*klo, returned end).
static size_t block_keys(const AttnShape *s, size_t i0, size_t i1, size_t *klo) {
    size_t t0 = s->q0 + i0, t1 = s->q0 + i1 - 1, W = s->window, hi = (s->causal ? t1 : t1 + W) + 1;
    *klo = t0 > W ? t0 - W : 0;
    if (hi > s->Tk) hi = s->Tk;
    if (*klo > hi) *klo = hi;
    return hi;
}

// Rows i0..i1 of the band from a block (bq, kw) whose column 0 is key klo
// (gather = 1), or into a zeroed block (gather = 0); slots outside each
// query's keys are 0.
static void band_block(real *band, real *blk, const AttnShape *s, size_t b, size_t i0, size_t i1, size_t klo,
                       size_t kw, int gather) {
    size_t cols = attn_cols(s);
    if (!gather) memset(blk, 0, (i1 - i0) * kw * sizeof(real));
    for (size_t i = i0; i < i1; i++) {
        size_t lo, n = key_range(s, b, i, &lo);
        long j0 = (long)(s->q0 + i) - (long)s->window;
        real *row = band + i * cols, *br = blk + (i - i0) * kw;
        if (gather) {
            for (size_t c = 0; c < cols; c++) row[c] = 0;
            for (size_t j = lo; j < n; j++) row[(long)j - j0] = br[j - klo];
        } else
            for (size_t j = lo; j < n; j++) br[j - klo] = row[(long)j - j0];
    }
}

static void band_forward_head(real *out, real *probs, real *scratch, real *blk, const real *q, const real *k,
                              const real *v, const AttnShape *s, size_t bh, const real *kT) {
    size_t Tq = s->Tq, H = s->H, D = s->D, C = H * D, cols = attn_cols(s);
    size_t b = bh / H, h = bh % H, oq, ok, ov;
    real scale = 1 / sqrt((real)D);
    head_offsets(s, b, h, &oq, &ok, &ov);
    const real *qb = q + oq, *kb = k + ok, *vb = v + ov;
    real *p = probs + bh * Tq * cols, *pd = p, *ob = out + b * Tq * C + h * D;
    for (size_t i0 = 0; i0 < Tq; i0 += BAND_ROWS) {
        size_t i1 = i0 + BAND_ROWS < Tq ? i0 + BAND_ROWS : Tq, klo, kw = block_keys(s, i0, i1, &klo) - klo;
        if (s->k_transposed) product(s, 0, 0, i1 - i0, kw, D, scale, qb + i0 * s->ldq, s->ldq, kb + klo, s->ldk, 0, blk, kw);
        else product(s, 0, 1, i1 - i0, kw, D, scale, qb + i0 * s->ldq, s->ldq, kb + klo * s->ldk, s->ldk, 0, blk, kw);
        band_block(p, blk, s, b, i0, i1, klo, kw, 1);
        for (size_t i = i0; i < i1; i++) {
            size_t lo, n = key_range(s, b, i, &lo);
            long j0 = (long)(s->q0 + i) - (long)s->window;
            if (s->rel_k) rel_scores(p + i * cols, j0, qb + i * s->ldq, kT, s, i, lo, n, scale);
            if (n > lo) masked_softmax(p + i * cols, cols, (size_t)((long)lo - j0), (size_t)((long)n - j0));
        }
    }
    if (s->p_drop > 0) {
        pd = scratch + bh * Tq * cols;
        attn_dropout(pd, p, s, bh);
    }
    for (size_t i0 = 0; i0 < Tq; i0 += BAND_ROWS) {
        size_t i1 = i0 + BAND_ROWS < Tq ? i0 + BAND_ROWS : Tq, klo, kw = block_keys(s, i0, i1, &klo) - klo;
        band_block(pd, blk, s, b, i0, i1, klo, kw, 0);
        product(s, 0, 0, i1 - i0, D, kw, 1, blk, kw, vb + klo * s->ldv, s->ldv, 0, ob + i0 * C, C);
        for (size_t i = i0; i < i1 && s->rel_v; i++) {
            size_t lo, n = key_range(s, b, i, &lo);
            rel_values(ob + i * C, pd + i * cols, (long)(s->q0 + i) - (long)s->window, s, i, lo, n);
        }
    }
}

static void band_backward_head(real *dq, real *dk, real *dv, real *scratch, real *blk, const real *dout,
                               const real *probs, const real *q, const real *k, const real *v, const AttnShape *s,
                               size_t bh, real *part, const real *vT) {
    size_t Tq = s->Tq, H = s->H, D = s->D, C = H * D, cols = attn_cols(s), R = 2 * s->rel_max + 1;
    size_t b = bh / H, h = bh % H, oq, ok, ov;
    real scale = 1 / sqrt((real)D), w[2 * ATTN_REL_MAX + 1];
    head_offsets(s, b, h, &oq, &ok, &ov);
    const real *qb = q + oq, *kb = k + ok, *vb = v + ov, *dob = dout + b * Tq * C + h * D;
    real *dqb = dq + oq, *dkb = dk + ok, *dvb = dv + ov;
    const real *p = probs + bh * Tq * cols;
    real *sc = scratch + bh * Tq * cols;
    // sc holds the weights the forward pass used (P'); block by block they
    // give dV and drel_v, then their rows become dP, then dS.
    if (s->p_drop > 0) attn_dropout(sc, p, s, bh);
    else memcpy(sc, p, Tq * cols * sizeof(real));
    real keep_scale = s->p_drop > 0 ? 1 / (1 - s->p_drop) : 1;
    uint32_t th = s->p_drop > 0 ? rng_threshold((double)s->p_drop) : 0;
    for (size_t i0 = 0; i0 < Tq; i0 += BAND_ROWS) {
        size_t i1 = i0 + BAND_ROWS < Tq ? i0 + BAND_ROWS : Tq, bq = i1 - i0, klo;
        size_t kw = block_keys(s, i0, i1, &klo) - klo;
        band_block(sc, blk, s, b, i0, i1, klo, kw, 0);
        product(s, 1, 0, kw, D, bq, 1, blk, kw, dob + i0 * C, C, 1, dvb + klo * s->ldv, s->ldv);
        for (size_t i = i0; i < i1 && s->rel_v; i++) {
            size_t lo, n = key_range(s, b, i, &lo);
            RelRange rr = rel_buckets(w, sc + i * cols, (long)(s->q0 + i) - (long)s->window, s, i, lo, n);
            rel_outer(part + R * D, w, dob + i * C, s, rr);
        }
        product(s, 0, 1, bq, kw, D, 1, dob + i0 * C, C, vb + klo * s->ldv, s->ldv, 0, blk, kw);
        band_block(sc, blk, s, b, i0, i1, klo, kw, 1);
        for (size_t i = i0; i < i1; i++) {
            size_t lo, n = key_range(s, b, i, &lo);
            long j0 = (long)(s->q0 + i) - (long)s->window;
            real *dr = sc + i * cols;
            const real *pr = p + i * cols;
            if (s->rel_v) {
                rel_dots(w, dob + i * C, vT, s, rel_range(s, i, lo, n));
                for (size_t j = lo; j < n; j++) dr[(long)j - j0] += w[rel_bucket(s, i, j)];
            }
            if (s->p_drop > 0)
                for (size_t c = 0; c < cols; c++)
                    dr[c] = rng_keep(s->drop_key, (bh * Tq + i) * cols + c, th) ? dr[c] * keep_scale : 0;
            real dot = 0;
            for (size_t c = 0; c < cols; c++) dot += pr[c] * dr[c];
            for (size_t c = 0; c < cols; c++) dr[c] = pr[c] * (dr[c] - dot) * scale;
        }
        band_block(sc, blk, s, b, i0, i1, klo, kw, 0);
        product(s, 0, 0, bq, D, kw, 1, blk, kw, kb + klo * s->ldk, s->ldk, 1, dqb + i0 * s->ldq, s->ldq);
        product(s, 1, 0, kw, D, bq, 1, blk, kw, qb + i0 * s->ldq, s->ldq, 1, dkb + klo * s->ldk, s->ldk);
        for (size_t i = i0; i < i1 && s->rel_k; i++) {
            size_t lo, n = key_range(s, b, i, &lo);
            RelRange rr = rel_buckets(w, sc + i * cols, (long)(s->q0 + i) - (long)s->window, s, i, lo, n);
            rel_mix(dqb + i * s->ldq, w, s->rel_k, s, rr);
            rel_outer(part, w, qb + i * s->ldq, s, rr);
        }
    }
}

// A block's scratch: BAND_ROWS queries by the keys they may see.
static real *band_scratch(const AttnShape *s) {
    return xmalloc(BAND_ROWS * (BAND_ROWS + 2 * s->window) * sizeof(real));
}

void attention_forward(real *out, real *probs, real *scratch, const real *q, const real *k,
                       const real *v, const AttnShape *s) {
    size_t Tq = s->Tq, Tk = s->Tk, H = s->H, D = s->D, C = H * D;
    real scale = 1 / sqrt((real)D);
    real *kT = s->rel_k ? rel_transposed(s->rel_k, s) : NULL;
    if (Tq == 1 && s->k_transposed && !(s->p_drop > 0) && D <= GEMM_KC && Tk <= GEMM_KC) {
        attention_one_query(out, probs, q, k, v, s, kT);
        free(kT);
        return;
    }
    if (attn_cols(s) < Tk) {
        #pragma omp parallel if (s->B * H * Tq * attn_cols(s) * D > PAR_MIN)
        {
            real *blk = band_scratch(s);
            #pragma omp for schedule(dynamic, 1)
            for (size_t bh = 0; bh < s->B * H; bh++) band_forward_head(out, probs, scratch, blk, q, k, v, s, bh, kT);
            free(blk);
        }
        free(kT);
        return;
    }
    #pragma omp parallel for schedule(dynamic, 1) if (s->B * H * Tq * Tk * D > PAR_MIN)
    for (size_t bh = 0; bh < s->B * H; bh++) {
        size_t b = bh / H, h = bh % H, oq, ok, ov, lo, n;
        head_offsets(s, b, h, &oq, &ok, &ov);
        const real *qb = q + oq, *kb = k + ok, *vb = v + ov;
        real *p = probs + bh * Tq * Tk;
        if (s->k_transposed) product(s, 0, 0, Tq, Tk, D, scale, qb, s->ldq, kb, s->ldk, 0, p, Tk);
        else product(s, 0, 1, Tq, Tk, D, scale, qb, s->ldq, kb, s->ldk, 0, p, Tk);
        for (size_t i = 0; i < Tq; i++) {
            n = key_range(s, b, i, &lo);
            if (s->rel_k) rel_scores(p + i * Tk, 0, qb + i * s->ldq, kT, s, i, lo, n, scale);
            masked_softmax(p + i * Tk, Tk, lo, n);
        }
        const real *pd = p;
        if (s->p_drop > 0) {
            real *sc = scratch + bh * Tq * Tk;
            attn_dropout(sc, p, s, bh);
            pd = sc;
        }
        real *ob = out + b * Tq * C + h * D;
        product(s, 0, 0, Tq, D, Tk, 1, pd, Tk, vb, s->ldv, 0, ob, C);
        if (s->rel_v)
            for (size_t i = 0; i < Tq; i++) {
                n = key_range(s, b, i, &lo);
                rel_values(ob + i * C, pd + i * Tk, 0, s, i, lo, n);
            }
    }
    free(kT);
}

// The backward pass of head bh; the relative embeddings' gradient shares go
// into part ((2, 2 rel_max + 1, D), when there are relative positions).
static void attention_backward_head(real *dq, real *dk, real *dv, real *scratch, const real *dout,
                                    const real *probs, const real *q, const real *k, const real *v,
                                    const AttnShape *s, size_t bh, real *part, const real *vT) {
    size_t Tq = s->Tq, Tk = s->Tk, H = s->H, D = s->D, C = H * D, R = 2 * s->rel_max + 1;
    real scale = 1 / sqrt((real)D), w[2 * ATTN_REL_MAX + 1];
    size_t b = bh / H, h = bh % H, oq, ok, ov, lo, n;
    head_offsets(s, b, h, &oq, &ok, &ov);
    const real *qb = q + oq, *kb = k + ok, *vb = v + ov;
    real *dqb = dq + oq, *dkb = dk + ok, *dvb = dv + ov;
    const real *dob = dout + b * Tq * C + h * D;
    const real *p = probs + bh * Tq * Tk;
    real *sc = scratch + bh * Tq * Tk;
    // dV += P'^T dO, with P' the (dropped-out) weights used in forward;
    // and drel_v += the weights of each distance times dO.
    const real *pd = p;
    if (s->p_drop > 0) {
        attn_dropout(sc, p, s, bh);
        pd = sc;
    }
    product(s, 1, 0, Tk, D, Tq, 1, pd, Tk, dob, C, 1, dvb, s->ldv);
    if (s->rel_v)
        for (size_t i = 0; i < Tq; i++) {
            n = key_range(s, b, i, &lo);
            rel_outer(part + R * D, w, dob + i * C, s, rel_buckets(w, pd + i * Tk, 0, s, i, lo, n));
        }
    // dP' = dO (V + rel_v)^T, then through the dropout mask: dP = dP' * mask / (1-p).
    product(s, 0, 1, Tq, Tk, D, 1, dob, C, vb, s->ldv, 0, sc, Tk);
    if (s->rel_v)
        for (size_t i = 0; i < Tq; i++) {
            n = key_range(s, b, i, &lo);
            rel_dots(w, dob + i * C, vT, s, rel_range(s, i, lo, n));
            for (size_t j = lo; j < n; j++) sc[i * Tk + j] += w[rel_bucket(s, i, j)];
        }
    if (s->p_drop > 0) {
        real keep_scale = 1 / (1 - s->p_drop);
        uint32_t th = rng_threshold((double)s->p_drop);
        size_t base = bh * Tq * Tk;
        for (size_t i = 0; i < Tq * Tk; i++) sc[i] = rng_keep(s->drop_key, base + i, th) ? sc[i] * keep_scale : 0;
    }
    // Softmax backward: dS = P * (dP - sum_j P dP), times the score scale.
    for (size_t i = 0; i < Tq; i++) {
        const real *pr = p + i * Tk;
        real *dr = sc + i * Tk;
        real dot = 0;
        for (size_t j = 0; j < Tk; j++) dot += pr[j] * dr[j];
        for (size_t j = 0; j < Tk; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
    }
    product(s, 0, 0, Tq, D, Tk, 1, sc, Tk, kb, s->ldk, 1, dqb, s->ldq);
    product(s, 1, 0, Tk, D, Tq, 1, sc, Tk, qb, s->ldq, 1, dkb, s->ldk);
    if (s->rel_k)  // the scores' relative terms: dq += dS rel_k, drel_k += dS^T q, by distance
        for (size_t i = 0; i < Tq; i++) {
            n = key_range(s, b, i, &lo);
            RelRange rr = rel_buckets(w, sc + i * Tk, 0, s, i, lo, n);
            rel_mix(dqb + i * s->ldq, w, s->rel_k, s, rr);
            rel_outer(part, w, qb + i * s->ldq, s, rr);
        }
}

void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dout,
                        const real *probs, const real *q, const real *k, const real *v,
                        const AttnShape *s) {
    size_t BH = s->B * s->H, RD = (2 * s->rel_max + 1) * s->D;
    // The heads run in ATTN_REL_PARTS fixed runs of consecutive heads; with
    // relative positions each run sums its heads' gradient shares in order
    // into its own part, and the parts are added in order: the same sums
    // whatever the threads.
    if (s->rel_k) memset(s->rel_scratch, 0, ATTN_REL_PARTS * 2 * RD * sizeof(real));
    int band = attn_cols(s) < s->Tk;
    real *vT = s->rel_v ? rel_transposed(s->rel_v, s) : NULL;
    #pragma omp parallel if (BH * s->Tq * attn_cols(s) * s->D > PAR_MIN)
    {
        real *blk = band ? band_scratch(s) : NULL;
        #pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < ATTN_REL_PARTS; c++) {
            real *part = s->rel_k ? s->rel_scratch + c * 2 * RD : NULL;
            for (size_t bh = c * BH / ATTN_REL_PARTS; bh < (c + 1) * BH / ATTN_REL_PARTS; bh++)
                if (band) band_backward_head(dq, dk, dv, scratch, blk, dout, probs, q, k, v, s, bh, part, vT);
                else attention_backward_head(dq, dk, dv, scratch, dout, probs, q, k, v, s, bh, part, vT);
        }
        free(blk);
    }
    free(vT);
    if (!s->rel_k) return;
    for (size_t c = 0; c < ATTN_REL_PARTS; c++)
        for (size_t x = 0; x < RD; x++) {
            s->drel_k[x] += s->rel_scratch[c * 2 * RD + x];
            s->drel_v[x] += s->rel_scratch[c * 2 * RD + RD + x];
        }
}
