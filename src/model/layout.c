// model/layout.c — the one description of the parameter layout: which
// tensors a shape has, in which order, their sizes and initialisation
// (the walk) and their names, nmt's and the exported file's (the table).
#include "model/layout.h"
#include "common/util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

// Each role's names: nmt's after "<enc|dec>.<layer>." (or "<enc|dec>." for a
// stack's final norm), and the file's after "<encoder|decoder>.layers.<layer>."
// (or "<encoder|decoder>."), one per part; the embeddings' are whole names.
static const struct {
    const char *nmt;
    int parts, transpose;
    const char *file[3];
} ROLES[ROLE_COUNT] = {
    [ROLE_SRC_EMB] = {"src_emb", 1, 0, {"encoder.embed_tokens.weight"}},
    [ROLE_TGT_EMB] = {"tgt_emb", 1, 0, {"decoder.embed_tokens.weight"}},
    [ROLE_OUT_PROJ] = {"out_proj", 1, 0, {"decoder.output_projection.weight"}},
    [ROLE_SELF_WQKV] = {"self_attn.wqkv", 3, 1,
                        {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}},
    [ROLE_SELF_BQKV] = {"self_attn.bqkv", 3, 0,
                        {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}},
    [ROLE_SELF_WO] = {"self_attn.wo", 1, 1, {"self_attn.out_proj.weight"}},
    [ROLE_SELF_BO] = {"self_attn.bo", 1, 0, {"self_attn.out_proj.bias"}},
    [ROLE_SELF_REL_K] = {"self_attn.rel_k", 1, 0, {"self_attn.relative_keys.weight"}},
    [ROLE_SELF_REL_V] = {"self_attn.rel_v", 1, 0, {"self_attn.relative_values.weight"}},
    [ROLE_SELF_LN_W] = {"ln1.w", 1, 0, {"self_attn_layer_norm.weight"}},
    [ROLE_SELF_LN_B] = {"ln1.b", 1, 0, {"self_attn_layer_norm.bias"}},
    [ROLE_CROSS_WQ] = {"cross_attn.wq", 1, 1, {"encoder_attn.q_proj.weight"}},
    [ROLE_CROSS_BQ] = {"cross_attn.bq", 1, 0, {"encoder_attn.q_proj.bias"}},
    [ROLE_CROSS_WKV] = {"cross_attn.wkv", 2, 1, {"encoder_attn.k_proj.weight", "encoder_attn.v_proj.weight"}},
    [ROLE_CROSS_BKV] = {"cross_attn.bkv", 2, 0, {"encoder_attn.k_proj.bias", "encoder_attn.v_proj.bias"}},
    [ROLE_CROSS_WO] = {"cross_attn.wo", 1, 1, {"encoder_attn.out_proj.weight"}},
    [ROLE_CROSS_BO] = {"cross_attn.bo", 1, 0, {"encoder_attn.out_proj.bias"}},
    [ROLE_CROSS_LN_W] = {"ln2.w", 1, 0, {"encoder_attn_layer_norm.weight"}},
    [ROLE_CROSS_LN_B] = {"ln2.b", 1, 0, {"encoder_attn_layer_norm.bias"}},
    [ROLE_FFN_W1] = {"ffn.w1", 1, 1, {"fc1.weight"}},
    [ROLE_FFN_B1] = {"ffn.b1", 1, 0, {"fc1.bias"}},
    [ROLE_FFN_W2] = {"ffn.w2", 1, 1, {"fc2.weight"}},
    [ROLE_FFN_B2] = {"ffn.b2", 1, 0, {"fc2.bias"}},
    [ROLE_ENC_FFN_LN_W] = {"ln2.w", 1, 0, {"final_layer_norm.weight"}},
    [ROLE_ENC_FFN_LN_B] = {"ln2.b", 1, 0, {"final_layer_norm.bias"}},
    [ROLE_DEC_FFN_LN_W] = {"ln3.w", 1, 0, {"final_layer_norm.weight"}},
    [ROLE_DEC_FFN_LN_B] = {"ln3.b", 1, 0, {"final_layer_norm.bias"}},
    [ROLE_FINAL_LN_W] = {"ln_final.w", 1, 0, {"layer_norm.weight"}},
    [ROLE_FINAL_LN_B] = {"ln_final.b", 1, 0, {"layer_norm.bias"}},
};

// ---------------------------------------------------------------- the walk

typedef struct {
    const ModelShape *s;
    LayoutVisit visit;
    void *arg;
    LayoutTensor t;  // the next tensor's stack, layer, index and offset
    int rc;
} Walk;

// Visits the next tensor and moves past it (16-real aligned for the SIMD
// kernels); an overflow stops the walk.
static void put(Walk *w, ParamRole role, size_t rows, size_t cols, int decay, real bound) {
    LayoutTensor *t = &w->t;
    if (w->rc) return;
    if (rows && cols > SIZE_MAX / rows) { w->rc = NMT_ERR_INPUT; return; }
    size_t e = rows * cols;
    if (e > SIZE_MAX - 15) { w->rc = NMT_ERR_INPUT; return; }
    e = (e + 15) & ~(size_t)15;
    if (e > SIZE_MAX - t->offset) { w->rc = NMT_ERR_INPUT; return; }
    t->role = role;
    t->rows = rows;
    t->cols = cols;
    t->size = e;
    t->decay = decay;
    t->init_bound = bound;
    w->rc = w->visit ? w->visit(w->arg, t) : NMT_OK;
    t->index++;
    t->offset += e;
}

