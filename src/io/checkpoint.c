// io/checkpoint.c — the sections of a checkpoint, on top of ckptfile.
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "io/ckpt_quant.h"
#include "model/shape.h"
#include "model/quant.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tensor_table(const Model *m, size_t *len) {
    size_t cap = 256 + (size_t)arrlen(m->tensors) * 128;
    char *s = xmalloc(cap), *p = s;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        p += snprintf(p, cap - (size_t)(p - s), "%s %zu %zu %zu %d\n", t->name, t->rows, t->cols, t->offset, t->decay);
    }
    *len = (size_t)(p - s);
    return s;
}

int checkpoint_save(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                    const Optimizer *opt, const char *state_json) {
    return checkpoint_save_checked(path, c, t, m, opt, state_json, NULL, NULL);
}

int checkpoint_save_checked(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                            const Optimizer *opt, const char *state_json, CkptCheck check, void *arg) {
    char *cfg = config_to_json(c);
    size_t tok_len, tab_len;
    char *tok = tokenizer_serialize(t, &tok_len);
    char *tab = tensor_table(m, &tab_len);
    size_t lid_len;
    char *lid = tokenizer_profiles_to_text(t, &lid_len);
    CkptSection sec[6 + OPTIM_MAX_STATE + QUANT_SECTIONS];
    void *owned[QUANT_SECTIONS] = {0};
    int n = 0;
    sec[n++] = (CkptSection){"config", cfg, strlen(cfg)};
    sec[n++] = (CkptSection){"tokenizer", tok, tok_len};
    if (lid) sec[n++] = (CkptSection){"langid", lid, lid_len};  // only when there are profiles
    sec[n++] = (CkptSection){"tensors", tab, tab_len};
    if (m->quant) {  // an int8 model is saved as one, without optimizer state
        quant_sections(m, sec + n, owned);
        n += QUANT_SECTIONS;
    } else {
        sec[n++] = (CkptSection){"params", m->params, m->nparams * sizeof(real)};
        for (int i = 0; opt && i < opt->nstate; i++)
            sec[n++] = (CkptSection){opt->state_name[i], opt->state[i], opt->n * sizeof(real)};
    }
    sec[n++] = (CkptSection){"state", state_json, strlen(state_json)};
    int rc = ckpt_write_checked(path, sec, n, check, arg);
    for (int i = 0; i < QUANT_SECTIONS; i++) free(owned[i]);
    free(cfg);
    free(tok);
    free(tab);
    free(lid);
    return rc;
}

// A section's text as a NUL-terminated copy.
static char *section_text(const CkptFile *f, const char *name, const char *path) {
    uint64_t n;
    const char *p = ckpt_section(f, name, &n);
    if (!p) {
        err_set(NMT_ERR_INPUT, "%s: checkpoint has no '%s' section", path, name);
        return NULL;
    }
    char *s = xmalloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    if (strlen(s) != (size_t)n) {
        free(s);
        err_set(NMT_ERR_INPUT, "%s: section '%s' is not text", path, name);
        return NULL;
    }
    return s;
}

// The tokenizer must be the one the config describes: its kind, and for
// shared vocabularies one table (the model then has one embedding matrix,
// indexed by ids of both sides).
int checkpoint_check_tokenizer(const Config *c, const Tokenizer *t, const char *path) {
    if (t->kind != c->tokenizer)
        return err_set(NMT_ERR_INPUT, "%s: the tokenizer section holds a %s tokenizer, the config's data.tokenizer is \"%s\"",
                       path, t->kind == TOK_BPE ? "BPE" : "word", c->tokenizer == TOK_BPE ? "bpe" : "word");
    int vs = tokenizer_vocab_size(t, SIDE_SRC), vt = tokenizer_vocab_size(t, SIDE_TGT);
    if (c->shared_vocab && vs != vt)
        return err_set(NMT_ERR_INPUT, "%s: model.shared_vocab is true but the tokenizer's vocabularies differ in size "
                       "(source %d, target %d)", path, vs, vt);
    if (t->kind == TOK_WORD && (t->vocab[0] == t->vocab[1]) != (c->shared_vocab != 0))
        return err_set(NMT_ERR_INPUT, "%s: model.shared_vocab is %s but the tokenizer section holds %s", path,
                       c->shared_vocab ? "true" : "false", c->shared_vocab ? "two vocabularies" : "one shared vocabulary");
    return NMT_OK;
}

