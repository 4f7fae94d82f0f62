// checkpoint.c — the sections of a checkpoint, on top of ckptfile.
#include "checkpoint.h"
#include "ckptfile.h"
#include "model_config.h"
#include "util.h"

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
    CkptSection sec[5 + OPTIM_MAX_STATE];
    int n = 0;
    sec[n++] = (CkptSection){"config", cfg, strlen(cfg)};
    sec[n++] = (CkptSection){"tokenizer", tok, tok_len};
    sec[n++] = (CkptSection){"tensors", tab, tab_len};
    sec[n++] = (CkptSection){"params", m->params, m->nparams * sizeof(real)};
    for (int i = 0; opt && i < opt->nstate; i++)
        sec[n++] = (CkptSection){opt->state_name[i], opt->state[i], opt->n * sizeof(real)};
    sec[n++] = (CkptSection){"state", state, strlen(state)};
    int rc = ckpt_write(path, sec, n);
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

static int check_tensor_table(const Model *m, const char *table, const char *path) {
    const char *p = table;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        char name[64];
        size_t rows, cols, off;
        int decay, used = 0;
        if (sscanf(p, "%63s %zu %zu %zu %d\n%n", name, &rows, &cols, &off, &decay, &used) != 5 || used == 0)
            return err_set(NMT_ERR_INPUT, "%s: parameter table ends early or is malformed at tensor %td (%s)", path, i, t->name);
        if (strcmp(name, t->name) != 0 || rows != t->rows || cols != t->cols || off != t->offset)
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' (%zux%zu) does not match the config's model ('%s' %zux%zu)",
                           path, name, rows, cols, t->name, t->rows, t->cols);
        p += used;
    }
    if (*p) return err_set(NMT_ERR_INPUT, "%s: parameter table has extra tensors", path);
    return NMT_OK;
}

static int copy_array(real *dst, size_t n, const CkptFile *f, const char *name, const char *path) {
    uint64_t size;
    const void *p = ckpt_section(f, name, &size);
    if (!p) return err_set(NMT_ERR_INPUT, "%s: checkpoint has no '%s' section", path, name);
    if (size != n * sizeof(real))
        return err_set(NMT_ERR_INPUT, "%s: section '%s' holds %llu bytes, the model needs %zu", path, name,
                       (unsigned long long)size, n * sizeof(real));
    memcpy(dst, p, size);
    return NMT_OK;
}

static double num_or(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int parse_state(TrainState *st, const char *text, const char *path) {
    cJSON *o = cJSON_Parse(text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return err_set(NMT_ERR_INPUT, "%s: state section is not a JSON object", path);
    }
    memset(st, 0, sizeof *st);
    st->step = (long)num_or(o, "step", -1);
    st->epoch = (long)num_or(o, "epoch", -1);
    st->batch_pos = (long)num_or(o, "batch_pos", -1);
    st->best_valid_loss = num_or(o, "best_valid_loss", INFINITY);
    st->best_valid_bleu = num_or(o, "best_valid_bleu", -1);
    st->bad_evals = (long)num_or(o, "bad_evals", 0);
    st->log_loss = num_or(o, "log_loss", 0);
    st->log_nll = num_or(o, "log_nll", 0);
    st->log_tokens = num_or(o, "log_tokens", 0);
    st->elapsed = num_or(o, "elapsed", 0);
    st->tokens_seen = (long)num_or(o, "tokens_seen", 0);
    cJSON_Delete(o);
    if (st->step < 0 || st->epoch < 0 || st->batch_pos < 0)
        return err_set(NMT_ERR_INPUT, "%s: state section lacks step/epoch/batch_pos", path);
    return NMT_OK;
}

int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st) {
    memset(c, 0, sizeof *c);
    memset(t, 0, sizeof *t);
    memset(m, 0, sizeof *m);
    if (opt) memset(opt, 0, sizeof *opt);
    CkptFile *f = NULL;
    int rc = ckpt_open(&f, path);
    if (rc) return rc;
    char *cfg = section_text(f, "config", path), *state = NULL, *table = NULL;
    int have_cfg = 0, have_tok = 0, have_model = 0;
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
    ModelShape s = model_shape_from(c, t);
    model_create(m, &s);
    have_model = 1;
    table = section_text(f, "tensors", path);
    if (!table) { rc = err_code(); goto done; }
    rc = check_tensor_table(m, table, path);
    if (!rc) rc = copy_array(m->params, m->nparams, f, "params", path);
    if (!rc && opt) {
        optim_init(opt, c, m->nparams);
        for (int i = 0; !rc && i < opt->nstate; i++) rc = copy_array(opt->state[i], opt->n, f, opt->state_name[i], path);
    }
    state = section_text(f, "state", path);
    if (!rc && !state) rc = err_code();
    if (!rc) rc = parse_state(st, state, path);
    if (!rc && opt) opt->step = st->step;
done:
    free(cfg);
    free(state);
    free(table);
    ckpt_close(f);
    if (rc) {
        if (opt) optim_free(opt);
        if (have_model) model_free(m);
        if (have_tok) tokenizer_free(t);
        if (have_cfg) config_free(c);
    }
    return rc;
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
    rc = checkpoint_load(path, &c, &t, &m, NULL, &st);
    if (rc) return rc;
    char *cfg = config_to_json(&c);
    printf("step: %ld (epoch %ld, batch %ld), %ld target tokens, %.1f s of training\n", st.step, st.epoch,
           st.batch_pos, st.tokens_seen, st.elapsed);
    if (isfinite(st.best_valid_loss)) printf("best validation loss: %.6f\n", st.best_valid_loss);
    if (st.best_valid_bleu >= 0) printf("best validation BLEU: %.2f\n", st.best_valid_bleu);
    printf("parameters: %zu in %td tensors (%s)\n", m.nparams, arrlen(m.tensors), REAL_NAME);
    printf("vocabulary: source %d, target %d\n", m.s.src_vocab, m.s.tgt_vocab);
    printf("config:\n%s\n", cfg);
    free(cfg);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    return NMT_OK;
}
