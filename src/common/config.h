// common/config.h — the run's configuration: JSON file + --set overrides -> Config.
// Every key, its type, default and range live in one table in config.c; the
// README's key table is written from the same list (`nmt config-keys`).
#ifndef NMT_CONFIG_H
#define NMT_CONFIG_H

#include <stddef.h>

enum { NORM_POST = 0, NORM_PRE = 1 };
enum { POS_SINUSOIDAL = 0, POS_RELATIVE = 1 };   // model.positions
enum { TOK_WORD = 0, TOK_BPE = 1 };
enum { LR_NOAM = 0, LR_INVSQRT = 1, LR_COSINE = 2, LR_LINEAR = 3 };
enum { BEST_LOSS = 0, BEST_BLEU = 1 };
enum { OPT_ADAM = 0, OPT_SGD_MOMENTUM = 1 };   // train.optimizer (src/optim.c)
enum { PREC_FP32 = 0, PREC_BF16 = 1 };         // train.precision (model_precision_from: model.h's Precision)

typedef struct {
    // model
    int d_model, heads, d_ff, enc_layers, dec_layers;
    int norm;              // NORM_POST | NORM_PRE
    int tie_output;        // output projection = target embedding
    int shared_vocab;      // one vocabulary, all three matrices tied
    int positions;         // POS_SINUSOIDAL | POS_RELATIVE
    int max_rel_pos;       // relative: distances clipped to -k..k
    int attn_window;       // self-attention reaches keys within this distance (0 = all)
    double dropout, attn_dropout, ffn_dropout;
    // data
    char *train_src, *train_tgt, *valid_src, *valid_tgt;
    int tokenizer;         // TOK_WORD | TOK_BPE
    int vocab_size;        // BPE: total size; word: upper bound (0 = all words)
    int min_freq;          // word: drop rarer words to <unk>
    char *bpe_model;       // BPE model path ("" = <checkpoint_dir>/bpe.model)
    int max_src_len, max_tgt_len;
    char src_lang[16], tgt_lang[16];  // language codes (config_lang_code_ok); "" = not recorded
    // train
    int max_steps, seed, log_every, save_every, keep_last, eval_every;
    int valid_bleu_lines, best_metric, patience;
    char *checkpoint_dir;
    char *init_from;       // train.init_from: checkpoint a fresh start takes weights and tokenizer from ("" = none)
    int batch_tokens;
    int accum_steps;       // micro-batches per process per update
    int precision;         // PREC_FP32 | PREC_BF16: the training passes' matrix products
    double label_smoothing;
    int lr_schedule;       // LR_NOAM | LR_INVSQRT | LR_COSINE | LR_LINEAR
    double lr_scale, lr, warmup_steps;
    int optimizer;         // OPT_ADAM | OPT_SGD_MOMENTUM
    double beta1, beta2, eps, momentum, weight_decay, clip_norm;
    double ema_decay;                  // train.ema_decay: 0 = no moving average of the weights
    double diverge_factor; // diverged: log-record loss > this x ln(target vocab) (0 = never)
    int diverge_patience;  // stop after this many diverged log records in a row
} Config;

// Fills `c` with the defaults.
void config_defaults(Config *c);

// Parses JSON text (named `what` in messages), applies `nset` overrides of the
// form "a.b=value", validates everything. On error: NMT_ERR_INPUT with a
// message naming `what` and the key ("--set a.b" instead of `what` when the
// value came from a --set). `sets` may be NULL. Refused besides wrong keys,
// types and ranges: duplicate keys or sections, \u0000 in any string, and
// anything but blank space after the closing brace. An override's value is
// the whole text after '=': for string and enum keys a JSON "string" or else
// the text itself; for numbers and booleans exactly one JSON value.
int config_parse(Config *c, const char *json_text, const char *what,
                 const char *const *sets, int nset);

// Reads and parses a config file (a NUL byte in it is refused), then checks
// that no data.* file is a directory and that train.checkpoint_dir, when it
// exists, is one (missing files are left to the trainer).
int config_load(Config *c, const char *path, const char *const *sets, int nset);

// The resolved config as JSON text (every key). Numbers are written with the
// fewest digits that read back to the same double. Caller frees.
char *config_to_json(const Config *c);

// Names of keys whose values differ between a and b, comma-separated into buf
// (empty if none). `model_only` restricts to keys that fix the model's shape or
// vocabulary. Returns the number of differing keys.
int config_diff(const Config *a, const Config *b, int model_only, char *buf, size_t n);

// The first key (in the table's order, model_only as above) whose values
// differ: *key its path, va and vb its values in a and b as JSON text (n
// bytes each). Returns 0 (and leaves them) when none differ.
int config_first_diff(const Config *a, const Config *b, int model_only, char *va, char *vb, size_t n,
                      const char **key);

// Whether s is a language code as LibreTranslate names them: ISO 639-1/-3,
// 2 or 3 lowercase ASCII letters, optionally '-' and 2 to 4 ASCII letters or
// digits ("de", "pt-BR", "zh-Hans"). The empty string is not one.
int config_lang_code_ok(const char *s);

// Markdown table of every key (type, default, meaning) for the README.
void config_print_keys(void);

void config_free(Config *c);

#endif