// A decimal number of at most 20 digits (no sign) that fits in size_t; *p
// advances past it.
static int read_dec(const char **p, size_t *out) {
    const char *s = *p;
    size_t v = 0;
    int k = 0;
    for (; *s >= '0' && *s <= '9'; s++, k++) {
        size_t d = (size_t)(*s - '0');
        if (k >= 20 || v > (SIZE_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return k > 0;
}

// One line "name rows cols offset decay\n" of the (NUL-terminated) table.
static int read_table_line(const char **pp, char name[64], size_t *rows, size_t *cols, size_t *off, size_t *decay) {
    const char *p = *pp;
    size_t k = 0;
    while (*p && *p != ' ' && *p != '\n' && k < 63) name[k++] = *p++;
    name[k] = 0;
    if (k == 0 || *p++ != ' ') return 0;
    if (!read_dec(&p, rows) || *p++ != ' ' || !read_dec(&p, cols) || *p++ != ' ' || !read_dec(&p, off) ||
        *p++ != ' ' || !read_dec(&p, decay) || *p++ != '\n')
        return 0;
    *pp = p;
    return 1;
}

static int check_tensor_table(const Model *m, const char *table, const char *path) {
    const char *p = table;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        char name[64];
        size_t rows, cols, off, decay;
        if (!*p || !read_table_line(&p, name, &rows, &cols, &off, &decay))
            return err_set(NMT_ERR_INPUT, "%s: parameter table ends early or is malformed at tensor %td (%s)", path, i, t->name);
        if (strcmp(name, t->name) != 0 || rows != t->rows || cols != t->cols || off != t->offset)
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' (%zux%zu at %zu) does not match the config's model ('%s' %zux%zu at %zu)",
                           path, name, rows, cols, off, t->name, t->rows, t->cols, t->offset);
        if (decay != (size_t)(t->decay != 0))
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' has weight-decay flag %zu, the config's model has %d", path, name,
                           decay, t->decay != 0);
    }
    if (*p) return err_set(NMT_ERR_INPUT, "%s: parameter table has extra tensors", path);
    return NMT_OK;
}

// A section of n reals (sizes compared without overflow: n * sizeof(real)
// fits, model_param_count saw to that).
static const real *array_section(const CkptFile *f, const char *name, size_t n, const char *path) {
    uint64_t size;
    const void *p = ckpt_section(f, name, &size);
    if (!p) {
        err_set(NMT_ERR_INPUT, "%s: checkpoint has no '%s' section", path, name);
        return NULL;
    }
    if (size != (uint64_t)n * sizeof(real)) {
        err_set(NMT_ERR_INPUT, "%s: section '%s' holds %llu bytes, the config's model needs %zu (%zu %ss)", path, name,
                (unsigned long long)size, n * sizeof(real), n, REAL_NAME);
        return NULL;
    }
    return p;
}

// The number of values in v[0, n) that are not finite or beyond +-bound,
// and the index of the first. The count is one branch-free pass (it
// vectorises); the search runs only when there is something to find.
static size_t count_bad(const real *v, size_t n, real bound, size_t *first) {
    size_t bad = 0;
    for (size_t j = 0; j < n; j++) bad += !(fabs(v[j]) <= bound);  // NaN too
    if (bad)
        for (size_t j = 0; j < n; j++)
            if (!(fabs(v[j]) <= bound)) {
                *first = j;
                break;
            }
    return bad;
}

// Finite only: the largest finite real.
#ifdef NMT_DOUBLE
#define FINITE_ONLY DBL_MAX
#else
#define FINITE_ONLY FLT_MAX
#endif

