// common/config.c — strict, table-driven configuration.
// One table lists every key: its JSON path, type, default, range and where it
// lives in Config. Parsing walks the user's JSON against the table, so an
// unknown key, a wrong type or an out-of-range value is caught and named.
#include "common/config.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// K_LANG: a language code or "", in a char[16] (config_lang_code_ok).
typedef enum { K_INT, K_NUM, K_BOOL, K_STR, K_ENUM, K_LANG } KeyType;

typedef struct {
    const char *path;      // "section.key"
    KeyType type;
    size_t offset;         // into Config
    double def;            // default for numbers/bools/enums (enum: index)
    const char *def_str;   // default for strings
    double lo, hi;         // inclusive range for numbers
    const char *choices;   // enum: "a|b"
    int model;             // 1 = fixes the model's shape or vocabulary
    const char *help;
} Key;

#define OFF(f) offsetof(Config, f)
static const Key KEYS[] = {
    {"model.d_model", K_INT, OFF(d_model), 512, 0, 2, 65536, 0, 1, "width of every layer (even; divisible by model.heads)"},
    {"model.heads", K_INT, OFF(heads), 8, 0, 1, 1024, 0, 1, "attention heads"},
    {"model.d_ff", K_INT, OFF(d_ff), 2048, 0, 1, 1 << 20, 0, 1, "hidden width of the position-wise FFN"},
    {"model.encoder_layers", K_INT, OFF(enc_layers), 6, 0, 1, 64, 0, 1, "encoder layers"},
    {"model.decoder_layers", K_INT, OFF(dec_layers), 6, 0, 1, 64, 0, 1, "decoder layers"},
    {"model.norm", K_ENUM, OFF(norm), NORM_POST, 0, 0, 0, "post|pre", 1, "post: LayerNorm after each residual (the paper); pre: before each sublayer, plus a final LayerNorm per stack"},
    {"model.tie_output", K_BOOL, OFF(tie_output), 1, 0, 0, 1, 0, 1, "output projection shares the target embedding matrix"},
    {"model.shared_vocab", K_BOOL, OFF(shared_vocab), 0, 0, 0, 1, 0, 1, "one vocabulary for both sides; source, target and output matrices all tied"},
    {"model.positions", K_ENUM, OFF(positions), POS_SINUSOIDAL, 0, 0, 0, "sinusoidal|relative", 1, "sinusoidal: the paper's position table added to the embeddings; relative: no table, every self-attention learns key and value embeddings of the clipped distance between positions (Shaw et al. 2018)"},
    {"model.max_relative_position", K_INT, OFF(max_rel_pos), 16, 0, 1, 256, 0, 1, "relative: distances beyond +-k share one embedding (k)"},
    {"model.attention_window", K_INT, OFF(attn_window), 0, 0, 0, 1 << 20, 0, 1, "self-attention sees keys within this distance (encoder: both sides; decoder: the last W positions and itself); 0 = every position. Cross-attention always sees the whole source"},
    {"model.dropout", K_NUM, OFF(dropout), 0.1, 0, 0, 0.95, 0, 0, "dropout on embeddings+positions and on every sublayer output"},
    {"model.attention_dropout", K_NUM, OFF(attn_dropout), 0.0, 0, 0, 0.95, 0, 0, "dropout on attention weights"},
    {"model.ffn_dropout", K_NUM, OFF(ffn_dropout), 0.0, 0, 0, 0.95, 0, 0, "dropout on the FFN hidden layer (after ReLU)"},
    {"data.train_src", K_STR, OFF(train_src), 0, "", 0, 0, 0, 0, "training source text, one sentence per line (required)"},
    {"data.train_tgt", K_STR, OFF(train_tgt), 0, "", 0, 0, 0, 0, "training target text, line-aligned with train_src (required)"},
    {"data.valid_src", K_STR, OFF(valid_src), 0, "", 0, 0, 0, 0, "validation source text (\"\" = none)"},
    {"data.valid_tgt", K_STR, OFF(valid_tgt), 0, "", 0, 0, 0, 0, "validation target text (\"\" = none)"},
    {"data.tokenizer", K_ENUM, OFF(tokenizer), TOK_WORD, 0, 0, 0, "word|bpe", 1, "word: split on spaces, vocabulary from the training text; bpe: learned subwords"},
    {"data.vocab_size", K_INT, OFF(vocab_size), 0, 0, 0, 1 << 22, 0, 1, "bpe: total vocabulary size; word: keep at most this many words per side (0 = all)"},
    {"data.min_freq", K_INT, OFF(min_freq), 1, 0, 1, 1 << 30, 0, 1, "word: words seen fewer times become <unk>"},
    {"data.bpe_model", K_STR, OFF(bpe_model), 0, "", 0, 0, 0, 0, "bpe: model file, learned if missing (\"\" = <checkpoint_dir>/bpe.model)"},
    {"data.max_src_len", K_INT, OFF(max_src_len), 100, 0, 1, 4096, 0, 0, "training pairs with more source tokens are skipped"},
    {"data.max_tgt_len", K_INT, OFF(max_tgt_len), 100, 0, 1, 4096, 0, 0, "training pairs with more target tokens are skipped"},
    {"data.src_lang", K_LANG, OFF(src_lang), 0, "", 0, 0, 0, 0, "the source language's code as LibreTranslate names it (ISO 639-1/-3: de, en, pt-BR, zh-Hans; \"\" = not recorded); given with data.tgt_lang"},
    {"data.tgt_lang", K_LANG, OFF(tgt_lang), 0, "", 0, 0, 0, 0, "the target language's code (as data.src_lang; \"\" = not recorded)"},
    {"train.max_steps", K_INT, OFF(max_steps), 100000, 0, 0, 2e9, 0, 0, "stop after this many optimizer steps"},
    {"train.seed", K_INT, OFF(seed), 1, 0, 0, 2e9, 0, 0, "seeds initialisation, shuffling and dropout"},
    {"train.checkpoint_dir", K_STR, OFF(checkpoint_dir), 0, "checkpoints/run", 0, 0, 0, 0, "where checkpoints and train_log.jsonl go"},
    {"train.init_from", K_STR, OFF(init_from), 0, "", 0, 0, 0, 0, "fine-tuning: a fresh start takes the weights (their moving average when kept) and the tokenizer of this float checkpoint, whose model.* keys (the dropout rates aside), data.tokenizer, data.vocab_size and data.min_freq must agree with the config's; optimizer, learning-rate schedule and data order start afresh (\"\" = off; a resume ignores it)"},
    {"train.log_every", K_INT, OFF(log_every), 100, 0, 1, 2e9, 0, 0, "log a record every N steps"},
    {"train.save_every", K_INT, OFF(save_every), 1000, 0, 0, 2e9, 0, 0, "write step-N.ckpt every N steps (0 = only at the end)"},
    {"train.keep_last", K_INT, OFF(keep_last), 5, 0, 0, 1e6, 0, 0, "keep the newest N step-N.ckpt files (0 = keep all)"},
    {"train.eval_every", K_INT, OFF(eval_every), 0, 0, 0, 2e9, 0, 0, "validate every N steps (0 = only at the end)"},
    {"train.valid_bleu_lines", K_INT, OFF(valid_bleu_lines), 0, 0, -1, 1e9, 0, 0, "validation BLEU: greedy-translate this many valid lines (0 = all, -1 = no BLEU)"},
    {"train.best_metric", K_ENUM, OFF(best_metric), BEST_LOSS, 0, 0, 0, "valid_loss|valid_bleu", 0, "what best.ckpt and early stopping follow"},
    {"train.patience", K_INT, OFF(patience), 0, 0, 0, 1e9, 0, 0, "stop after N validations without improvement (0 = never)"},
    {"train.batch_tokens", K_INT, OFF(batch_tokens), 4096, 0, 1, 1 << 24, 0, 0, "tokens per batch (padded source or target, the larger)"},
    {"train.accum_steps", K_INT, OFF(accum_steps), 1, 0, 1, 1 << 16, 0, 0, "micro-batches of train.batch_tokens whose gradients each process sums before one update (the step's micro-batches: this times the number of processes)"},
    {"train.precision", K_ENUM, OFF(precision), PREC_FP32, 0, 0, 0, "fp32|bf16", 0, "the matrix products of the training passes and the validation loss: fp32 (float), or bf16 (their inputs rounded to bfloat16; the sums, weights, gradients and optimizer state stay float); validation BLEU and translate/eval/score/serve always decode in fp32; a resume may change it"},
    {"train.label_smoothing", K_NUM, OFF(label_smoothing), 0.1, 0, 0, 0.99, 0, 0, "label smoothing rate"},
    {"train.lr_schedule", K_ENUM, OFF(lr_schedule), LR_NOAM, 0, 0, 0, "noam|inverse_sqrt|cosine|linear", 0, "noam: lr_scale*d_model^-0.5*min(s^-0.5, s*warmup^-1.5); inverse_sqrt: lr*min(s/warmup, sqrt(warmup/s)); cosine, linear: lr*s/warmup, then down to 0 one step after train.max_steps, along a half cosine or a line"},
    {"train.lr_scale", K_NUM, OFF(lr_scale), 1.0, 0, 0, 1e6, 0, 0, "noam: multiplier"},
    {"train.lr", K_NUM, OFF(lr), 5e-4, 0, 0, 10, 0, 0, "inverse_sqrt, cosine, linear: peak learning rate"},
    {"train.warmup_steps", K_NUM, OFF(warmup_steps), 4000, 0, 1, 1e9, 0, 0, "learning-rate warmup steps"},
    {"train.optimizer", K_ENUM, OFF(optimizer), OPT_ADAM, 0, 0, 0, "adam|sgd_momentum", 0, "adam: Adam with bias correction (train.adam_*); sgd_momentum: SGD with heavy-ball momentum (train.momentum); a resumed run keeps its optimizer"},
    {"train.adam_beta1", K_NUM, OFF(beta1), 0.9, 0, 0, 0.999999, 0, 0, "Adam beta1"},
    {"train.adam_beta2", K_NUM, OFF(beta2), 0.98, 0, 0, 0.999999999, 0, 0, "Adam beta2"},
    {"train.adam_eps", K_NUM, OFF(eps), 1e-9, 0, 0, 1, 0, 0, "Adam epsilon"},
    {"train.momentum", K_NUM, OFF(momentum), 0.9, 0, 0, 0.999999, 0, 0, "sgd_momentum: momentum (the buffer is momentum * buffer + gradient)"},
    {"train.ema_decay", K_NUM, OFF(ema_decay), 0.0, 0, 0, 0.999999999, 0, 0, "exponential moving average of the weights, kept beside them (0 = off; e.g. 0.9999): validation, best.ckpt's choice and translate/eval/average/quantize use the average; update t uses min(decay, (1+t)/(10+t)); a resumed run cannot turn it on or off"},
    {"train.weight_decay", K_NUM, OFF(weight_decay), 0.0, 0, 0, 1, 0, 0, "decoupled weight decay (AdamW-style, either optimizer): p -= lr * weight_decay * p; not applied to biases and LayerNorm gains"},
    {"train.clip_norm", K_NUM, OFF(clip_norm), 0.0, 0, 0, 1e9, 0, 0, "clip gradients to this global L2 norm (0 = off)"},
    {"train.diverge_factor", K_NUM, OFF(diverge_factor), 10, 0, 0, 1e9, 0, 0, "a log record whose mean training loss is this many times ln(target vocabulary), where training starts, says the run diverged: it warns and writes no checkpoint while so (0 = never)"},
    {"train.diverge_patience", K_INT, OFF(diverge_patience), 3, 0, 1, 1e9, 0, 0, "stop with exit 1 after this many diverged log records in a row"},
};
#undef OFF
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static int enum_index(const char *choices, const char *s) {
    int idx = 0;
    const char *p = choices;
    size_t n = strlen(s);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return idx;
        idx++;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static void enum_name(const char *choices, int idx, char *out, size_t n) {
    const char *p = choices;
    for (int i = 0; i < idx; i++) p = strchr(p, '|') + 1;
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len >= n) len = n - 1;
    memcpy(out, p, len);
    out[len] = 0;
}

