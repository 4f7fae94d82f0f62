// io/export.c — nmt's parameter table <-> fairseq-style safetensors names
// (the names and splits are the parameter layout's: model/layout.h).
#include "io/export.h"
#include "io/checkpoint.h"
#include "model/layout.h"
#include "model/shape.h"
#include "io/safetensors.h"
#include "common/util.h"

#include <errno.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The table's tensor of layout entry lt (the model was made from the same
// shape, so they agree; checked anyway).
static const Tensor *table_tensor(const Model *m, const LayoutTensor *lt) {
    const Tensor *t = lt->index < (size_t)arrlen(m->tensors) ? &m->tensors[lt->index] : NULL;
    if (!t || t->offset != lt->offset || t->rows != lt->rows || t->cols != lt->cols) {
        fprintf(stderr, "nmt: internal error: tensor %zu is not where the layout puts it\n", lt->index);
        abort();
    }
    return t;
}

// Part p of tensor t as the file lays it out: its name and shape.
static void part_shape(const Tensor *t, const FileNames *fn, int p, StTensor *st) {
    size_t w = t->cols / (size_t)fn->parts, R = t->rows;
    snprintf(st->name, sizeof st->name, "%s", fn->names[p]);
    st->ndim = R == 1 ? 1 : 2;
    st->shape[0] = R == 1 ? w : fn->transpose ? w : R;
    st->shape[1] = fn->transpose ? R : w;
    st->data = NULL;
}

// Part p of tensor t as the file lays it out: shape and values (a new buffer).
static float *part_out(const Tensor *t, const real *v, const FileNames *fn, int p, StTensor *st) {
    size_t w = t->cols / (size_t)fn->parts, c0 = (size_t)p * w, R = t->rows;
    float *out = xmalloc((R * w > 0 ? R * w : 1) * sizeof *out);
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < w; c++) out[fn->transpose ? c * R + r : r * w + c] = (float)v[r * t->cols + c0 + c];
    part_shape(t, fn, p, st);
    st->data = out;
    return out;
}

// The file's tensors of a model, with their buffers, as the walk makes them.
typedef struct {
    const Model *m;
    StTensor *tensors;  // stb arrays
    float **bufs;
} Out;

static int out_tensor(void *arg, const LayoutTensor *lt) {
    Out *o = arg;
    const Tensor *t = table_tensor(o->m, lt);
    FileNames fn;
    layout_file_names(lt, &fn);
    for (int p = 0; p < fn.parts; p++) {
        StTensor s;
        arrput(o->bufs, part_out(t, o->m->params + t->offset, &fn, p, &s));
        arrput(o->tensors, s);
    }
    return NMT_OK;
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
    Out o = {m, NULL, NULL};
    rc = layout_walk(&m->s, out_tensor, &o, NULL);
    char *cfg = config_to_json(&l.c), step[32];
    size_t tlen;
    char *tok = tokenizer_serialize(&l.t, &tlen);
    snprintf(step, sizeof step, "%ld", l.step);
    size_t lid_len;
    char *lid = tokenizer_profiles_to_text(&l.t, &lid_len);
    StMeta meta[7] = {{"format", "pt"}, {"nmt.config", cfg}, {"nmt.tokenizer", tok}, {"nmt.step", step}};
    size_t nmeta = 4;
    if (l.c.src_lang[0]) {  // also in nmt.config: here for readers that know no nmt config
        meta[nmeta++] = (StMeta){"nmt.src_lang", l.c.src_lang};
        meta[nmeta++] = (StMeta){"nmt.tgt_lang", l.c.tgt_lang};
    }
    if (lid) meta[nmeta++] = (StMeta){"nmt.langid", lid};
    if (!rc) rc = st_write(out, o.tensors, (size_t)arrlen(o.tensors), meta, nmeta);
    free(lid);
    for (ptrdiff_t i = 0; i < arrlen(o.bufs); i++) free(o.bufs[i]);
    arrfree(o.bufs);
    arrfree(o.tensors);
    free(cfg);
    free(tok);
    loaded_free(&l);
    return rc;
}

// Fills tensor t of the model from the file's parts fn; errors name the file.
static int fill_tensor(const StFile *f, const Tensor *t, const FileNames *fn, real *v, const char *path) {
    for (int p = 0; p < fn->parts; p++) {
        StTensor want;
        part_shape(t, fn, p, &want);
        const StTensor *got = st_find(f, want.name);
        if (!got) return err_set(NMT_ERR_INPUT, "%s: tensor '%s' is missing", path, want.name);
        if (got->ndim != want.ndim || got->shape[0] != want.shape[0] || (want.ndim == 2 && got->shape[1] != want.shape[1]))
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' has shape [%zu%s%zu], the config needs [%zu%s%zu]", path,
                           want.name, got->shape[0], got->ndim == 2 ? ", " : "", got->ndim == 2 ? got->shape[1] : 0,
                           want.shape[0], want.ndim == 2 ? ", " : "", want.ndim == 2 ? want.shape[1] : 0);
        size_t w = t->cols / (size_t)fn->parts, R = t->rows, c0 = (size_t)p * w;
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < w; c++) {
                float x;
                memcpy(&x, got->data + (fn->transpose ? c * R + r : r * w + c), sizeof x);  // may be unaligned
                v[r * t->cols + c0 + c] = x;
            }
    }
    return NMT_OK;
}