// The refusal of bad values in a section (`nonfinite` of the `bad` are not
// finite): the first is x, element `first` of tensor t.
static int refuse_values(const char *path, const char *section, size_t bad, size_t nonfinite, size_t ntens,
                         const Tensor *t, size_t first, real x, double bound) {
    char what[64], value[32];
    if (nonfinite == bad) snprintf(what, sizeof what, "non-finite values");
    else snprintf(what, sizeof what, "non-finite values or values beyond +-%.3g", bound);
    if (isfinite(x)) snprintf(value, sizeof value, "%g", (double)x);
    else snprintf(value, sizeof value, "%s", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
    return err_set(NMT_ERR_INPUT, "%s: section '%s' holds %zu %s in %zu tensor%s; the first: tensor '%s' [%zu, %zu] "
                   "is %s%s", path, section, bad, what, ntens, ntens == 1 ? "" : "s", t->name, first / t->cols,
                   first % t->cols, value, isfinite(x) ? " (weights this large overflow float within one layer of "
                   "a model this wide)" : "");
}

// Every value of a section of the parameters' layout must be finite, the
// padding between tensors included, and the tensors' values (weights) at
// most `bound` in magnitude (FINITE_ONLY: no bound). The message names the
// first tensor with a bad value, that element, and how many there are.
static int check_finite(const Model *m, const real *v, const char *section, const char *path, double bound) {
    size_t bad = 0, ntens = 0, first = 0, end = 0, pad_bad = 0;
    ptrdiff_t first_t = -1, pad_after = -1;
    real b = (real)bound, fin = (real)FINITE_ONLY;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        size_t j = 0, nb;
        if (t->offset > end && (nb = count_bad(v + end, t->offset - end, fin, &j)) && !pad_bad++) pad_after = i - 1;
        size_t n = t->rows * t->cols;
        nb = count_bad(v + t->offset, n, b, &j);
        if (nb && first_t < 0) first_t = i, first = j;
        bad += nb;
        ntens += nb != 0;
        end = t->offset + n;
    }
    size_t j;
    if (m->nparams > end && count_bad(v + end, m->nparams - end, fin, &j) && !pad_bad++)
        pad_after = arrlen(m->tensors) - 1;
    if (first_t >= 0) {
        const Tensor *t = &m->tensors[first_t];
        size_t nonfinite = 0;
        for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++)
            nonfinite += count_bad(v + m->tensors[i].offset, m->tensors[i].rows * m->tensors[i].cols, fin, &j);
        return refuse_values(path, section, bad, nonfinite, ntens, t, first, v[t->offset + first], bound);
    }
    if (pad_bad)
        return err_set(NMT_ERR_INPUT, "%s: section '%s' holds non-finite values in the padding after tensor '%s'", path,
                       section, pad_after >= 0 ? m->tensors[pad_after].name : "(start)");
    return NMT_OK;
}

int checkpoint_check_finite(const Model *m, const Optimizer *opt, const char *what) {
    double w = model_weight_bound(&m->s);
    int rc = check_finite(m, m->params, "params", what, w);
    for (int i = 0; !rc && opt && i < opt->nstate; i++)
        rc = check_finite(m, opt->state[i], opt->state_name[i], what, i == opt->ema ? w : FINITE_ONLY);
    return rc;
}

void ckpt_state_free(CkptState *st) {
    free(st->json);
    memset(st, 0, sizeof *st);
}

// The state is the trainer's (train/state.h); the checkpoint needs its step,
// a whole number in [0, 2^53] (a double holds those exactly).
static int parse_state(CkptState *st, char *text, const char *path) {
    cJSON *o;
    int rc = json_parse_state(text, path, &o);
    if (rc) return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "step");
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
    cJSON_Delete(o);
    // (The message is the trainer's for a state without its cursor, which starts with the step.)
    if (!cJSON_IsNumber(v)) return err_set(NMT_ERR_INPUT, "%s: state section lacks step/epoch/batch_pos", path);
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return err_set(NMT_ERR_INPUT, "%s: state section: %s is %g, not a count", path, "step", d);
    st->step = (long)d;
    st->json = text;
    return NMT_OK;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// The weights' sections: `params`, or an int8 checkpoint's (ckpt_quant.h),
// which cannot be trained from and must be large enough for the config's
// model before it is allocated. *params: the float weights (NULL for int8).
static int find_weights(const CkptFile *f, const char *table, size_t nparams, int for_training, int *int8,
                        const real **params, const char *path) {
    *int8 = ckpt_section(f, "quant", NULL) != NULL;
    *params = NULL;
    if (*int8 && for_training)
        return err_set(NMT_ERR_INPUT, "%s: an int8 checkpoint (made by nmt quantize) holds no float weights or "
                       "optimizer state to train from: resume from the float checkpoint it was made from", path);
    if (*int8 && nparams > quant_param_bound(f, count_lines(table)))
        return err_set(NMT_ERR_INPUT, "%s: the int8 sections are too small for the config's model (%zu parameters)",
                       path, nparams);
    if (!*int8 && !(*params = array_section(f, "params", nparams, path))) return err_code();
    return NMT_OK;
}

