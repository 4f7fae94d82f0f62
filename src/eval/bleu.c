// eval/bleu.c — sacreBLEU-compatible corpus BLEU (13a tokenizer) and chrF.
//
// Written from the definitions in sacreBLEU 2.x (tokenizer_13a.py,
// tokenizer_re.py, metrics/bleu.py, metrics/chrf.py, metrics/helpers.py).
// Text is handled as Unicode code points, like Python strings: character
// n-grams, lowercasing and whitespace splitting all work per code point.
#include "eval/bleu.h"
#include "common/util.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

// stb_ds's hm* macros spell GNU `typeof`, which -std=c11 does not provide.
#ifndef typeof
#define typeof __typeof__
#endif
#include <stb/stb_ds.h>

// ---------------------------------------------------------------------------
// Code point buffers and UTF-8

typedef struct {
    uint32_t *v;
    size_t n, cap;
} Cps;

static void cps_push(Cps *b, uint32_t c) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = c;
}

static void cps_free(Cps *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

long bleu_utf8_check(const char *s, size_t len) { return utf8_check(s, len); }

// Appends the code points of NUL-terminated `s` to `out`. Returns -1 (and
// records an error naming `what`) when `s` is not valid UTF-8.
static int decode(const char *s, const char *what, Cps *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        uint32_t cp;
        int k = utf8_next(u + i, len - i, &cp);
        if (!k) {
            err_set(NMT_ERR_INPUT, "%s is not valid UTF-8 (byte %zu)", what, i);
            return -1;
        }
        cps_push(out, cp);
        i += (size_t)k;
    }
    return 0;
}


// ---------------------------------------------------------------------------
// Python string semantics: str.isspace() (what split() and rstrip() use) and
// str.lower().

static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

// Case mapping comes from glibc's C.UTF-8 tables, opened once and then only
// read; the "C" locale would map ASCII only.
static locale_t utf8_locale;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;

static void open_utf8_locale(void) {
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

// Used only if C.UTF-8 is missing: ASCII, Latin-1, basic Greek and Cyrillic.
static uint32_t lower_fallback(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static uint32_t lower1(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (utf8_locale) return (uint32_t)towlower_l((wint_t)c, utf8_locale);
    return lower_fallback(c);
}

static int is_cased(uint32_t c) {
    if (utf8_locale)
        return iswupper_l((wint_t)c, utf8_locale) || iswlower_l((wint_t)c, utf8_locale) ||
               towlower_l((wint_t)c, utf8_locale) != (wint_t)c ||
               towupper_l((wint_t)c, utf8_locale) != (wint_t)c;
    return lower_fallback(c) != c || (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0xFF && c != 0xF7) ||
           (c >= 0x3AC && c <= 0x3CE) || (c >= 0x430 && c <= 0x45F);
}

// An approximation of Unicode's Case_Ignorable property: the apostrophes,
// dots, modifier letters and combining marks met in running text.
static int is_case_ignorable(uint32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xA8: case 0xAD: case 0xAF:
    case 0xB4: case 0xB7: case 0xB8: case 0x37A: case 0x387: case 0x1FBD: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    }
    return (c >= 0x2B0 && c <= 0x36F) || (c >= 0x374 && c <= 0x375) || (c >= 0x384 && c <= 0x385) ||
           (c >= 0x483 && c <= 0x489) || (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
           (c >= 0x1FBF && c <= 0x1FC1) || (c >= 0x1FCD && c <= 0x1FCF) || (c >= 0x1FDD && c <= 0x1FDF) ||
           (c >= 0x1FED && c <= 0x1FEF) || (c >= 0x1FFD && c <= 0x1FFE) || (c >= 0x200B && c <= 0x200F) ||
           (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFE20 && c <= 0xFE2F);
}

// Capital sigma lowercases to final sigma when it ends a word: a cased letter
// before it and none after it (case-ignorable characters skipped both ways).
static int final_sigma(const uint32_t *v, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(v[j - 1])) j--;
    if (j == 0 || !is_cased(v[j - 1])) return 0;
    j = i + 1;
    while (j < n && is_case_ignorable(v[j])) j++;
    return j == n || !is_cased(v[j]);
}

// Python's str.lower(): full mapping (U+0130 becomes two code points) and
// the final-sigma rule.
static void py_lower(Cps *b) {
    pthread_once(&utf8_locale_once, open_utf8_locale);
    Cps out = {0};
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        if (c == 0x130) {
            cps_push(&out, 'i');
            cps_push(&out, 0x307);
        } else if (c == 0x3A3) {
            cps_push(&out, final_sigma(b->v, b->n, i) ? 0x3C2 : 0x3C3);
        } else {
            cps_push(&out, lower1(c));
        }
    }
    cps_free(b);
    *b = out;
}

