// io/export.c — nmt's parameter table <-> fairseq-style safetensors names.
#include "io/export.h"
#include "io/checkpoint.h"
#include "model/shape.h"
#include "io/safetensors.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// How one nmt tensor (rows, cols) appears in the file: `parts` tensors, part
// p its columns [p cols/parts, (p+1) cols/parts), transposed when `transpose`
// (a linear weight is (in, out) here and (out, in) in PyTorch); a vector
// (rows 1) becomes one dimension.
typedef struct {
    char names[3][128];
    int parts, transpose;
} Mapped;

// Per-layer tensors: nmt's name after "<stack>.<layer>.", the stacks it
// appears in ('e', 'd' or 0 for both), the file's names after
// "<encoder|decoder>.layers.<layer>.".
typedef struct {
    const char *nmt;
    char stack;
    int parts, transpose;
    const char *names[3];
} Rule;

static const Rule RULES[] = {
    {"self_attn.wqkv", 0, 3, 1, {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}},
    {"self_attn.bqkv", 0, 3, 0, {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}},
    {"self_attn.wo", 0, 1, 1, {"self_attn.out_proj.weight"}},
    {"self_attn.bo", 0, 1, 0, {"self_attn.out_proj.bias"}},
    {"self_attn.rel_k", 0, 1, 0, {"self_attn.relative_keys.weight"}},
    {"self_attn.rel_v", 0, 1, 0, {"self_attn.relative_values.weight"}},
    {"cross_attn.wq", 'd', 1, 1, {"encoder_attn.q_proj.weight"}},
    {"cross_attn.bq", 'd', 1, 0, {"encoder_attn.q_proj.bias"}},
    {"cross_attn.wkv", 'd', 2, 1, {"encoder_attn.k_proj.weight", "encoder_attn.v_proj.weight"}},
    {"cross_attn.bkv", 'd', 2, 0, {"encoder_attn.k_proj.bias", "encoder_attn.v_proj.bias"}},
    {"cross_attn.wo", 'd', 1, 1, {"encoder_attn.out_proj.weight"}},
    {"cross_attn.bo", 'd', 1, 0, {"encoder_attn.out_proj.bias"}},
    {"ffn.w1", 0, 1, 1, {"fc1.weight"}},
    {"ffn.b1", 0, 1, 0, {"fc1.bias"}},
    {"ffn.w2", 0, 1, 1, {"fc2.weight"}},
    {"ffn.b2", 0, 1, 0, {"fc2.bias"}},
    {"ln1.w", 0, 1, 0, {"self_attn_layer_norm.weight"}},
    {"ln1.b", 0, 1, 0, {"self_attn_layer_norm.bias"}},
    {"ln2.w", 'e', 1, 0, {"final_layer_norm.weight"}},
    {"ln2.b", 'e', 1, 0, {"final_layer_norm.bias"}},
    {"ln2.w", 'd', 1, 0, {"encoder_attn_layer_norm.weight"}},
    {"ln2.b", 'd', 1, 0, {"encoder_attn_layer_norm.bias"}},
    {"ln3.w", 'd', 1, 0, {"final_layer_norm.weight"}},
    {"ln3.b", 'd', 1, 0, {"final_layer_norm.bias"}},
};

static const struct { const char *nmt, *name; } WHOLE[] = {
    {"src_emb", "encoder.embed_tokens.weight"},    {"tgt_emb", "decoder.embed_tokens.weight"},
    {"out_proj", "decoder.output_projection.weight"}, {"enc.ln_final.w", "encoder.layer_norm.weight"},
    {"enc.ln_final.b", "encoder.layer_norm.bias"}, {"dec.ln_final.w", "decoder.layer_norm.weight"},
    {"dec.ln_final.b", "decoder.layer_norm.bias"},
};

// The file's names of nmt tensor `name`; 0 when it has none (never, for
// the tensors model_create makes).
static int map_name(const char *name, Mapped *m) {
    memset(m, 0, sizeof *m);
    m->parts = 1;
    for (size_t i = 0; i < sizeof WHOLE / sizeof *WHOLE; i++)
        if (strcmp(name, WHOLE[i].nmt) == 0) {
            snprintf(m->names[0], sizeof m->names[0], "%s", WHOLE[i].name);
            return 1;
        }
    char stack[4];
    int layer, used = 0;
    if (sscanf(name, "%3[a-z].%d.%n", stack, &layer, &used) != 2 || used == 0) return 0;
    char s = strcmp(stack, "enc") == 0 ? 'e' : strcmp(stack, "dec") == 0 ? 'd' : 0;
    for (size_t i = 0; s && i < sizeof RULES / sizeof *RULES; i++) {
        const Rule *r = &RULES[i];
        if (strcmp(name + used, r->nmt) != 0 || (r->stack && r->stack != s)) continue;
        m->parts = r->parts;
        m->transpose = r->transpose;
        for (int p = 0; p < r->parts; p++)
            snprintf(m->names[p], sizeof m->names[p], "%s.layers.%d.%s", s == 'e' ? "encoder" : "decoder", layer,
                     r->names[p]);
        return 1;
    }
    return 0;
}