// What load() gathers from the file before anything it sizes is allocated.
typedef struct {
    const char *path;
    CkptFile *f;
    char *table;                       // the tensor table, NUL-terminated
    ModelShape s;
    size_t nparams;
    int int8;                          // int8 weight sections instead of params
    const real *params;                // the float weights in the file (NULL for int8)
    Optimizer names;                   // the state sections' names (no buffers: n = 0)
    const real *ostate[OPTIM_MAX_STATE];
    int present;                       // how many of the optimizer's state sections are present
    int have_cfg, have_tok, have_model;
} Load;

// The config, the tokenizer and their agreement.
static int load_config_tokenizer(Load *L, Config *c, Tokenizer *t) {
    char *cfg = section_text(L->f, "config", L->path);
    if (!cfg) return err_code();
    char what[4200];
    snprintf(what, sizeof what, "%s (config section)", L->path);
    int rc = config_parse(c, cfg, what, NULL, 0);
    free(cfg);
    if (rc) return rc;
    L->have_cfg = 1;
    uint64_t n;
    const char *tok = ckpt_section(L->f, "tokenizer", &n);
    if (!tok) return err_set(NMT_ERR_INPUT, "%s: checkpoint has no 'tokenizer' section", L->path);
    rc = tokenizer_deserialize(t, tok, (size_t)n, L->path);
    if (rc) return rc;
    L->have_tok = 1;
    // The language profiles: optional (checkpoints from before them have none).
    const char *lid = ckpt_section(L->f, "langid", &n);
    snprintf(what, sizeof what, "%s (langid section)", L->path);
    if (lid && (rc = tokenizer_profiles_from_text(t, lid, (size_t)n, what))) return rc;
    return checkpoint_check_tokenizer(c, t, L->path);
}

// The parameter count the config and vocabularies imply (overflow-checked),
// and the weights' sections that must hold them.
static int load_weight_sections(Load *L, const Config *c, const Tokenizer *t, int for_training) {
    L->s = model_shape_from(c, t);
    L->nparams = model_param_count(&L->s, NULL);
    const ModelShape *s = &L->s;
    if (!L->nparams)
        return err_set(NMT_ERR_INPUT, "%s: the config describes a model too large to address (d_model %d, d_ff %d, "
                       "%d+%d layers, vocabularies %d/%d)", L->path, s->d_model, s->d_ff, s->enc_layers, s->dec_layers,
                       s->src_vocab, s->tgt_vocab);
    L->table = section_text(L->f, "tensors", L->path);
    if (!L->table) return err_code();
    return find_weights(L->f, L->table, L->nparams, for_training, &L->int8, &L->params, L->path);
}

// The optimizer's state sections: all or none, required for training.
static int load_optim_sections(Load *L, const Config *c, int for_training) {
    optim_init(&L->names, c, 0);
    for (int i = 0; i < L->names.nstate; i++) L->present += ckpt_section(L->f, L->names.state_name[i], NULL) != NULL;
    if (!L->present && !for_training) return NMT_OK;
    for (int i = 0; i < L->names.nstate; i++)
        if (!(L->ostate[i] = array_section(L->f, L->names.state_name[i], L->nparams, L->path))) {
            if (L->present && L->present < L->names.nstate)
                err_set(NMT_ERR_INPUT, "%s: checkpoint has some of %s's state sections but no '%s'", L->path,
                        L->names.name, L->names.state_name[i]);
            return err_code();
        }
    return NMT_OK;
}

// Now bounded by the file: the model holds what the params section holds;
// its tensor table must be the file's and every value finite.
static int load_model(Load *L, Model *m) {
    model_create(m, &L->s);
    L->have_model = 1;
    if (m->nparams != L->nparams)  // model_param_count must follow model_create's layout
        return err_set(NMT_ERR_RUNTIME, "%s: internal error: %zu parameters counted, %zu allocated", L->path,
                       L->nparams, m->nparams);
    int rc = check_tensor_table(m, L->table, L->path);
    if (!rc && L->int8) rc = quant_load(L->f, m, L->path);
    // Weights (and their moving average) are bounded (model_weight_bound);
    // the optimizer's other state only finite.
    double w = model_weight_bound(&m->s);
    if (!rc && !L->int8) rc = check_finite(m, L->params, "params", L->path, w);
    for (int i = 0; !rc && i < L->names.nstate; i++)
        if (L->ostate[i])
            rc = check_finite(m, L->ostate[i], L->names.state_name[i], L->path, i == L->names.ema ? w : FINITE_ONLY);
    if (!rc && !L->int8) memcpy(m->params, L->params, L->nparams * sizeof(real));
    return rc;
}