void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        const Key *k = &KEYS[i];
        char *f = (char *)c + k->offset;
        switch (k->type) {
        case K_INT: case K_BOOL: case K_ENUM: *(int *)f = (int)k->def; break;
        case K_NUM: *(double *)f = k->def; break;
        case K_STR: *(char **)f = xstrdup(k->def_str); break;
        case K_LANG: f[0] = 0; break;
        }
    }
}

void config_free(Config *c) {
    for (size_t i = 0; i < NKEYS; i++)
        if (KEYS[i].type == K_STR) {
            char **f = (char **)((char *)c + KEYS[i].offset);
            free(*f);
            *f = NULL;
        }
}

static const Key *find_key(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].path, path) == 0) return &KEYS[i];
    return NULL;
}

// Where a value came from, for messages: the config file or a --set.
typedef struct {
    const char *what;          // the file's name
    const char *const *sets;   // "a.b=value" overrides
    int nset;
} Origin;

static int from_set(const Origin *o, const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < o->nset; i++)
        if (strncmp(o->sets[i], path, n) == 0 && o->sets[i][n] == '=') return 1;
    return 0;
}

// "cfg.json: a.b" or "--set a.b": the prefix of a message about key `path`.
static const char *blame(const Origin *o, const char *path, char *buf, size_t n) {
    if (from_set(o, path)) snprintf(buf, n, "--set %s", path);
    else snprintf(buf, n, "%s: %s", o->what, path);
    return buf;
}