static void py_rstrip(Cps *b) {
    while (b->n > 0 && py_space(b->v[b->n - 1])) b->n--;
}

// ---------------------------------------------------------------------------
// The 13a tokenizer

// str.replace(pat, rep) for ASCII pat/rep with strlen(rep) <= strlen(pat):
// left to right, non-overlapping, so it can work in place.
static void replace_all(Cps *b, const char *pat, const char *rep) {
    size_t pn = strlen(pat), rn = strlen(rep), w = 0, i = 0;
    while (i < b->n) {
        size_t k = 0;
        if (b->n - i >= pn)
            while (k < pn && b->v[i + k] == (unsigned char)pat[k]) k++;
        if (k == pn) {
            for (size_t r = 0; r < rn; r++) b->v[w++] = (unsigned char)rep[r];
            i += pn;
        } else {
            b->v[w++] = b->v[i++];
        }
    }
    b->n = w;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_period_comma(uint32_t c) { return c == '.' || c == ','; }

// The character class of 13a's first rule: ASCII punctuation and symbols
// except the apostrophe, comma, hyphen and period (and space, harmlessly).
static int is_13a_symbol(uint32_t c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

// Each pass below is one re.sub() of two-character patterns: scan left to
// right, and after a match continue behind both matched characters.
static void tokenize_13a(Cps *b) {
    replace_all(b, "<skipped>", "");
    replace_all(b, "-\n", "");
    replace_all(b, "\n", " ");
    replace_all(b, "&quot;", "\"");
    replace_all(b, "&amp;", "&");
    replace_all(b, "&lt;", "<");
    replace_all(b, "&gt;", ">");

    Cps x = {0}, y = {0};
    // f' {line} ' then ([{-~[-` -&(-+:-@/]) -> ' \1 '
    cps_push(&x, ' ');
    for (size_t i = 0; i < b->n; i++) {
        if (is_13a_symbol(b->v[i])) {
            cps_push(&x, ' ');
            cps_push(&x, b->v[i]);
            cps_push(&x, ' ');
        } else {
            cps_push(&x, b->v[i]);
        }
    }
    cps_push(&x, ' ');
    // ([^0-9])([\.,]) -> '\1 \2 '
    for (size_t i = 0; i < x.n;) {
        if (i + 1 < x.n && !is_digit(x.v[i]) && is_period_comma(x.v[i + 1])) {
            cps_push(&y, x.v[i]);
            cps_push(&y, ' ');
            cps_push(&y, x.v[i + 1]);
            cps_push(&y, ' ');
            i += 2;
        } else {
            cps_push(&y, x.v[i++]);
        }
    }
    x.n = 0;
    // ([\.,])([^0-9]) -> ' \1 \2'
    for (size_t i = 0; i < y.n;) {
        if (i + 1 < y.n && is_period_comma(y.v[i]) && !is_digit(y.v[i + 1])) {
            cps_push(&x, ' ');
            cps_push(&x, y.v[i]);
            cps_push(&x, ' ');
            cps_push(&x, y.v[i + 1]);
            i += 2;
        } else {
            cps_push(&x, y.v[i++]);
        }
    }
    y.n = 0;
    // ([0-9])(-) -> '\1 \2 '
    for (size_t i = 0; i < x.n;) {
        if (i + 1 < x.n && is_digit(x.v[i]) && x.v[i + 1] == '-') {
            cps_push(&y, x.v[i]);
            cps_push(&y, ' ');
            cps_push(&y, '-');
            cps_push(&y, ' ');
            i += 2;
        } else {
            cps_push(&y, x.v[i++]);
        }
    }
    cps_free(&x);
    cps_free(b);
    *b = y;
}

typedef struct {
    size_t start, len;
} Span;

// str.split(): maximal runs of non-whitespace.
static Span *split_ws(const Cps *b) {
    Span *sp = NULL;
    size_t i = 0;
    while (i < b->n) {
        while (i < b->n && py_space(b->v[i])) i++;
        if (i == b->n) break;
        size_t s = i;
        while (i < b->n && !py_space(b->v[i])) i++;
        Span t = {s, i - s};
        arrput(sp, t);
    }
    return sp;
}

// What BLEU does to a segment before counting: lowercase (optional), strip
// trailing whitespace, tokenize, split. Returns -1 on invalid UTF-8.
static int bleu_preprocess(const char *s, const char *what, int lowercase, BleuTokenize tok, Cps *b,
                           Span **spans) {
    if (decode(s, what, b)) return -1;
    if (lowercase) py_lower(b);
    py_rstrip(b);
    if (tok == BLEU_TOK_13A) tokenize_13a(b);
    *spans = split_ws(b);
    return 0;
}

int bleu_tokenize_13a(const char *line, int lowercase, char **out) {
    *out = NULL;
    Cps b = {0};
    Span *sp = NULL;
    if (bleu_preprocess(line, "line", lowercase, BLEU_TOK_13A, &b, &sp)) {
        cps_free(&b);
        return NMT_ERR_INPUT;
    }
    char *o = xmalloc(4 * b.n + 1), *p = o;
    for (ptrdiff_t t = 0; t < arrlen(sp); t++) {
        if (t) *p++ = ' ';
        for (size_t k = 0; k < sp[t].len; k++) p += utf8_put(b.v[sp[t].start + k], p);
    }
    *p = 0;
    arrfree(sp);
    cps_free(&b);
    *out = o;
    return NMT_OK;
}

// ---------------------------------------------------------------------------
// BLEU

// Tokens are interned to small integers per segment, so that an n-gram is a
// fixed-size key (unused slots zero) for a stb_ds hash map.
typedef struct {
    char *key;
    uint32_t value;
} Intern;

typedef struct {
    uint32_t n;
    uint32_t id[BLEU_MAX_ORDER];
} WordGram;

typedef struct {
    WordGram key;
    long value;
} WordGramCount;

typedef struct {
    uint32_t *ids;
    size_t n;
} Toks;

static int bleu_segment(const char *s, const char *what, const BleuOptions *o, Intern **voc, Toks *t) {
    Cps b = {0};
    Span *sp = NULL;
    t->ids = NULL;
    t->n = 0;
    if (bleu_preprocess(s, what, o->lowercase, o->tokenize, &b, &sp)) {
        cps_free(&b);
        return -1;
    }
    size_t nt = (size_t)arrlen(sp);
    t->ids = xmalloc((nt ? nt : 1) * sizeof *t->ids);
    t->n = nt;
    char *tmp = xmalloc(4 * b.n + 1);
    for (size_t i = 0; i < nt; i++) {
        size_t k = 0;
        for (size_t j = 0; j < sp[i].len; j++) k += utf8_put(b.v[sp[i].start + j], tmp + k);
        tmp[k] = 0;
        ptrdiff_t at = shgeti(*voc, tmp);
        if (at < 0) {
            uint32_t id = (uint32_t)shlenu(*voc) + 1;
            shput(*voc, tmp, id);
            t->ids[i] = id;
        } else {
            t->ids[i] = (*voc)[at].value;
        }
    }
    free(tmp);
    arrfree(sp);
    cps_free(&b);
    return 0;
}

static WordGramCount *count_word_ngrams(const Toks *t, int max_order) {
    WordGramCount *m = NULL;
    for (int n = 1; n <= max_order; n++) {
        for (size_t i = 0; i + (size_t)n <= t->n; i++) {
            WordGram k;
            memset(&k, 0, sizeof k);
            k.n = (uint32_t)n;
            memcpy(k.id, t->ids + i, (size_t)n * sizeof *k.id);
            WordGramCount *e = hmgetp_null(m, k);
            if (e) e->value++;
            else hmput(m, k, 1);
        }
    }
    return m;
}

BleuOptions bleu_default_options(void) {
    BleuOptions o = {0, BLEU_TOK_13A, 4, BLEU_SMOOTH_EXP, -1.0, 0};
    return o;
}

void bleu_stats_init(BleuStats *s, int lowercase) {
    memset(s, 0, sizeof *s);
    s->opt = bleu_default_options();
    s->opt.lowercase = lowercase != 0;
}

int bleu_stats_init_opts(BleuStats *s, const BleuOptions *opt) {
    memset(s, 0, sizeof *s);
    s->opt = bleu_default_options();
    if (opt->max_order < 1 || opt->max_order > BLEU_MAX_ORDER)
        return err_set(NMT_ERR_INPUT, "bleu: max n-gram order %d is out of range [1, %d]", opt->max_order,
                       BLEU_MAX_ORDER);
    if (opt->tokenize != BLEU_TOK_13A && opt->tokenize != BLEU_TOK_NONE)
        return err_set(NMT_ERR_INPUT, "bleu: unknown tokenizer %d", (int)opt->tokenize);
    if (opt->smooth != BLEU_SMOOTH_EXP && opt->smooth != BLEU_SMOOTH_NONE && opt->smooth != BLEU_SMOOTH_FLOOR &&
        opt->smooth != BLEU_SMOOTH_ADD_K)
        return err_set(NMT_ERR_INPUT, "bleu: unknown smoothing method %d", (int)opt->smooth);
    if (!isfinite(opt->smooth_value))
        return err_set(NMT_ERR_INPUT, "bleu: smoothing value is not finite");
    s->opt = *opt;
    s->opt.lowercase = opt->lowercase != 0;
    s->opt.effective_order = opt->effective_order != 0;
    return NMT_OK;
}

int bleu_add(BleuStats *s, const char *hyp, const char *ref) {
    return bleu_add_refs(s, hyp, &ref, 1);
}

int bleu_add_refs(BleuStats *s, const char *hyp, const char *const *refs, int nrefs) {
    if (!hyp || !refs || nrefs < 1) return err_set(NMT_ERR_INPUT, "bleu: a segment needs a hypothesis and a reference");
    for (int r = 0; r < nrefs; r++)
        if (!refs[r]) return err_set(NMT_ERR_INPUT, "bleu: reference %d is missing", r + 1);
    int any_nonempty = 0;
    for (int r = 0; r < nrefs; r++) any_nonempty |= refs[r][0] != 0;

    const int N = s->opt.max_order;
    int rc = NMT_OK;
    Intern *voc = NULL;
    sh_new_arena(voc);
    Toks h = {0}, t = {0};
    WordGramCount *refm = NULL, *hypm = NULL;
    long closest_diff = -1, closest_len = -1;

    if (bleu_segment(hyp, "bleu: hypothesis", &s->opt, &voc, &h)) { rc = NMT_ERR_INPUT; goto done; }
    const long hyp_len = (long)h.n;
    for (int r = 0; r < nrefs; r++) {
        if (any_nonempty && refs[r][0] == 0) continue;
        if (bleu_segment(refs[r], "bleu: reference", &s->opt, &voc, &t)) { rc = NMT_ERR_INPUT; goto done; }
        long len = (long)t.n, diff = labs(hyp_len - len);
        if (closest_diff == -1 || diff < closest_diff) {
            closest_diff = diff;
            closest_len = len;
        } else if (diff == closest_diff && len < closest_len) {
            closest_len = len;
        }
        WordGramCount *m = count_word_ngrams(&t, N);
        free(t.ids);
        t.ids = NULL;
        if (!refm) {
            refm = m;
            continue;
        }
        // Several references: clip against the largest count of each n-gram.
        for (ptrdiff_t i = 0; i < hmlen(m); i++) {
            WordGramCount *e = hmgetp_null(refm, m[i].key);
            if (!e) hmput(refm, m[i].key, m[i].value);
            else if (m[i].value > e->value) e->value = m[i].value;
        }
        hmfree(m);
    }

    hypm = count_word_ngrams(&h, N);
    for (ptrdiff_t i = 0; i < hmlen(hypm); i++) {
        int n = (int)hypm[i].key.n - 1;
        s->totals[n] += hypm[i].value;
        WordGramCount *e = hmgetp_null(refm, hypm[i].key);
        if (e) s->counts[n] += hypm[i].value < e->value ? hypm[i].value : e->value;
    }
    s->hyp_len += hyp_len;
    s->ref_len += closest_len;
    s->n_sentences++;

done:
    free(h.ids);
    free(t.ids);
    hmfree(refm);
    hmfree(hypm);
    shfree(voc);
    return rc;
}

// sacreBLEU's floor for log(0): keeps the sum finite, so exp() gives 0.
static double floored_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

BleuResult bleu_compute(const long *counts, const long *totals, long hyp_len, long ref_len, const BleuOptions *opt) {
    BleuResult r;
    memset(&r, 0, sizeof r);
    const int N = opt->max_order < 1 ? 1 : opt->max_order > BLEU_MAX_ORDER ? BLEU_MAX_ORDER : opt->max_order;
    r.order = N;
    r.hyp_len = hyp_len;
    r.ref_len = ref_len;
    r.ratio = ref_len ? (double)hyp_len / (double)ref_len : 0.0;
    if (hyp_len < ref_len) r.bp = hyp_len > 0 ? exp(1.0 - (double)ref_len / (double)hyp_len) : 0.0;
    else r.bp = 1.0;
    int any = 0;
    for (int n = 0; n < N; n++) {
        r.counts[n] = (double)counts[n];
        r.totals[n] = (double)totals[n];
        any |= counts[n] != 0;
    }
    if (!any) return r;  // no match at any order: 0 whatever the smoothing

    double value = opt->smooth_value;
    if (value < 0) value = opt->smooth == BLEU_SMOOTH_FLOOR ? 0.1 : 1.0;
    double mteval = 1.0;
    int eff = N;
    for (int n = 0; n < N; n++) {
        if (opt->smooth == BLEU_SMOOTH_ADD_K && n > 0) {
            r.counts[n] += value;
            r.totals[n] += value;
        }
        if (r.totals[n] == 0) break;
        if (opt->effective_order) eff = n + 1;
        if (r.counts[n] == 0) {
            if (opt->smooth == BLEU_SMOOTH_EXP) {
                mteval *= 2;  // each order without a match halves the pseudo-precision again
                r.precisions[n] = 100.0 / (mteval * r.totals[n]);
            } else if (opt->smooth == BLEU_SMOOTH_FLOOR) {
                r.precisions[n] = 100.0 * value / r.totals[n];
            }
        } else {
            r.precisions[n] = 100.0 * r.counts[n] / r.totals[n];
        }
    }
    double sum = 0.0;
    for (int n = 0; n < eff; n++) sum += floored_log(r.precisions[n]);
    r.score = r.bp * exp(sum / eff);
    return r;
}

BleuResult bleu_result(const BleuStats *s) {
    return bleu_compute(s->counts, s->totals, s->hyp_len, s->ref_len, &s->opt);
}

void bleu_format(const BleuResult *r, char *buf, size_t n) {
    if (!n) return;
    size_t at = 0;
    int k = snprintf(buf, n, "BLEU = %.2f ", r->score);
    for (int i = 0; k >= 0 && i < r->order; i++) {
        at += (size_t)k;
        if (at >= n) return;
        k = snprintf(buf + at, n - at, "%s%.1f", i ? "/" : "", r->precisions[i]);
    }
    if (k < 0) return;
    at += (size_t)k;
    if (at >= n) return;
    snprintf(buf + at, n - at, " (BP = %.3f ratio = %.3f hyp_len = %ld ref_len = %ld)", r->bp, r->ratio, r->hyp_len,
             r->ref_len);
}

// ---------------------------------------------------------------------------
// chrF

typedef struct {
    uint32_t n;
    uint32_t cp[CHRF_MAX_ORDER];
} CharGram;

typedef struct {
    CharGram key;
    long value;
} CharGramCount;

static int chrf_preprocess(const char *s, const char *what, const ChrfOptions *o, Cps *b) {
    if (decode(s, what, b)) return -1;
    if (o->lowercase) py_lower(b);
    if (!o->whitespace) {  // "".join(line.split())
        size_t w = 0;
        for (size_t i = 0; i < b->n; i++)
            if (!py_space(b->v[i])) b->v[w++] = b->v[i];
        b->n = w;
    }
    return 0;
}

static CharGramCount *count_char_ngrams(const Cps *b, int order) {
    CharGramCount *m = NULL;
    for (int n = 1; n <= order; n++) {
        for (size_t i = 0; i + (size_t)n <= b->n; i++) {
            CharGram k;
            memset(&k, 0, sizeof k);
            k.n = (uint32_t)n;
            memcpy(k.cp, b->v + i, (size_t)n * sizeof *k.cp);
            CharGramCount *e = hmgetp_null(m, k);
            if (e) e->value++;
            else hmput(m, k, 1);
        }
    }
    return m;
}

static double chrf_fscore(const long (*st)[3], const ChrfOptions *o) {
    const double eps = 1e-16, factor = o->beta * o->beta;
    double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
    int eff = 0;
    for (int i = 0; i < o->char_order; i++) {
        long n_hyp = st[i][0], n_ref = st[i][1], n_match = st[i][2];
        double prec = n_hyp > 0 ? (double)n_match / (double)n_hyp : eps;
        double rec = n_ref > 0 ? (double)n_match / (double)n_ref : eps;
        double denom = factor * prec + rec;
        score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            eff++;
        }
    }
    if (o->eps_smoothing) return 100 * score / o->char_order;
    if (eff == 0) return 0.0;
    avg_prec /= eff;
    avg_rec /= eff;
    if (avg_prec + avg_rec == 0) return 0.0;
    score = (1 + factor) * avg_prec * avg_rec;
    score /= factor * avg_prec + avg_rec;
    return 100 * score;
}

ChrfOptions chrf_default_options(void) {
    ChrfOptions o = {6, 2.0, 0, 0, 0};
    return o;
}

void chrf_stats_init(ChrfStats *s, int lowercase) {
    memset(s, 0, sizeof *s);
    s->opt = chrf_default_options();
    s->opt.lowercase = lowercase != 0;
}

int chrf_stats_init_opts(ChrfStats *s, const ChrfOptions *opt) {
    memset(s, 0, sizeof *s);
    s->opt = chrf_default_options();
    if (opt->char_order < 1 || opt->char_order > CHRF_MAX_ORDER)
        return err_set(NMT_ERR_INPUT, "chrf: character order %d is out of range [1, %d]", opt->char_order,
                       CHRF_MAX_ORDER);
    if (!(opt->beta > 0) || !isfinite(opt->beta))
        return err_set(NMT_ERR_INPUT, "chrf: beta must be a positive number");
    s->opt = *opt;
    s->opt.lowercase = opt->lowercase != 0;
    s->opt.whitespace = opt->whitespace != 0;
    s->opt.eps_smoothing = opt->eps_smoothing != 0;
    return NMT_OK;
}

int chrf_add(ChrfStats *s, const char *hyp, const char *ref) {
    return chrf_add_refs(s, hyp, &ref, 1);
}

int chrf_add_refs(ChrfStats *s, const char *hyp, const char *const *refs, int nrefs) {
    if (!hyp || !refs || nrefs < 1) return err_set(NMT_ERR_INPUT, "chrf: a segment needs a hypothesis and a reference");
    for (int r = 0; r < nrefs; r++)
        if (!refs[r]) return err_set(NMT_ERR_INPUT, "chrf: reference %d is missing", r + 1);
    int any_nonempty = 0;
    for (int r = 0; r < nrefs; r++) any_nonempty |= refs[r][0] != 0;

    const int N = s->opt.char_order;
    int rc = NMT_OK;
    Cps h = {0}, t = {0};
    CharGramCount *hypm = NULL, *refm = NULL;
    long best[CHRF_MAX_ORDER][3];
    double best_f = -1.0;
    memset(best, 0, sizeof best);

    if (chrf_preprocess(hyp, "chrf: hypothesis", &s->opt, &h)) { rc = NMT_ERR_INPUT; goto done; }
    hypm = count_char_ngrams(&h, N);
    for (int r = 0; r < nrefs; r++) {
        if (any_nonempty && refs[r][0] == 0) continue;
        t.n = 0;
        if (chrf_preprocess(refs[r], "chrf: reference", &s->opt, &t)) { rc = NMT_ERR_INPUT; goto done; }
        refm = count_char_ngrams(&t, N);
        long st[CHRF_MAX_ORDER][3];
        memset(st, 0, sizeof st);
        for (int n = 1; n <= N; n++) {
            long hn = h.n >= (size_t)n ? (long)(h.n - (size_t)n + 1) : 0;
            long rn = t.n >= (size_t)n ? (long)(t.n - (size_t)n + 1) : 0;
            st[n - 1][0] = rn > 0 ? hn : 0;  // no reference n-grams: hypothesis ones do not count
            st[n - 1][1] = rn;
        }
        for (ptrdiff_t i = 0; i < hmlen(hypm); i++) {
            CharGramCount *e = hmgetp_null(refm, hypm[i].key);
            if (e) st[hypm[i].key.n - 1][2] += hypm[i].value < e->value ? hypm[i].value : e->value;
        }
        hmfree(refm);
        refm = NULL;
        double f = chrf_fscore((const long (*)[3])st, &s->opt);
        if (f > best_f) {
            best_f = f;
            memcpy(best, st, sizeof best);
        }
    }
    for (int n = 0; n < N; n++)
        for (int k = 0; k < 3; k++) s->stats[n][k] += best[n][k];
    s->n_sentences++;

done:
    hmfree(hypm);
    hmfree(refm);
    cps_free(&h);
    cps_free(&t);
    return rc;
}

ChrfResult chrf_result(const ChrfStats *s) {
    ChrfResult r;
    r.score = chrf_fscore((const long (*)[3])s->stats, &s->opt);
    r.beta = s->opt.beta;
    return r;
}

void chrf_format(const ChrfResult *r, char *buf, size_t n) {
    if (n) snprintf(buf, n, "chrF%g = %.2f", r->beta, r->score);
}

// ---------------------------------------------------------------------------
// Files of segments

// Cuts `text` into lines at '\n' in place (a final newline ends the last line
// rather than starting an empty one, as Python's line iteration does) and
// checks that every line is NUL-free UTF-8. `*lines` is malloc'ed.
static int split_lines(char *text, size_t len, const char *name, char ***lines, size_t *n) {
    size_t cap = 0, cnt = 0, start = 0;
    char **v = NULL;
    *lines = NULL;
    *n = 0;
    while (start < len) {
        char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (memchr(text + start, 0, end - start)) {
            free(v);
            return err_set(NMT_ERR_INPUT, "%s:%zu: line contains a NUL byte", name, cnt + 1);
        }
        long bad = bleu_utf8_check(text + start, end - start);
        if (bad >= 0) {
            free(v);
            return err_set(NMT_ERR_INPUT, "%s:%zu: invalid UTF-8 at byte %ld of the line", name, cnt + 1, bad + 1);
        }
        if (cnt == cap) v = xrealloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v);
        text[end] = 0;  // the '\n' (or the terminating NUL already there)
        v[cnt++] = text + start;
        start = end + 1;
    }
    *lines = v;
    *n = cnt;
    return NMT_OK;
}

int bleu_read_segments(const char *path, const char *name, char **text, char ***lines, size_t *n) {
    size_t len = 0;
    *lines = NULL;
    *n = 0;
    if (!(*text = read_file_text(path, &len))) return err_code() ? err_code() : NMT_ERR_INPUT;
    int rc = split_lines(*text, len, name, lines, n);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int bleu_score_segments(const char *const *hyp, const char *const *ref, size_t n, int lowercase,
                        BleuResult *bleu, ChrfResult *chrf) {
    BleuStats bs;
    ChrfStats cs;
    bleu_stats_init(&bs, lowercase);
    chrf_stats_init(&cs, lowercase);
    for (size_t i = 0; i < n; i++) {
        int rc = bleu_add(&bs, hyp[i], ref[i]);
        if (!rc && chrf) rc = chrf_add(&cs, hyp[i], ref[i]);
        if (rc) return rc;
    }
    *bleu = bleu_result(&bs);
    if (chrf) *chrf = chrf_result(&cs);
    return NMT_OK;
}