static real xavier(size_t fan_in, size_t fan_out) {
    return (real)sqrt(6.0 / (double)(fan_in + fan_out));
}

static size_t width(const Walk *w) { return (size_t)w->s->d_model; }

// A weight (in, out) at `role`, its bias (out) at role + 1.
static void linear(Walk *w, ParamRole role, size_t in, size_t out, size_t fan_out) {
    put(w, role, in, out, 1, xavier(in, fan_out));
    put(w, role + 1, 1, out, 0, 0);
}

// A LayerNorm: the gain (ones) at `role`, the bias at role + 1.
static void norm(Walk *w, ParamRole role) {
    put(w, role, 1, width(w), 0, -1);
    put(w, role + 1, 1, width(w), 0, 0);
}

static void self_attn(Walk *w) {
    size_t C = width(w);
    linear(w, ROLE_SELF_WQKV, C, 3 * C, C);
    linear(w, ROLE_SELF_WO, C, C, C);
    if (w->s->relative) {  // one embedding per clipped distance, shared by the heads
        size_t D = w->s->heads > 0 ? C / (size_t)w->s->heads : 0, R = 2 * (size_t)w->s->max_rel + 1;
        real bound = (real)(sqrt(3.0) / sqrt((double)D));  // std D^-0.5, as the token embeddings
        put(w, ROLE_SELF_REL_K, R, D, 1, bound);
        put(w, ROLE_SELF_REL_V, R, D, 1, bound);
    }
    norm(w, ROLE_SELF_LN_W);
}

static void cross_attn(Walk *w) {
    size_t C = width(w);
    linear(w, ROLE_CROSS_WQ, C, C, C);
    linear(w, ROLE_CROSS_WKV, C, 2 * C, C);
    linear(w, ROLE_CROSS_WO, C, C, C);
    norm(w, ROLE_CROSS_LN_W);
}

static void ffn(Walk *w, ParamRole norm_role) {
    size_t C = width(w), F = (size_t)w->s->d_ff;
    linear(w, ROLE_FFN_W1, C, F, F);
    linear(w, ROLE_FFN_W2, F, C, C);
    norm(w, norm_role);
}

// The token embeddings and the output projection (when not shared or tied).
static void embeddings(Walk *w) {
    const ModelShape *s = w->s;
    size_t C = width(w), V = (size_t)s->tgt_vocab;
    real emb_bound = (real)(sqrt(3.0) / sqrt((double)C));  // std d^-0.5
    put(w, ROLE_SRC_EMB, (size_t)s->src_vocab, C, 1, emb_bound);
    if (!s->shared_vocab) put(w, ROLE_TGT_EMB, V, C, 1, emb_bound);
    if (!s->tie_output) put(w, ROLE_OUT_PROJ, V, C, 1, xavier(C, V));
}

int layout_walk(const ModelShape *s, LayoutVisit visit, void *arg, size_t *nparams) {
    Walk w = {s, visit, arg, {.stack = LAYOUT_NONE, .layer = -1}, NMT_OK};
    if ((size_t)s->d_model > SIZE_MAX / 3) w.rc = NMT_ERR_INPUT;
    embeddings(&w);
    w.t.stack = LAYOUT_ENC;
    for (int l = 0; l < s->enc_layers && !w.rc; l++) {
        w.t.layer = l;
        self_attn(&w);
        ffn(&w, ROLE_ENC_FFN_LN_W);
    }
    w.t.stack = LAYOUT_DEC;
    for (int l = 0; l < s->dec_layers && !w.rc; l++) {
        w.t.layer = l;
        self_attn(&w);
        cross_attn(&w);
        ffn(&w, ROLE_DEC_FFN_LN_W);
    }
    w.t.layer = -1;
    if (s->pre_norm) {
        w.t.stack = LAYOUT_ENC;
        norm(&w, ROLE_FINAL_LN_W);
        w.t.stack = LAYOUT_DEC;
        norm(&w, ROLE_FINAL_LN_W);
    }
    if (nparams) *nparams = w.rc ? 0 : w.t.offset;
    return w.rc;
}

// ---------------------------------------------------------------- names

void layout_name(const LayoutTensor *t, char *buf, size_t cap) {
    const char *stack = t->stack == LAYOUT_ENC ? "enc" : "dec", *what = ROLES[t->role].nmt;
    if (t->stack == LAYOUT_NONE) snprintf(buf, cap, "%s", what);
    else if (t->layer < 0) snprintf(buf, cap, "%s.%s", stack, what);
    else snprintf(buf, cap, "%s.%d.%s", stack, t->layer, what);
}

void layout_file_names(const LayoutTensor *t, FileNames *f) {
    const char *stack = t->stack == LAYOUT_ENC ? "encoder" : "decoder";
    f->parts = ROLES[t->role].parts;
    f->transpose = ROLES[t->role].transpose;
    for (int p = 0; p < 3; p++) {
        const char *what = p < f->parts ? ROLES[t->role].file[p] : NULL;
        if (!what) f->names[p][0] = 0;
        else if (t->stack == LAYOUT_NONE) snprintf(f->names[p], sizeof f->names[p], "%s", what);
        else if (t->layer < 0) snprintf(f->names[p], sizeof f->names[p], "%s.%s", stack, what);
        else snprintf(f->names[p], sizeof f->names[p], "%s.layers.%d.%s", stack, t->layer, what);
    }
}