// ' (got "text")' for a string given where another type is expected.
static const char *got(const cJSON *v, char *buf, size_t n) {
    buf[0] = 0;
    if (cJSON_IsString(v)) snprintf(buf, n, " (got \"%.60s%s\")", v->valuestring, strlen(v->valuestring) > 60 ? "..." : "");
    return buf;
}

// Stores one JSON value into the field for key k; `who` names the key and
// where its value came from.
static int set_value(Config *c, const Key *k, const cJSON *v, const char *who) {
    char *f = (char *)c + k->offset;
    char g[80];
    switch (k->type) {
    case K_INT: {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
            return err_set(NMT_ERR_INPUT, "%s: expected an integer%s", who, got(v, g, sizeof g));
        double d = v->valuedouble;
        if (d < k->lo || d > k->hi)
            return err_set(NMT_ERR_INPUT, "%s: %.17g is out of range [%.17g, %.17g]", who, d, k->lo, k->hi);
        *(int *)f = (int)d;
        return NMT_OK;
    }
    case K_NUM: {
        if (!cJSON_IsNumber(v)) return err_set(NMT_ERR_INPUT, "%s: expected a number%s", who, got(v, g, sizeof g));
        double d = v->valuedouble;
        if (!(d >= k->lo && d <= k->hi))
            return err_set(NMT_ERR_INPUT, "%s: %.17g is out of range [%.17g, %.17g]", who, d, k->lo, k->hi);
        *(double *)f = d;
        return NMT_OK;
    }
    case K_BOOL:
        if (!cJSON_IsBool(v)) return err_set(NMT_ERR_INPUT, "%s: expected true or false%s", who, got(v, g, sizeof g));
        *(int *)f = cJSON_IsTrue(v);
        return NMT_OK;
    case K_STR:
        if (!cJSON_IsString(v)) return err_set(NMT_ERR_INPUT, "%s: expected a string", who);
        free(*(char **)f);
        *(char **)f = xstrdup(v->valuestring);
        return NMT_OK;
    case K_LANG:
        if (!cJSON_IsString(v)) return err_set(NMT_ERR_INPUT, "%s: expected a language code (a string)", who);
        if (v->valuestring[0] && !config_lang_code_ok(v->valuestring))
            return err_set(NMT_ERR_INPUT, "%s: \"%.40s%s\" is not a language code (ISO 639-1/-3 as LibreTranslate names "
                           "them: 2 or 3 lowercase letters, optionally '-' and 2 to 4 letters or digits: de, en, "
                           "pt-BR, zh-Hans)", who, v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
        snprintf(f, sizeof c->src_lang, "%s", v->valuestring);
        return NMT_OK;
    case K_ENUM: {
        int idx = cJSON_IsString(v) ? enum_index(k->choices, v->valuestring) : -1;
        if (idx < 0) return err_set(NMT_ERR_INPUT, "%s: expected one of \"%s\"%s", who, k->choices, got(v, g, sizeof g));
        *(int *)f = idx;
        return NMT_OK;
    }
    }
    return NMT_OK;
}

// Walks a JSON object; `prefix` is the dotted path of `obj`.
static int walk(Config *c, const cJSON *obj, const char *prefix, const Origin *o) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", it->string ? it->string : "");
        if (cJSON_IsObject(it)) {
            // Only sections exist at the top level.
            int is_section = 0;
            size_t plen = strlen(path);
            for (size_t i = 0; i < NKEYS; i++)
                if (strncmp(KEYS[i].path, path, plen) == 0 && KEYS[i].path[plen] == '.') is_section = 1;
            if (!is_section) return err_set(NMT_ERR_INPUT, "%s: unknown key '%s'", o->what, path);
            int rc = walk(c, it, path, o);
            if (rc) return rc;
            continue;
        }
        const Key *k = find_key(path);
        if (!k) return err_set(NMT_ERR_INPUT, "%s: unknown key '%s'", o->what, path);
        char who[300];
        int rc = set_value(c, k, it, blame(o, path, who, sizeof who));
        if (rc) return rc;
    }
    return NMT_OK;
}