// Part p of tensor t as the file lays it out: its name and shape.
static void part_shape(const Tensor *t, const Mapped *m, int p, StTensor *st) {
    size_t w = t->cols / (size_t)m->parts, R = t->rows;
    snprintf(st->name, sizeof st->name, "%s", m->names[p]);
    st->ndim = R == 1 ? 1 : 2;
    st->shape[0] = R == 1 ? w : m->transpose ? w : R;
    st->shape[1] = m->transpose ? R : w;
    st->data = NULL;
}

// Part p of tensor t as the file lays it out: shape and values (a new buffer).
static float *part_out(const Tensor *t, const real *v, const Mapped *m, int p, StTensor *st) {
    size_t w = t->cols / (size_t)m->parts, c0 = (size_t)p * w, R = t->rows;
    float *out = xmalloc((R * w > 0 ? R * w : 1) * sizeof *out);
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < w; c++) out[m->transpose ? c * R + r : r * w + c] = (float)v[r * t->cols + c0 + c];
    part_shape(t, m, p, st);
    st->data = out;
    return out;
}

int export_safetensors(const char *in, const char *out) {
    Loaded l;
    int rc = checkpoint_load_decoding(&l, in, 0);
    if (rc) return rc;
    const Model *m = &l.m;
    if (m->quant) {
        rc = err_set(NMT_ERR_INPUT, "%s: int8 weights; export the float checkpoint it was quantized from", in);
        loaded_free(&l);
        return rc;
    }
    StTensor *tensors = NULL;
    float **bufs = NULL;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        Mapped mp;
        if (!map_name(m->tensors[i].name, &mp)) {
            fprintf(stderr, "nmt: internal error: no export name for tensor '%s'\n", m->tensors[i].name);
            abort();
        }
        for (int p = 0; p < mp.parts; p++) {
            StTensor s;
            arrput(bufs, part_out(&m->tensors[i], m->params + m->tensors[i].offset, &mp, p, &s));
            arrput(tensors, s);
        }
    }
    char *cfg = config_to_json(&l.c), step[32];
    size_t tlen;
    char *tok = tokenizer_serialize(&l.t, &tlen);
    snprintf(step, sizeof step, "%ld", l.step);
    StMeta meta[] = {{"format", "pt"}, {"nmt.config", cfg}, {"nmt.tokenizer", tok}, {"nmt.step", step}};
    rc = st_write(out, tensors, (size_t)arrlen(tensors), meta, sizeof meta / sizeof *meta);
    for (ptrdiff_t i = 0; i < arrlen(bufs); i++) free(bufs[i]);
    arrfree(bufs);
    arrfree(tensors);
    free(cfg);
    free(tok);
    loaded_free(&l);
    return rc;
}

// Fills tensor t of the model from the file's parts; errors name the file.
static int fill_tensor(const StFile *f, const Tensor *t, real *v, const char *path) {
    Mapped mp;
    if (!map_name(t->name, &mp)) return err_set(NMT_ERR_INPUT, "%s: no name for tensor '%s'", path, t->name);
    for (int p = 0; p < mp.parts; p++) {
        StTensor want;
        part_shape(t, &mp, p, &want);
        const StTensor *got = st_find(f, want.name);
        if (!got) return err_set(NMT_ERR_INPUT, "%s: tensor '%s' is missing", path, want.name);
        if (got->ndim != want.ndim || got->shape[0] != want.shape[0] || (want.ndim == 2 && got->shape[1] != want.shape[1]))
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' has shape [%zu%s%zu], the config needs [%zu%s%zu]", path,
                           want.name, got->shape[0], got->ndim == 2 ? ", " : "", got->ndim == 2 ? got->shape[1] : 0,
                           want.shape[0], want.ndim == 2 ? ", " : "", want.ndim == 2 ? want.shape[1] : 0);
        size_t w = t->cols / (size_t)mp.parts, R = t->rows, c0 = (size_t)p * w;
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < w; c++) {
                float x;
                memcpy(&x, got->data + (mp.transpose ? c * R + r : r * w + c), sizeof x);  // may be unaligned
                v[r * t->cols + c0 + c] = x;
            }
    }
    return NMT_OK;
}