// Everything in the file is checked, in this order, before anything it sizes
// is allocated: the container (ckpt_open, by the caller), the config, the tokenizer and its
// agreement with the config, the parameter count the config and vocabularies
// imply (overflow-checked) against the params section, the optimizer's state
// sections (all or none; required when opt != NULL), the state JSON. Only then
// is the model allocated, its tensor table compared with the file's, and the
// values checked finite. checkpoint_describe runs exactly this (info != NULL).
// f: the file, opened and verified by ckpt_open (the caller closes it).
static int load(CkptFile *f, const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, CkptState *st,
                CkptInfo *info) {
    Load L;
    memset(&L, 0, sizeof L);
    L.path = path;
    L.f = f;
    int rc = load_config_tokenizer(&L, c, t);
    if (!rc) rc = load_weight_sections(&L, c, t, opt != NULL);
    if (!rc) rc = load_optim_sections(&L, c, opt != NULL);
    if (!rc && info) {
        snprintf(info->optimizer, sizeof info->optimizer, "%s", L.names.name);
        info->has_state = L.present > 0;
    }
    char *state = rc ? NULL : section_text(L.f, "state", path);
    if (!rc && !state) rc = err_code();
    if (!rc && (rc = parse_state(st, state, path))) free(state);
    if (!rc) rc = load_model(&L, m);
    // Decoding (no optimizer wanted) uses the moving average when there is one.
    if (!rc && !L.int8 && !opt && L.names.ema >= 0 && L.ostate[L.names.ema]) {
        memcpy(m->params, L.ostate[L.names.ema], L.nparams * sizeof(real));
        if (info) info->ema = 1;
    }
    if (!rc && opt) {
        optim_init(opt, c, L.nparams);
        for (int i = 0; i < opt->nstate; i++) memcpy(opt->state[i], L.ostate[i], L.nparams * sizeof(real));
        opt->step = st->step;
    }
    optim_free(&L.names);
    free(L.table);
    if (rc) {
        if (opt) optim_free(opt);
        if (L.have_model) model_free(m);
        if (L.have_tok) tokenizer_free(t);
        if (L.have_cfg) config_free(c);
        ckpt_state_free(st);
    }
    return rc;
}

int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, CkptState *st) {
    memset(c, 0, sizeof *c);
    memset(t, 0, sizeof *t);
    memset(m, 0, sizeof *m);
    memset(st, 0, sizeof *st);
    if (opt) memset(opt, 0, sizeof *opt);
    CkptFile *f = NULL;
    int rc = ckpt_open(&f, path);
    if (rc) return rc;
    rc = load(f, path, c, t, m, opt, st, NULL);
    ckpt_close(f);
    return rc;
}

int checkpoint_load_decoding(Loaded *l, const char *path, int int8) {
    CkptState st;
    int rc = checkpoint_load(path, &l->c, &l->t, &l->m, NULL, &st);
    l->step = st.step;
    ckpt_state_free(&st);
    if (!rc && int8 && !l->m.quant && (rc = model_quantize(&l->m, path))) loaded_free(l);
    return rc;
}

void loaded_free(Loaded *l) {
    model_free(&l->m);
    tokenizer_free(&l->t);
    config_free(&l->c);
}

int checkpoint_describe(const char *path, CkptInfo *info) {
    memset(info, 0, sizeof *info);
    CkptFile *f = NULL;
    int rc = ckpt_open(&f, path);
    if (rc) return rc;
    info->opened = 1;
    info->version = ckpt_version(f);
    info->file_size = ckpt_file_size(f);
    info->nsections = ckpt_section_count(f);
    info->sections = xcalloc((size_t)info->nsections + 1, sizeof *info->sections);
    for (int i = 0; i < info->nsections; i++) {
        CkptSectionInfo *s = &info->sections[i];
        snprintf(s->name, sizeof s->name, "%s", ckpt_section_name(f, i));
        s->offset = ckpt_section_offset(f, i);
        s->size = ckpt_section_size(f, i);
        s->crc = ckpt_section_crc(f, i);
    }
    rc = load(f, path, &info->c, &info->t, &info->m, NULL, &info->st, info);
    ckpt_close(f);
    return rc;
}

void ckpt_info_free(CkptInfo *info) {
    free(info->sections);
    model_free(&info->m);
    tokenizer_free(&info->t);
    config_free(&info->c);
    ckpt_state_free(&info->st);
    memset(info, 0, sizeof *info);
}
