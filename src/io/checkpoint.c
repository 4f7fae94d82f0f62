// io/checkpoint.c — the sections of a checkpoint, on top of ckptfile.
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "io/ckpt_quant.h"
#include "model/shape.h"
#include "model/quant.h"
#include "common/util.h"

#include <cjson/cJSON.h>
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

static char *state_json(const TrainState *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "epoch", (double)st->epoch);
    cJSON_AddNumberToObject(o, "batch_pos", (double)st->batch_pos);
    // JSON has no infinity: an absent best_valid_loss means "none yet".
    if (isfinite(st->best_valid_loss)) cJSON_AddNumberToObject(o, "best_valid_loss", st->best_valid_loss);
    cJSON_AddNumberToObject(o, "best_valid_bleu", st->best_valid_bleu);
    cJSON_AddNumberToObject(o, "bad_evals", (double)st->bad_evals);
    cJSON_AddNumberToObject(o, "log_loss", st->log_loss);
    cJSON_AddNumberToObject(o, "log_nll", st->log_nll);
    cJSON_AddNumberToObject(o, "log_tokens", st->log_tokens);
    cJSON_AddNumberToObject(o, "elapsed", st->elapsed);
    cJSON_AddNumberToObject(o, "tokens_seen", (double)st->tokens_seen);
    cJSON_AddNumberToObject(o, "micro_batches", (double)(st->micro_batches > 0 ? st->micro_batches : 1));
    cJSON_AddNumberToObject(o, "processes", (double)(st->processes > 0 ? st->processes : 1));
    // cJSON prints 17 significant digits when needed, so doubles round-trip.
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
}