// A key or section given twice: cJSON keeps both, and which one wins would
// depend on the walk. Refused, naming it.
static int check_duplicates(const cJSON *obj, const char *prefix, const char *what) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (!it->string) continue;
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", it->string);
        for (const cJSON *jt = it->next; jt; jt = jt->next)
            if (jt->string && strcmp(it->string, jt->string) == 0)
                return err_set(NMT_ERR_INPUT, "%s: duplicate %s '%s'", what,
                               cJSON_IsObject(it) || cJSON_IsObject(jt) ? "section" : "key", path);
        if (cJSON_IsObject(it)) {
            int rc = check_duplicates(it, path, what);
            if (rc) return rc;
        }
    }
    return NMT_OK;
}

// Line and column (1-based, in bytes) of text + off.
static void line_col(const char *text, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') { (*line)++; *col = 1; }
        else (*col)++;
    }
}

// Offset of the first \u0000 escape inside a JSON string of (valid JSON)
// `text`, or -1. cJSON would end the C string there: "d_model\u0000x" would
// become the key d_model.
static long find_nul_escape(const char *text) {
    int in_string = 0;
    for (size_t i = 0; text[i]; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
            continue;
        }
        if (text[i] == '"') in_string = 0;
        else if (text[i] == '\\') {
            if (text[i + 1] == 'u' && strncmp(text + i + 2, "0000", 4) == 0) return (long)i;
            if (text[i + 1]) i++;
        }
    }
    return -1;
}

