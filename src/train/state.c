// train/state.c — the trainer's state to and from the JSON text a checkpoint keeps.
#include "train/state.h"
#include "io/checkpoint.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void train_state_init(TrainState *st) {
    memset(st, 0, sizeof *st);
    st->best_valid_loss = INFINITY;
    st->best_valid_bleu = -1;
    st->micro_batches = st->processes = 1;
}

char *train_state_to_json(const TrainState *st) {
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
    cJSON_AddStringToObject(o, "precision", precision_name(st->precision));
    if (st->init_from[0]) {
        cJSON_AddStringToObject(o, "init_from", st->init_from);
        cJSON_AddNumberToObject(o, "init_from_step", (double)st->init_from_step);
        cJSON_AddNumberToObject(o, "init_from_crc32", (double)st->init_from_crc32);
    }
    // cJSON prints 17 significant digits when needed, so doubles round-trip.
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
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

// "fp32" or "bf16"; absent (a checkpoint from before bf16 training) is fp32.
static int precision_or_fp32(const cJSON *o, Precision *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "precision");
    int p = !v ? PRECISION_FP32 : cJSON_IsString(v) ? precision_by_name(v->valuestring) : -1;
    if (p < 0) return err_set(NMT_ERR_INPUT, "%s: state section: precision is not \"fp32\" or \"bf16\"", path);
    *out = (Precision)p;
    return NMT_OK;
}

// Where a fine-tuning run started: absent in a run from scratch.
static int init_from_or_none(const cJSON *o, TrainState *st, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "init_from");
    if (!v) return NMT_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= sizeof st->init_from)
        return err_set(NMT_ERR_INPUT, "%s: state section: init_from is not a path", path);
    snprintf(st->init_from, sizeof st->init_from, "%s", v->valuestring);
    int rc = count_or(o, "init_from_step", 0, &st->init_from_step, path);
    if (!rc) rc = count_or(o, "init_from_crc32", 0, &st->init_from_crc32, path);
    if (!rc && st->init_from_crc32 > 0xffffffffL)
        return err_set(NMT_ERR_INPUT, "%s: state section: init_from_crc32 is not a CRC-32", path);
    return rc;
}

int train_state_from_json(TrainState *st, const char *json, const char *path) {
    cJSON *o;
    int rc = json_parse_state(json, path, &o);
    if (rc) return rc;
    memset(st, 0, sizeof *st);
    rc = count_or(o, "step", -1, &st->step, path);
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
    if (!rc) rc = precision_or_fp32(o, &st->precision, path);
    if (!rc) rc = init_from_or_none(o, st, path);
    cJSON_Delete(o);
    if (rc) return rc;
    if (st->step < 0 || st->epoch < 0 || st->batch_pos < 0)
        return err_set(NMT_ERR_INPUT, "%s: state section lacks step/epoch/batch_pos", path);
    return NMT_OK;
}

int train_state_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st) {
    CkptState cs;
    memset(st, 0, sizeof *st);
    int rc = checkpoint_load(path, c, t, m, opt, &cs);
    if (rc) return rc;
    rc = train_state_from_json(st, cs.json, path);
    ckpt_state_free(&cs);
    if (!rc) return NMT_OK;
    if (opt) optim_free(opt);
    model_free(m);
    tokenizer_free(t);
    config_free(c);
    memset(st, 0, sizeof *st);
    return rc;
}

int train_state_save(const char *path, const Config *c, const Tokenizer *t, const Model *m, const Optimizer *opt,
                     const TrainState *st) {
    char *json = train_state_to_json(st);
    int rc = checkpoint_save(path, c, t, m, opt, json);
    free(json);
    return rc;
}