int checkpoint_save(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                    const Optimizer *opt, const TrainState *st) {
    char *cfg = config_to_json(c);
    size_t tok_len, tab_len;
    char *tok = tokenizer_serialize(t, &tok_len);
    char *tab = tensor_table(m, &tab_len);
    char *state = state_json(st);
    CkptSection sec[5 + OPTIM_MAX_STATE + QUANT_SECTIONS];
    void *owned[QUANT_SECTIONS] = {0};
    int n = 0;
    sec[n++] = (CkptSection){"config", cfg, strlen(cfg)};
    sec[n++] = (CkptSection){"tokenizer", tok, tok_len};
    sec[n++] = (CkptSection){"tensors", tab, tab_len};
    if (m->quant) {  // an int8 model is saved as one, without optimizer state
        quant_sections(m, sec + n, owned);
        n += QUANT_SECTIONS;
    } else {
        sec[n++] = (CkptSection){"params", m->params, m->nparams * sizeof(real)};
        for (int i = 0; opt && i < opt->nstate; i++)
            sec[n++] = (CkptSection){opt->state_name[i], opt->state[i], opt->n * sizeof(real)};
    }
    sec[n++] = (CkptSection){"state", state, strlen(state)};
    int rc = ckpt_write(path, sec, n);
    for (int i = 0; i < QUANT_SECTIONS; i++) free(owned[i]);
    free(cfg);
    free(tok);
    free(tab);
    free(state);
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
static int check_tokenizer(const Config *c, const Tokenizer *t, const char *path) {
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

// The number of non-finite values in v[0, n) and the index of the first.
// The count is one branch-free pass (it vectorises); the search runs only
// when there is something to find.
static size_t count_nonfinite(const real *v, size_t n, size_t *first) {
    size_t bad = 0;
    for (size_t j = 0; j < n; j++) bad += !isfinite(v[j]);
    if (bad)
        for (size_t j = 0; j < n; j++)
            if (!isfinite(v[j])) {
                *first = j;
                break;
            }
    return bad;
}

// Every value of a section of the parameters' layout must be finite, the
// padding between tensors included. The message names the first tensor with
// a non-finite value, that element, and how many there are.
static int check_finite(const Model *m, const real *v, const char *section, const char *path) {
    size_t bad = 0, ntens = 0, first = 0, end = 0, pad_bad = 0;
    ptrdiff_t first_t = -1, pad_after = -1;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        size_t j = 0, nb;
        if (t->offset > end && (nb = count_nonfinite(v + end, t->offset - end, &j)) && !pad_bad++) pad_after = i - 1;
        size_t n = t->rows * t->cols;
        nb = count_nonfinite(v + t->offset, n, &j);
        if (nb && first_t < 0) first_t = i, first = j;
        bad += nb;
        ntens += nb != 0;
        end = t->offset + n;
    }
    size_t j;
    if (m->nparams > end && count_nonfinite(v + end, m->nparams - end, &j) && !pad_bad++)
        pad_after = arrlen(m->tensors) - 1;
    if (first_t >= 0) {
        const Tensor *t = &m->tensors[first_t];
        real x = v[t->offset + first];
        return err_set(NMT_ERR_INPUT, "%s: section '%s' holds %zu non-finite values in %zu tensor%s; the first: tensor "
                       "'%s' [%zu, %zu] is %s", path, section, bad, ntens, ntens == 1 ? "" : "s", t->name,
                       first / t->cols, first % t->cols, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
    }
    if (pad_bad)
        return err_set(NMT_ERR_INPUT, "%s: section '%s' holds non-finite values in the padding after tensor '%s'", path,
                       section, pad_after >= 0 ? m->tensors[pad_after].name : "(start)");
    return NMT_OK;
}

int checkpoint_check_finite(const Model *m, const Optimizer *opt, const char *what) {
    int rc = check_finite(m, m->params, "params", what);
    for (int i = 0; !rc && opt && i < opt->nstate; i++) rc = check_finite(m, opt->state[i], opt->state_name[i], what);
    return rc;
}

// A whole number in [0, 2^53] (a double holds those exactly), or def when absent.
static int count_or(const cJSON *o, const char *key, long def, long *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        *out = def;
        return NMT_OK;
    }
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return err_set(NMT_ERR_INPUT, "%s: state section: %s is %g, not a count", path, key, d);
    *out = (long)d;
    return NMT_OK;
}

static int real_or(const cJSON *o, const char *key, double def, double *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = cJSON_IsNumber(v) ? v->valuedouble : def;
    if (cJSON_IsNumber(v) && !isfinite(*out))
        return err_set(NMT_ERR_INPUT, "%s: state section: %s is not a finite number", path, key);
    return NMT_OK;
}

static int parse_state(TrainState *st, const char *text, const char *path) {
    cJSON *o = cJSON_Parse(text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return err_set(NMT_ERR_INPUT, "%s: state section is not a JSON object", path);
    }
    memset(st, 0, sizeof *st);
    int rc = count_or(o, "step", -1, &st->step, path);
    if (!rc) rc = count_or(o, "epoch", -1, &st->epoch, path);
    if (!rc) rc = count_or(o, "batch_pos", -1, &st->batch_pos, path);
    if (!rc) rc = real_or(o, "best_valid_loss", INFINITY, &st->best_valid_loss, path);
    if (!rc) rc = real_or(o, "best_valid_bleu", -1, &st->best_valid_bleu, path);
    if (!rc) rc = count_or(o, "bad_evals", 0, &st->bad_evals, path);
    if (!rc) rc = real_or(o, "log_loss", 0, &st->log_loss, path);
    if (!rc) rc = real_or(o, "log_nll", 0, &st->log_nll, path);
    if (!rc) rc = real_or(o, "log_tokens", 0, &st->log_tokens, path);
    if (!rc) rc = real_or(o, "elapsed", 0, &st->elapsed, path);
    if (!rc) rc = count_or(o, "tokens_seen", 0, &st->tokens_seen, path);
    if (!rc) rc = count_or(o, "micro_batches", 1, &st->micro_batches, path);
    if (!rc) rc = count_or(o, "processes", 1, &st->processes, path);
    cJSON_Delete(o);
    if (rc) return rc;
    if (st->step < 0 || st->epoch < 0 || st->batch_pos < 0)
        return err_set(NMT_ERR_INPUT, "%s: state section lacks step/epoch/batch_pos", path);
    return NMT_OK;
}

// What checkpoint_info prints beyond the loaded objects.
typedef struct {
    const char *optimizer;   // the config's train.optimizer
    int has_state;           // its state sections are present
    int ema;                 // the weights given for decoding are the moving average
} LoadInfo;

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

// Everything in the file is checked, in this order, before anything it sizes
// is allocated: the container (ckpt_open), the config, the tokenizer and its
// agreement with the config, the parameter count the config and vocabularies
// imply (overflow-checked) against the params section, the optimizer's state
// sections (all or none; required when opt != NULL), the state JSON. Only then
// is the model allocated, its tensor table compared with the file's, and the
// values checked finite. checkpoint_info runs exactly this.
static int load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st, LoadInfo *li) {
    memset(c, 0, sizeof *c);
    memset(t, 0, sizeof *t);
    memset(m, 0, sizeof *m);
    memset(st, 0, sizeof *st);
    if (opt) memset(opt, 0, sizeof *opt);
    CkptFile *f = NULL;
    int rc = ckpt_open(&f, path);
    if (rc) return rc;
    char *cfg = section_text(f, "config", path), *state = NULL, *table = NULL;
    int have_cfg = 0, have_tok = 0, have_model = 0;
    Optimizer names;  // the state sections' names (no buffers: n = 0)
    memset(&names, 0, sizeof names);
    if (!cfg) { rc = err_code(); goto done; }
    char what[4200];
    snprintf(what, sizeof what, "%s (config section)", path);
    rc = config_parse(c, cfg, what, NULL, 0);
    if (rc) goto done;
    have_cfg = 1;
    uint64_t n;
    const char *tok = ckpt_section(f, "tokenizer", &n);
    if (!tok) { rc = err_set(NMT_ERR_INPUT, "%s: checkpoint has no 'tokenizer' section", path); goto done; }
    rc = tokenizer_deserialize(t, tok, (size_t)n, path);
    if (rc) goto done;
    have_tok = 1;
    rc = check_tokenizer(c, t, path);
    if (rc) goto done;
    ModelShape s = model_shape_from(c, t);
    size_t nparams = model_param_count(&s, NULL);
    if (!nparams) {
        rc = err_set(NMT_ERR_INPUT, "%s: the config describes a model too large to address (d_model %d, d_ff %d, "
                     "%d+%d layers, vocabularies %d/%d)", path, s.d_model, s.d_ff, s.enc_layers, s.dec_layers,
                     s.src_vocab, s.tgt_vocab);
        goto done;
    }
    table = section_text(f, "tensors", path);
    if (!table) { rc = err_code(); goto done; }
    int int8;
    const real *params;
    rc = find_weights(f, table, nparams, opt != NULL, &int8, &params, path);
    if (rc) goto done;
    optim_init(&names, c, 0);
    const real *ostate[OPTIM_MAX_STATE] = {0};
    int present = 0;
    for (int i = 0; i < names.nstate; i++) present += ckpt_section(f, names.state_name[i], NULL) != NULL;
    if (li) li->optimizer = names.name, li->has_state = present > 0;
    if (present || opt)
        for (int i = 0; i < names.nstate; i++)
            if (!(ostate[i] = array_section(f, names.state_name[i], nparams, path))) {
                if (present && present < names.nstate)
                    err_set(NMT_ERR_INPUT, "%s: checkpoint has some of %s's state sections but no '%s'", path,
                            names.name, names.state_name[i]);
                rc = err_code();
                goto done;
            }
    state = section_text(f, "state", path);
    if (!state) { rc = err_code(); goto done; }
    rc = parse_state(st, state, path);
    if (rc) goto done;
    // Now bounded by the file: the model holds what the params section holds.
    model_create(m, &s);
    have_model = 1;
    if (m->nparams != nparams) {  // model_param_count must follow model_create's layout
        rc = err_set(NMT_ERR_RUNTIME, "%s: internal error: %zu parameters counted, %zu allocated", path, nparams, m->nparams);
        goto done;
    }
    rc = check_tensor_table(m, table, path);
    if (!rc && int8) rc = quant_load(f, m, path);
    if (!rc && !int8) rc = check_finite(m, params, "params", path);
    for (int i = 0; !rc && i < names.nstate; i++)
        if (ostate[i]) rc = check_finite(m, ostate[i], names.state_name[i], path);
    if (rc) goto done;
    if (!int8) memcpy(m->params, params, nparams * sizeof(real));
    // Decoding (no optimizer wanted) uses the moving average when there is one.
    if (!int8 && !opt && names.ema >= 0 && ostate[names.ema]) {
        memcpy(m->params, ostate[names.ema], nparams * sizeof(real));
        if (li) li->ema = 1;
    }
    if (opt) {
        optim_init(opt, c, nparams);
        for (int i = 0; i < opt->nstate; i++) memcpy(opt->state[i], ostate[i], nparams * sizeof(real));
        opt->step = st->step;
    }
done:
    optim_free(&names);
    free(cfg);
    free(state);
    free(table);
    ckpt_close(f);
    if (rc) {
        if (opt) optim_free(opt);
        if (have_model) model_free(m);
        if (have_tok) tokenizer_free(t);
        if (have_cfg) config_free(c);
        memset(st, 0, sizeof *st);
    }
    return rc;
}