// The model's tensors from the file, as the walk names them; parts counts
// the file's tensors they read.
typedef struct {
    const StFile *f;
    Model *m;
    const char *path;
    size_t parts;
} In;

static int in_tensor(void *arg, const LayoutTensor *lt) {
    In *in = arg;
    const Tensor *t = table_tensor(in->m, lt);
    FileNames fn;
    layout_file_names(lt, &fn);
    in->parts += (size_t)fn.parts;
    return fill_tensor(in->f, t, &fn, in->m->params + t->offset, in->path);
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
    // The checks loading makes (kind, shared_vocab), before anything is written.
    if (!rc && (rc = checkpoint_check_tokenizer(c, t, what))) tokenizer_free(t);
    if (rc) config_free(c);
    return rc;
}

// The languages' metadata: nmt.langid (the language profiles, when there)
// into the tokenizer; nmt.src_lang and nmt.tgt_lang (both or neither, codes
// as the config takes them) recorded in a config that has no languages.
static int import_languages(const StFile *f, const char *in, Config *c, Tokenizer *t) {
    const char *lid = st_meta(f, "nmt.langid"), *src = st_meta(f, "nmt.src_lang"), *tgt = st_meta(f, "nmt.tgt_lang");
    char what[4200];
    snprintf(what, sizeof what, "%s: nmt.langid", in);
    if (lid && tokenizer_profiles_from_text(t, lid, strlen(lid), what)) return err_code();
    if (!src && !tgt) return NMT_OK;
    if (!src || !tgt)
        return err_set(NMT_ERR_INPUT, "%s: nmt.%s_lang without nmt.%s_lang", in, src ? "src" : "tgt", src ? "tgt" : "src");
    if (!config_lang_code_ok(src) || !config_lang_code_ok(tgt) || strcmp(src, tgt) == 0)
        return err_set(NMT_ERR_INPUT, "%s: nmt.src_lang \"%.40s\" and nmt.tgt_lang \"%.40s\" are not two language codes",
                       in, src, tgt);
    if (!c->src_lang[0]) {
        snprintf(c->src_lang, sizeof c->src_lang, "%s", src);
        snprintf(c->tgt_lang, sizeof c->tgt_lang, "%s", tgt);
    }
    return NMT_OK;
}

// The written temporary loads as any checkpoint does (ckpt_write_checked calls
// this before the rename): otherwise the error names OUT, which is left as it was.
static int loads_back(const char *tmp, void *out) {
    Loaded back;
    int rc = checkpoint_load_decoding(&back, tmp, 0);
    if (!rc) {
        loaded_free(&back);
        return NMT_OK;
    }
    return err_prefix("%s: not written (left as it was): the checkpoint made does not load back", (const char *)out);
}

int import_write(const char *out, const Loaded *l, const char *state_json) {
    return checkpoint_save_checked(out, &l->c, &l->t, &l->m, NULL, state_json, loads_back, (void *)out);
}

// nmt.step becomes the state's "step", a JSON number cJSON prints with 15
// significant digits: below 10^15 it comes back exact (a checkpoint's
// loader takes up to 2^53, which would come back rounded).
#define IMPORT_STEP_MAX 999999999999999L

// The step the metadata names: 0 when absent, else a count up to IMPORT_STEP_MAX.
static int import_step(const StFile *f, const char *in, long *step) {
    const char *s = st_meta(f, "nmt.step");
    *step = 0;
    if (!s) return NMT_OK;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || *s < '0' || *s > '9' || errno == ERANGE || v > IMPORT_STEP_MAX)
        return err_set(NMT_ERR_INPUT, "%s: nmt.step \"%.40s\" is not a step count from 0 to %ld", in, s,
                       IMPORT_STEP_MAX);
    *step = v;
    return NMT_OK;
}

int import_safetensors(const char *in, const char *config_path, Loaded *l) {
    memset(l, 0, sizeof *l);
    StFile f;
    int rc = st_read(&f, in);
    if (rc) return rc;
    Config c;
    Tokenizer t;
    rc = import_config(&f, in, config_path, &c, &t);
    if (!rc && (rc = import_languages(&f, in, &c, &t))) {
        tokenizer_free(&t);
        config_free(&c);
    }
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
    In fill = {&f, &m, in, 0};
    if (!rc) rc = layout_walk(&s, in_tensor, &fill, NULL);
    if (!rc && fill.parts != (size_t)arrlen(f.tensors))
        rc = err_set(NMT_ERR_INPUT, "%s: %td tensors, the model has %zu (names that are not the model's?)", in,
                     arrlen(f.tensors), fill.parts);
    if (!rc) rc = checkpoint_check_finite(&m, NULL, in);
    long step = 0;
    if (!rc) rc = import_step(&f, in, &step);
    if (!rc) {
        *l = (Loaded){c, t, m, step};
    } else {
        model_free(&m);
        tokenizer_free(&t);
        config_free(&c);
    }
    st_free(&f);
    return rc;
}
