// kernels/ops.h — forward/backward kernels on raw arrays.
// Conventions: outputs first, then inputs, then weights, then dimensions.
// Every backward ACCUMULATES (+=) into its gradients, except xent_backward,
// which writes (its output may overwrite the logits in place).
// Results never depend on the number of OpenMP threads.
#ifndef NMT_OPS_H
#define NMT_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "common/real.h"

// Sinusoidal position table: pe (maxT, C), pe[t][2i] = sin(t/10000^(2i/C)), pe[t][2i+1] = cos(..).
void positions_table(real *pe, size_t maxT, size_t C);

// out (B,T,C) = table[ids] * scale + pe[t0 + t]. ids (B,T), table (V,C), pe (>=t0+T, C)
// or NULL (no positions added).
// The positions carry no parameters: their backward is the identity.
void embed_forward(real *out, const int *ids, const real *table, const real *pe,
                   size_t B, size_t T, size_t C, size_t t0, real scale);
// dtable (V,C) += scale * dout scattered by ids. dout (N,C), ids (N).
void embed_backward(real *dtable, const real *dout, const int *ids, size_t N, size_t C, real scale);

// out (N,M) = inp (N,K) . w (K,M) + b (M); b may be NULL. bf16: the products
// are gemm's bf16 ones (GemmCall.bf16), here and below.
void linear_forward(real *out, const real *inp, const real *w, const real *b,
                    size_t N, size_t K, size_t M, int bf16);
// out = max(0, inp.w + b): linear_forward then relu_forward in one pass.
void linear_relu_forward(real *out, const real *inp, const real *w, const real *b,
                         size_t N, size_t K, size_t M, int bf16);
// dinp (N,K) += dout.w^T; dw (K,M) += inp^T.dout; db (M) += column sums. dinp/db may be NULL.
void linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                     const real *w, size_t N, size_t K, size_t M, int bf16);

// out (N,C) = (inp - mean) * rstd * w + b; mean, rstd (N) saved for backward.
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp,
                       const real *w, const real *b, size_t N, size_t C);
void layernorm_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                        const real *w, const real *mean, const real *rstd, size_t N, size_t C);

// out = max(inp, 0), n elements (out may equal inp).
void relu_forward(real *out, const real *inp, size_t n);
// dinp += dout where out > 0.
void relu_backward(real *dinp, const real *dout, const real *out, size_t n);

// Inverted dropout: out = inp * keep / (1-p); keep = uniform(key, i) >= p.
// The mask is a pure function of (key, i): backward regenerates it.
void dropout_forward(real *out, const real *inp, size_t n, real p, uint64_t key);
void dropout_backward(real *dinp, const real *dout, size_t n, real p, uint64_t key);

// The FFN hidden layer, dropout(relu(x)), backward IN PLACE: d (n) holds the
// gradient of the dropped-out output and becomes that of x. h = relu(x).
// (One pass instead of relu_backward after dropout_backward and two zeroed buffers.)
void relu_dropout_backward(real *d, const real *h, size_t n, real p, uint64_t key);

// out = a + b;  backward: da += dout, db += dout.
void residual_forward(real *out, const real *a, const real *b, size_t n);
void residual_backward(real *da, real *db, const real *dout, size_t n);

// Softmax of row[0..n) in place (n >= 1), with the true maximum subtracted
// (the exponentials vectorised where the machine has AVX2).
void softmax_inplace(real *row, size_t n);

// ---- attention (src/attention.c)
// Multi-head scaled dot-product attention over B sequences, H heads of width D.
// q (B,Tq,·) row stride ldq, head h at columns h*D; k (B,Tk,·) stride ldk; v stride ldv.
// out (B,Tq,H*D). probs (B,H,Tq,attn_cols): softmax weights before dropout (saved).
// klen (B): keys j >= klen[b] are padding; causal: key j only for query i >= j.
// Masked weights are exactly 0. scratch: B*H*Tq*attn_cols reals (used when p_drop > 0).
// k and v share the batch stride bskv (a key/value cache may be longer than Tk).
// Forward only, k_transposed: k holds each sequence's keys as (H*D, ldk)
// columns (key j of head h, element d at (h*D + d)*ldk + j), batch stride bsk:
// decoding then reads the keys of one query along rows (same sums, same bits).
typedef struct {
    size_t B, Tq, Tk, H, D, ldq, ldk, ldv;
    size_t bsq, bskv;      // batch strides of q and k/v; 0 = Tq*ldq and Tk*ldk (dense)
    size_t kv_group;       // forward only: rows b use keys/values of b / kv_group (beams); 0 = 1
    const int *klen;
    int causal;
    real p_drop;
    uint64_t drop_key;
    int k_transposed;      // forward only (above)
    size_t bsk;            // with k_transposed: k's batch stride
    const int *kv_row;     // forward only: rows b use keys/values of kv_row[b] (over kv_group); NULL: unused
    // Self-attention only. Query i stands at position q0 + i, key j at j.
    // window > 0: query at position t sees keys j with |j - t| <= window.
    // rel_k, rel_v (2 rel_max + 1, D), shared by the heads (Shaw et al.
    // 2018): score(i, j) += q_i . rel_k[r] / sqrt(D) and out_i += sum_j
    // w_ij rel_v[r], r = clip(j - t, -rel_max, rel_max) + rel_max.
    // Backward adds their gradients into drel_k, drel_v, using rel_scratch
    // (ATTN_REL_PARTS*2*(2 rel_max + 1)*D reals).
    size_t q0, window;
    const real *rel_k, *rel_v;   // NULL: no relative positions
    size_t rel_max;              // <= ATTN_REL_MAX
    real *drel_k, *drel_v, *rel_scratch;
    int bf16;                    // the score and weighting products in bf16 (gemm.h)
} AttnShape;
enum { ATTN_REL_MAX = 256, ATTN_REL_PARTS = 64 };
// The columns of each query's row in probs and scratch: Tk, or with a
// window narrower than the keys, a band of 2 window + 1 slots (window + 1
// causal), slot c holding key q0 + i - window + c; the band is computed
// without the rest, so time and memory grow with Tq * window.
size_t attn_cols(const AttnShape *s);
void attention_forward(real *out, real *probs, real *scratch, const real *q, const real *k,
                       const real *v, const AttnShape *s);
// dq/dk/dv use the strides of q/k/v. scratch: B*H*Tq*attn_cols reals.
void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dout,
                        const real *probs, const real *q, const real *k, const real *v,
                        const AttnShape *s);

// log(sum_j exp(x[j])) over one row of n > 0 values, as the loss computes it:
// the maximum taken out, the exponentials in working precision (vectorised),
// their sum in double.
double log_sum_exp(const real *x, size_t n);

// Label-smoothed cross entropy. logits (N,V), targets (N); rows whose target is
// `pad` contribute nothing. The smoothed target puts 1-eps on the gold token and
// eps/(V-2) on every other token except pad. loss (N): smoothed loss per row;
// nll (N): -log p(gold) per row (0 for pad rows); stats (N,2): each row's
// maximum and log(sum exp(x - max)), for the backward pass. Any of the three
// may be NULL.
void xent_forward(real *loss, real *nll, real *stats, const real *logits, const int *targets,
                  size_t N, size_t V, int pad, real eps);
// dlogits (N,V) = scale * (softmax(logits) - q), 0 on pad rows. WRITES (not +=);
// dlogits may equal logits. stats: the forward pass's (NULL: computed again).
void xent_backward(real *dlogits, const real *logits, const real *stats, const int *targets,
                   size_t N, size_t V, int pad, real eps, real scale);

#endif