int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st) {
    return load(path, c, t, m, opt, st, NULL);
}

int checkpoint_load_decoding(Loaded *l, const char *path, int int8) {
    int rc = checkpoint_load(path, &l->c, &l->t, &l->m, NULL, &l->st);
    if (!rc && int8 && !l->m.quant) model_quantize(&l->m);
    return rc;
}

void loaded_free(Loaded *l) {
    model_free(&l->m);
    tokenizer_free(&l->t);
    config_free(&l->c);
}

int checkpoint_info(const char *path) {
    CkptFile *f = NULL;
    int rc = ckpt_open(&f, path);
    if (rc) return rc;
    printf("file: %s\nformat: nmt checkpoint version %u, %llu bytes, all %d section checksums valid\n", path,
           ckpt_version(f), (unsigned long long)ckpt_file_size(f), ckpt_section_count(f));
    printf("sections:\n");
    for (int i = 0; i < ckpt_section_count(f); i++)
        printf("  %-10s offset %10llu  size %12llu  crc32 %08x\n", ckpt_section_name(f, i),
               (unsigned long long)ckpt_section_offset(f, i), (unsigned long long)ckpt_section_size(f, i),
               ckpt_section_crc(f, i));
    ckpt_close(f);
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    LoadInfo li = {NULL, 0, 0};
    rc = load(path, &c, &t, &m, NULL, &st, &li);
    if (rc) return rc;
    char *cfg = config_to_json(&c);
    printf("step: %ld (epoch %ld, batch %ld), %ld target tokens, %.1f s of training\n", st.step, st.epoch,
           st.batch_pos, st.tokens_seen, st.elapsed);
    printf("micro-batches per step: %ld (%ld process%s x train.accum_steps %ld)\n", st.micro_batches, st.processes,
           st.processes > 1 ? "es" : "", st.micro_batches / (st.processes > 0 ? st.processes : 1));
    if (isfinite(st.best_valid_loss)) printf("best validation loss: %.6f\n", st.best_valid_loss);
    if (st.best_valid_bleu >= 0) printf("best validation BLEU: %.2f\n", st.best_valid_bleu);
    printf("parameters: %zu in %td tensors (%s)\n", m.nparams, arrlen(m.tensors), REAL_NAME);
    if (m.quant) printf("weights: int8 (%zu matrices, one scale per output; vectors %s): for decoding only\n",
                        m.quant->n, REAL_NAME);
    printf("vocabulary: source %d, target %d\n", m.s.src_vocab, m.s.tgt_vocab);
    if (m.s.relative) printf("positions: relative (distances clipped at %d)", m.s.max_rel);
    else printf("positions: sinusoidal");
    if (m.s.window) printf(", attention window %d\n", m.s.window);
    else printf(", full attention\n");
    printf("optimizer state: %s\n", li.has_state ? li.optimizer : "none (weights only)");
    if (li.ema) printf("weights for decoding: the moving average (train.ema_decay %g); training resumes from the weights\n",
                       c.ema_decay);
    printf("verified: config, tokenizer, tensor table, section sizes, all values finite\n");
    printf("config:\n%s\n", cfg);
    free(cfg);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    return NMT_OK;
}