// The config (from config_path, checked against the file's, or the file's)
// and the tokenizer from the metadata.
static int import_config(const StFile *f, const char *in, const char *config_path, Config *c, Tokenizer *t) {
    const char *cfg = st_meta(f, "nmt.config"), *tok = st_meta(f, "nmt.tokenizer");
    if (!cfg || !tok)
        return err_set(NMT_ERR_INPUT, "%s: no nmt.config and nmt.tokenizer metadata (written by nmt export?)", in);
    char what[4200];
    snprintf(what, sizeof what, "%s: nmt.config", in);
    int rc = config_parse(c, cfg, what, NULL, 0);  // frees c when it fails
    if (rc) return rc;
    if (config_path) {
        Config user;
        char diff[512];
        rc = config_load(&user, config_path, NULL, 0);  // likewise
        if (!rc && config_diff(c, &user, 1, diff, sizeof diff)) {
            rc = err_set(NMT_ERR_INPUT, "%s: model keys differ from %s's: %s", config_path, in, diff);
            config_free(&user);
        }
        config_free(c);
        if (rc) return rc;
        *c = user;
    }
    snprintf(what, sizeof what, "%s: nmt.tokenizer", in);
    rc = tokenizer_deserialize(t, tok, strlen(tok), what);
    if (!rc && t->kind != c->tokenizer) {
        tokenizer_free(t);
        rc = err_set(NMT_ERR_INPUT, "%s: the tokenizer is not the kind data.tokenizer names", in);
    }
    if (rc) config_free(c);
    return rc;
}

int import_write(const char *out, const Loaded *l, const char *state_json) {
    int rc = checkpoint_save(out, &l->c, &l->t, &l->m, NULL, state_json);
    if (rc) return rc;
    // The written checkpoint loads as any other, or is removed.
    Loaded back;
    rc = checkpoint_load_decoding(&back, out, 0);
    if (rc) {
        remove(out);
        return rc;
    }
    loaded_free(&back);
    return NMT_OK;
}

// The step the metadata names (0 when absent or not a count).
static long import_step(const StFile *f) {
    const char *step = st_meta(f, "nmt.step");
    char *end = NULL;
    long v = step ? strtol(step, &end, 10) : 0;
    return step && *step && !*end && v >= 0 ? v : 0;
}

int import_safetensors(const char *in, const char *config_path, Loaded *l) {
    memset(l, 0, sizeof *l);
    StFile f;
    int rc = st_read(&f, in);
    if (rc) return rc;
    Config c;
    Tokenizer t;
    rc = import_config(&f, in, config_path, &c, &t);
    if (rc) {
        st_free(&f);
        return rc;
    }
    // The model the config asks for must fit in what the file holds before
    // anything is allocated (an untrusted config could ask for any size).
    ModelShape s = model_shape_from(&c, &t);
    size_t ntensors, floats = 0;
    size_t need = model_param_count(&s, &ntensors);
    for (ptrdiff_t i = 0; i < arrlen(f.tensors); i++)
        floats += f.tensors[i].ndim == 1 ? f.tensors[i].shape[0] : f.tensors[i].shape[0] * f.tensors[i].shape[1];
    if (need == 0 || need > floats + 16 * ntensors)
        rc = err_set(NMT_ERR_INPUT, "%s: the config's model needs %zu values, the file holds %zu", in, need, floats);
    Model m;
    memset(&m, 0, sizeof m);
    if (!rc) model_create(&m, &s);
    size_t parts = 0;
    for (ptrdiff_t i = 0; !rc && i < arrlen(m.tensors); i++) {
        Mapped mp;
        parts += map_name(m.tensors[i].name, &mp) ? (size_t)mp.parts : 0;
        rc = fill_tensor(&f, &m.tensors[i], m.params + m.tensors[i].offset, in);
    }
    if (!rc && parts != (size_t)arrlen(f.tensors))
        rc = err_set(NMT_ERR_INPUT, "%s: %td tensors, the model has %zu (names that are not the model's?)", in,
                     arrlen(f.tensors), parts);
    if (!rc) rc = checkpoint_check_finite(&m, NULL, in);
    if (!rc) {
        *l = (Loaded){c, t, m, import_step(&f)};
    } else {
        model_free(&m);
        tokenizer_free(&t);
        config_free(&c);
    }
    st_free(&f);
    return rc;
}