// Applies "a.b=value" to the JSON tree. The whole value is the value: for
// string and enum keys, a JSON string ("quoted") or else the text as it is;
// for numbers and booleans, the whole text must be one JSON value (else it is
// kept as a string, and set_value says what was expected).
static int apply_set(cJSON *root, const char *set) {
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) return err_set(NMT_ERR_INPUT, "--set %s: expected key.path=value", set);
    char path[256];
    size_t plen = (size_t)(eq - set);
    if (plen >= sizeof path) return err_set(NMT_ERR_INPUT, "--set %s: key too long", set);
    memcpy(path, set, plen);
    path[plen] = 0;
    const Key *k = find_key(path);
    if (!k) return err_set(NMT_ERR_INPUT, "--set: unknown key '%s'", path);
    const char *text = eq + 1;
    cJSON *val = cJSON_ParseWithOpts(text, NULL, 1);
    int textual = k->type == K_STR || k->type == K_ENUM || k->type == K_LANG;
    if (val && (textual ? !cJSON_IsString(val) : cJSON_IsObject(val) || cJSON_IsArray(val))) {
        cJSON_Delete(val);
        val = NULL;
    }
    if (val && cJSON_IsString(val) && find_nul_escape(text) >= 0) {
        cJSON_Delete(val);
        return err_set(NMT_ERR_INPUT, "--set %s: \\u0000 (NUL) is not allowed in a string", path);
    }
    if (!val) val = cJSON_CreateString(text);
    cJSON *node = root;
    char *save = NULL, *tok = strtok_r(path, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            cJSON_DeleteItemFromObjectCaseSensitive(node, tok);
            cJSON_AddItemToObject(node, tok, val);
            break;
        }
        cJSON *child = cJSON_GetObjectItemCaseSensitive(node, tok);
        if (!child || !cJSON_IsObject(child)) {
            cJSON_DeleteItemFromObjectCaseSensitive(node, tok);
            child = cJSON_AddObjectToObject(node, tok);
        }
        node = child;
        tok = next;
    }
    return NMT_OK;
}

static int is_lower(char ch) { return ch >= 'a' && ch <= 'z'; }

