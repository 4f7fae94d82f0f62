// eval/bleu.h — corpus BLEU and chrF computed the way sacreBLEU 2.x computes them.
//
// Defaults match sacreBLEU's corpus_score(): BLEU with the 13a tokenizer,
// n-grams up to 4, 'exp' smoothing, case-sensitive, no effective order;
// chrF with character n-grams up to 6, no word n-grams, beta 2, whitespace
// removed, no epsilon smoothing. Statistics are summed over the corpus and
// the score is computed once from the sums, as sacreBLEU does.
//
// Usage: init a stats accumulator, add (hypothesis, reference) pairs one by
// one (UTF-8 strings, no trailing newline needed), then ask for the result.
// The accumulators are plain structs: nothing to free.
#ifndef NMT_BLEU_H
#define NMT_BLEU_H

#include <stddef.h>

enum { BLEU_MAX_ORDER = 8, CHRF_MAX_ORDER = 10 };

typedef enum { BLEU_SMOOTH_EXP, BLEU_SMOOTH_NONE, BLEU_SMOOTH_FLOOR, BLEU_SMOOTH_ADD_K } BleuSmooth;
typedef enum { BLEU_TOK_13A, BLEU_TOK_NONE } BleuTokenize;

typedef struct {
    int lowercase;          // lowercase both sides first (Unicode, like Python's str.lower)
    BleuTokenize tokenize;  // 13a (default) or none (split on whitespace only)
    int max_order;          // 1..BLEU_MAX_ORDER, default 4
    BleuSmooth smooth;      // default exp
    double smooth_value;    // floor / add-k value; < 0 = sacreBLEU's default (0.1 / 1)
    int effective_order;    // stop at the highest order with hypothesis n-grams
} BleuOptions;

typedef struct {
    BleuOptions opt;
    long hyp_len, ref_len;            // tokens; ref_len sums the closest reference lengths
    long counts[BLEU_MAX_ORDER];      // clipped n-gram matches per order
    long totals[BLEU_MAX_ORDER];      // hypothesis n-grams per order
    long n_sentences;
} BleuStats;

typedef struct {
    int order;                         // number of valid entries below
    double score;                      // 0..100
    double precisions[BLEU_MAX_ORDER]; // percent, as sacreBLEU reports them
    double counts[BLEU_MAX_ORDER];     // after add-k smoothing, if any
    double totals[BLEU_MAX_ORDER];
    double bp, ratio;
    long hyp_len, ref_len;
} BleuResult;

BleuOptions bleu_default_options(void);
void bleu_stats_init(BleuStats *s, int lowercase);   // sacreBLEU defaults
// Returns NMT_OK, or NMT_ERR_INPUT (err_set) for an option out of range.
int bleu_stats_init_opts(BleuStats *s, const BleuOptions *opt);

// Adds one segment. Returns NMT_OK, or NMT_ERR_INPUT when a string is not
// valid UTF-8 (the stats are then unchanged).
int bleu_add(BleuStats *s, const char *hyp, const char *ref);
// Several references for one hypothesis (clipping against the maximum count
// over references, closest reference length, ties to the shorter). Empty
// references are skipped as sacreBLEU does; if all are empty the segment
// counts against an empty reference (sacreBLEU would refuse it).
int bleu_add_refs(BleuStats *s, const char *hyp, const char *const *refs, int nrefs);

BleuResult bleu_result(const BleuStats *s);
// The score from raw sufficient statistics (arrays of opt->max_order entries).
BleuResult bleu_compute(const long *counts, const long *totals, long hyp_len, long ref_len,
                        const BleuOptions *opt);
// "BLEU = 35.12 67.1/42.3/28.8/20.0 (BP = 1.000 ratio = 1.002 hyp_len = 1234 ref_len = 1232)"
void bleu_format(const BleuResult *r, char *buf, size_t n);

// The 13a tokenization of one line (after optional lowercasing and trailing
// whitespace removal, as BLEU applies it), tokens joined by single spaces.
// *out is malloc'ed; returns NMT_OK or NMT_ERR_INPUT for invalid UTF-8.
int bleu_tokenize_13a(const char *line, int lowercase, char **out);

// Byte offset of the first invalid UTF-8 sequence in s[0..len) (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or -1.
long bleu_utf8_check(const char *s, size_t len);

typedef struct {
    int char_order;     // 1..CHRF_MAX_ORDER, default 6
    double beta;        // default 2
    int lowercase;
    int whitespace;     // keep whitespace in character n-grams (default 0: removed)
    int eps_smoothing;  // chrF++.py-style epsilon smoothing (default 0: effective order)
} ChrfOptions;

typedef struct {
    ChrfOptions opt;
    long stats[CHRF_MAX_ORDER][3];  // per order: hypothesis, reference, matching n-grams
    long n_sentences;
} ChrfStats;

typedef struct {
    double score;  // 0..100
    double beta;
} ChrfResult;

ChrfOptions chrf_default_options(void);
void chrf_stats_init(ChrfStats *s, int lowercase);
int chrf_stats_init_opts(ChrfStats *s, const ChrfOptions *opt);
int chrf_add(ChrfStats *s, const char *hyp, const char *ref);
// Several references: keeps the statistics of the reference with the best
// sentence-level F-score (the first one on ties), as sacreBLEU does.
int chrf_add_refs(ChrfStats *s, const char *hyp, const char *const *refs, int nrefs);
ChrfResult chrf_result(const ChrfStats *s);
// "chrF2 = 59.73"
void chrf_format(const ChrfResult *r, char *buf, size_t n);

// Corpus scores of n (hypothesis, reference) pairs with sacreBLEU's defaults:
// BLEU, and chrF2 when `chrf` is not NULL. NMT_ERR_INPUT for invalid UTF-8.
int bleu_score_segments(const char *const *hyp, const char *const *ref, size_t n, int lowercase,
                        BleuResult *bleu, ChrfResult *chrf);

// The segments of a file as sacreBLEU reads them: lines cut at '\n' (a final
// newline ends the last line rather than starting an empty one), each NUL-free
// UTF-8; `name` names the file in those errors ("NAME:LINE: invalid UTF-8 ...").
// *text is malloc'ed, *lines a malloc'ed array of n pointers into it.
int bleu_read_segments(const char *path, const char *name, char **text, char ***lines, size_t *n);

#endif