static int is_alnum(char ch) {
    return is_lower(ch) || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int config_lang_code_ok(const char *s) {
    size_t n = 0, m = 0;
    while (is_lower(s[n])) n++;
    if (n < 2 || n > 3) return 0;
    if (!s[n]) return 1;
    if (s[n] != '-') return 0;
    while (is_alnum(s[n + 1 + m])) m++;
    return m >= 2 && m <= 4 && !s[n + 1 + m];
}

// Values that are in range but cannot work.
static int check_values(const Config *c, const Origin *o) {
    char who[300];
    if (c->eps == 0)
        return err_set(NMT_ERR_INPUT, "%s: must be greater than 0 (adam_eps 0 divides 0 by 0 for parameters "
                       "with zero gradient)", blame(o, "train.adam_eps", who, sizeof who));
    return NMT_OK;
}

// Where the values of several keys (NULL-terminated) came from: the file's
// name, each key given by --set ("--set a.b"), or both ("cfg.json, --set a.b").
static const char *sources(const Origin *o, const char *const *keys, char *buf, size_t n) {
    int nkeys = 0, nset = 0;
    for (; keys[nkeys]; nkeys++) nset += from_set(o, keys[nkeys]);
    if (nset == 0) return o->what;
    size_t at = 0;
    buf[0] = 0;
    if (nset < nkeys) at += (size_t)snprintf(buf, n, "%s", o->what);
    for (int i = 0; keys[i] && at < n; i++)
        if (from_set(o, keys[i])) at += (size_t)snprintf(buf + at, n - at, "%s--set %s", at ? ", " : "", keys[i]);
    return buf;
}

#define KEYS_(...) sources(o, (const char *const[]){__VA_ARGS__, NULL}, who, sizeof who)

static int check_consistency(const Config *c, const Origin *o) {
    char who[400];
    if (c->d_model % c->heads != 0)
        return err_set(NMT_ERR_INPUT, "%s: model.d_model (%d) must be divisible by model.heads (%d)",
                       KEYS_("model.d_model", "model.heads"), c->d_model, c->heads);
    if (c->d_model % 2 != 0)
        return err_set(NMT_ERR_INPUT, "%s: model.d_model (%d) must be even (sinusoidal positions)",
                       KEYS_("model.d_model"), c->d_model);
    if (!c->train_src[0]) return err_set(NMT_ERR_INPUT, "%s: data.train_src is required", KEYS_("data.train_src"));
    if (!c->train_tgt[0]) return err_set(NMT_ERR_INPUT, "%s: data.train_tgt is required", KEYS_("data.train_tgt"));
    if (!c->valid_src[0] != !c->valid_tgt[0])
        return err_set(NMT_ERR_INPUT, "%s: data.valid_src and data.valid_tgt must be given together",
                       KEYS_("data.valid_src", "data.valid_tgt"));
    if (!c->checkpoint_dir[0])
        return err_set(NMT_ERR_INPUT, "%s: train.checkpoint_dir must not be empty", KEYS_("train.checkpoint_dir"));
    if (c->tokenizer == TOK_BPE && c->vocab_size < 300)
        return err_set(NMT_ERR_INPUT, "%s: data.vocab_size (%d) must be at least 300 with data.tokenizer \"bpe\"",
                       KEYS_("data.vocab_size", "data.tokenizer"), c->vocab_size);
    if ((c->lr_schedule == LR_COSINE || c->lr_schedule == LR_LINEAR) && c->warmup_steps >= c->max_steps)
        return err_set(NMT_ERR_INPUT, "%s: train.warmup_steps (%g) must be below train.max_steps (%d) with a "
                       "decaying train.lr_schedule", KEYS_("train.warmup_steps", "train.max_steps", "train.lr_schedule"),
                       c->warmup_steps, c->max_steps);
    if (c->shared_vocab && !c->tie_output)
        return err_set(NMT_ERR_INPUT, "%s: model.shared_vocab requires model.tie_output",
                       KEYS_("model.shared_vocab", "model.tie_output"));
    if (c->best_metric == BEST_BLEU && c->valid_bleu_lines < 0)
        return err_set(NMT_ERR_INPUT, "%s: train.best_metric \"valid_bleu\" needs train.valid_bleu_lines >= 0",
                       KEYS_("train.best_metric", "train.valid_bleu_lines"));
    if (!c->src_lang[0] != !c->tgt_lang[0])
        return err_set(NMT_ERR_INPUT, "%s: %s is missing (data.src_lang and data.tgt_lang are given together)",
                       KEYS_(c->src_lang[0] ? "data.src_lang" : "data.tgt_lang"),
                       c->src_lang[0] ? "data.tgt_lang" : "data.src_lang");
    if (c->src_lang[0] && strcmp(c->src_lang, c->tgt_lang) == 0)
        return err_set(NMT_ERR_INPUT, "%s: data.src_lang and data.tgt_lang are both \"%s\"",
                       KEYS_("data.src_lang", "data.tgt_lang"), c->src_lang);
    if (c->batch_tokens < c->max_src_len + 1 || c->batch_tokens < c->max_tgt_len + 1)
        return err_set(NMT_ERR_INPUT, "%s: train.batch_tokens (%d) must exceed data.max_src_len and data.max_tgt_len",
                       KEYS_("train.batch_tokens", "data.max_src_len", "data.max_tgt_len"), c->batch_tokens);
    return NMT_OK;
}

#undef KEYS_

int config_parse(Config *c, const char *json_text, const char *what, const char *const *sets, int nset) {
    config_defaults(c);
    cJSON *root;
    size_t at;
    int kind = json_parse_whole(json_text, strlen(json_text), &root, &at), line, col;
    if (kind != JSON_WHOLE) {
        line_col(json_text, at, &line, &col);
        config_free(c);
        if (kind == JSON_TRAILING)
            return err_set(NMT_ERR_INPUT, "%s:%d:%d: data after the closing brace (byte %zu)", what, line, col, at);
        return err_set(NMT_ERR_INPUT, "%s:%d: malformed JSON", what, line);
    }
    int rc = NMT_OK;
    Origin o = {what, sets, nset};
    if (!cJSON_IsObject(root)) rc = err_set(NMT_ERR_INPUT, "%s: top level must be a JSON object", what);
    if (!rc) {
        long at = find_nul_escape(json_text);
        if (at >= 0) {
            int line, col;
            line_col(json_text, (size_t)at, &line, &col);
            rc = err_set(NMT_ERR_INPUT, "%s:%d:%d: \\u0000 (NUL) is not allowed in a key or string", what, line, col);
        }
    }
    if (!rc) rc = check_duplicates(root, "", what);
    for (int i = 0; !rc && i < nset; i++) rc = apply_set(root, sets[i]);
    if (!rc) rc = walk(c, root, "", &o);
    if (!rc) rc = check_values(c, &o);
    if (!rc) rc = check_consistency(c, &o);
    cJSON_Delete(root);
    if (rc) config_free(c);
    return rc;
}

// A directory where a file is expected (or a file where the checkpoint
// directory goes) is named with its key. Missing files are the trainer's to
// report (a BPE model, for one, is learned when missing).
static int check_paths(const Config *c, const Origin *o) {
    static const char *const FILES[] = {"data.train_src", "data.train_tgt", "data.valid_src", "data.valid_tgt",
                                        "data.bpe_model", "train.init_from"};
    char who[300];
    struct stat st;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        const char *p = *(char *const *)((const char *)c + find_key(FILES[i])->offset);
        if (p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            return err_set(NMT_ERR_INPUT, "%s: '%s' is a directory (a file is expected)", blame(o, FILES[i], who, sizeof who), p);
    }
    if (stat(c->checkpoint_dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return err_set(NMT_ERR_INPUT, "%s: '%s' is not a directory", blame(o, "train.checkpoint_dir", who, sizeof who),
                       c->checkpoint_dir);
    return NMT_OK;
}

int config_load(Config *c, const char *path, const char *const *sets, int nset) {
    size_t len = 0;
    char *text = read_file_text(path, &len);
    if (!text) {
        memset(c, 0, sizeof *c);
        return NMT_ERR_INPUT;
    }
    const char *nul = memchr(text, 0, len);
    if (nul) {
        int line, col;
        line_col(text, (size_t)(nul - text), &line, &col);
        free(text);
        memset(c, 0, sizeof *c);
        return err_set(NMT_ERR_INPUT, "%s:%d:%d: NUL byte in the file", path, line, col);
    }
    int rc = config_parse(c, text, path, sets, nset);
    free(text);
    if (!rc) {
        Origin o = {path, sets, nset};
        rc = check_paths(c, &o);
        if (rc) config_free(c);
    }
    return rc;
}

// d as JSON text that reads back as exactly d: cJSON's own form (an int, or
// 15 significant digits) when that is exact, else 16 or 17 digits. (cJSON
// accepts a 15-digit text within an epsilon, so 0.30000000000000004 would be
// written as 0.3.)
static cJSON *exact_number(double d) {
    char buf[40];
    if (fabs(d) < 2e9 && d == (double)(int)d) snprintf(buf, sizeof buf, "%d", (int)d);
    else
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%1.*g", prec, d);
            double back = strtod(buf, NULL);
            if (memcmp(&back, &d, sizeof d) == 0) break;
        }
    return cJSON_CreateRaw(buf);
}

static cJSON *value_json(const Config *c, const Key *k) {
    const char *f = (const char *)c + k->offset;
    char buf[64];
    switch (k->type) {
    case K_INT: return cJSON_CreateNumber(*(const int *)f);
    case K_NUM: return exact_number(*(const double *)f);
    case K_BOOL: return cJSON_CreateBool(*(const int *)f);
    case K_STR: return cJSON_CreateString(*(char *const *)f);
    case K_LANG: return cJSON_CreateString(f);
    case K_ENUM: enum_name(k->choices, *(const int *)f, buf, sizeof buf); return cJSON_CreateString(buf);
    }
    return cJSON_CreateNull();
}

char *config_to_json(const Config *c) {
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < NKEYS; i++) {
        const Key *k = &KEYS[i];
        const char *dot = strchr(k->path, '.');
        char section[64];
        size_t slen = (size_t)(dot - k->path);
        memcpy(section, k->path, slen);
        section[slen] = 0;
        cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, section);
        if (!sec) sec = cJSON_AddObjectToObject(root, section);
        cJSON_AddItemToObject(sec, dot + 1, value_json(c, k));
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
}

static int key_equal(const Config *a, const Config *b, const Key *k) {
    const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    switch (k->type) {
    case K_INT: case K_BOOL: case K_ENUM: return *(const int *)fa == *(const int *)fb;
    case K_NUM: return *(const double *)fa == *(const double *)fb;
    case K_STR: return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
    case K_LANG: return strcmp(fa, fb) == 0;
    }
    return 1;
}

int config_diff(const Config *a, const Config *b, int model_only, char *buf, size_t n) {
    int count = 0;
    size_t used = 0;
    if (n) buf[0] = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const Key *k = &KEYS[i];
        if (model_only && !k->model) continue;
        if (key_equal(a, b, k)) continue;
        if (used < n) used += (size_t)snprintf(buf + used, n - used, "%s%s", count ? ", " : "", k->path);
        count++;
    }
    return count;
}

int config_first_diff(const Config *a, const Config *b, int model_only, char *va, char *vb, size_t n,
                      const char **key) {
    for (size_t i = 0; i < NKEYS; i++) {
        const Key *k = &KEYS[i];
        if ((model_only && !k->model) || key_equal(a, b, k)) continue;
        const Config *side[2] = {a, b};
        char *out[2] = {va, vb};
        for (int j = 0; j < 2; j++) {
            cJSON *v = value_json(side[j], k);
            char *text = cJSON_PrintUnformatted(v);
            snprintf(out[j], n, "%s", text ? text : "?");
            cJSON_free(text);
            cJSON_Delete(v);
        }
        *key = k->path;
        return 1;
    }
    return 0;
}

void config_print_keys(void) {
    printf("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const Key *k = &KEYS[i];
        char def[128], ty[64];
        switch (k->type) {
        case K_INT: snprintf(ty, sizeof ty, "int"); snprintf(def, sizeof def, "%.0f", k->def); break;
        case K_NUM: snprintf(ty, sizeof ty, "number"); snprintf(def, sizeof def, "%g", k->def); break;
        case K_BOOL: snprintf(ty, sizeof ty, "bool"); snprintf(def, sizeof def, "%s", k->def ? "true" : "false"); break;
        case K_STR: snprintf(ty, sizeof ty, "string"); snprintf(def, sizeof def, "\"%s\"", k->def_str); break;
        case K_LANG: snprintf(ty, sizeof ty, "language"); snprintf(def, sizeof def, "\"%s\"", k->def_str); break;
        case K_ENUM: snprintf(ty, sizeof ty, "enum"); enum_name(k->choices, (int)k->def, def, sizeof def); break;
        }
        printf("| `%s` | %s | %s | %s |\n", k->path, ty, def, k->help);
    }
}
