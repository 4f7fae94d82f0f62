// text/langid.c — character n-gram language profiles and their ranking (langid.h).
#include "text/langid.h"
#include "common/util.h"

#include <inttypes.h>
#include <math.h>
#include <stb/stb_ds.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDERS 3
#define GRAM_MAX (4 * ORDERS)             // bytes: three code points of UTF-8
#define COUNT_MAX 1000000000000000ULL     // 10^15: counts a double holds exactly
#define PROFILE_MAX (1u << 20)            // n-grams a profile text may hold
// Additive smoothing's pseudo-count. Multi30k's val and test sentences
// (4,028, against profiles of its training sides) are all told apart with
// 1 and 0.5; 0.1 misses one.
#define SMOOTH 0.5
// The n-grams of each order that smoothing spreads its pseudo-counts over:
// the same for every profile (a profile's own count of distinct n-grams
// would give one of little text a large share for what it lacks).
static const double SPACE[ORDERS] = {100, 2000, 40000};

typedef struct {
    char b[GRAM_MAX];
    unsigned char len;    // bytes
    unsigned char order;  // code points, 1..ORDERS
    uint64_t count;
} Gram;

struct LangProfile {
    Gram *grams;                    // ascending by bytes (gram_cmp)
    size_t n;
    uint64_t total[ORDERS];         // n-grams of each order seen
    uint64_t distinct[ORDERS];      // distinct ones
    double log_den[ORDERS];         // log(total + SMOOTH * SPACE): the smoothing's denominator
};

// ---- what a word is, and its letters' one case ----

static int is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7) return 0;  // Latin-1 controls, punctuation, symbols
    if ((cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3000 && cp <= 0x303F)) return 0;  // general, CJK punctuation
    return 1;
}

static uint32_t lower(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;     // Latin-1: À..Þ
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 32;  // Greek: Α..Ω
    if (cp >= 0x410 && cp <= 0x42F) return cp + 32;                 // Cyrillic: А..Я
    if (cp >= 0x400 && cp <= 0x40F) return cp + 80;                 // Cyrillic: Ѐ..Џ
    return cp;
}


// ---- the n-grams of a text, in order ----

typedef void (*GramFn)(void *arg, const char *b, size_t len, int order);

// The last ORDERS code points of the padded word being read.
typedef struct {
    char b[ORDERS][4];
    unsigned char len[ORDERS];
    int have;
} Window;

// Appends cp and hands over the n-grams that end with it (not " " alone).
static void window_push(Window *w, uint32_t cp, GramFn fn, void *arg) {
    if (w->have == ORDERS) {
        memmove(w->b[0], w->b[1], sizeof w->b[0] * (ORDERS - 1));
        memmove(w->len, w->len + 1, ORDERS - 1);
        w->have--;
    }
    w->len[w->have] = (unsigned char)utf8_put(cp, w->b[w->have]);
    w->have++;
    for (int n = 1; n <= w->have; n++) {
        if (n == 1 && cp == ' ') continue;
        char g[GRAM_MAX];
        size_t len = 0;
        for (int i = w->have - n; i < w->have; i++) {
            memcpy(g + len, w->b[i], w->len[i]);
            len += w->len[i];
        }
        fn(arg, g, len, n);
    }
}

// Every n-gram of every word of text, in the text's order.
static void walk_grams(const char *text, GramFn fn, void *arg) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    Window w = {0};
    int in_word = 0;
    while (i < n) {
        uint32_t cp = 0;
        int k = utf8_next(s + i, n - i, &cp);
        int letter = k > 0 && is_letter(cp);  // an invalid byte ends a word
        i += k > 0 ? (size_t)k : 1;
        if (letter) {
            if (!in_word) window_push(&w, ' ', fn, arg);
            window_push(&w, lower(cp), fn, arg);
            in_word = 1;
        } else if (in_word) {
            window_push(&w, ' ', fn, arg);
            w.have = in_word = 0;
        }
    }
    if (in_word) window_push(&w, ' ', fn, arg);
}

// ---- building ----

static int gram_cmp(const Gram *a, const Gram *b) {
    int c = memcmp(a->b, b->b, a->len < b->len ? a->len : b->len);
    return c ? c : (int)a->len - (int)b->len;
}

static int by_bytes(const void *a, const void *b) { return gram_cmp(a, b); }

// Most frequent first, ties by bytes.
static int by_count(const void *a, const void *b) {
    const Gram *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return gram_cmp(x, y);
}

typedef struct {
    struct { char *key; uint64_t value; } *map;  // stb_ds string map: n-gram -> count
    uint64_t total[ORDERS];
} Counts;

static void count_gram(void *arg, const char *b, size_t len, int order) {
    Counts *c = arg;
    char key[GRAM_MAX + 1];
    memcpy(key, b, len);
    key[len] = 0;
    ptrdiff_t i = shgeti(c->map, key);
    if (i < 0) shput(c->map, key, 1);
    else c->map[i].value++;
    c->total[order - 1]++;
}

static int gram_order(const char *b, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)b[i] & 0xC0) != 0x80;
    return n;
}

static void set_log_den(LangProfile *p) {
    for (int o = 0; o < ORDERS; o++) p->log_den[o] = log((double)p->total[o] + SMOOTH * SPACE[o]);
}

LangProfile *langid_build(const char *const *lines, size_t n) {
    Counts c;
    memset(&c, 0, sizeof c);
    sh_new_arena(c.map);
    for (size_t i = 0; i < n; i++) walk_grams(lines[i], count_gram, &c);
    LangProfile *p = xcalloc(1, sizeof *p);
    size_t all = (size_t)shlen(c.map);
    Gram *g = xcalloc(all ? all : 1, sizeof *g);
    for (size_t i = 0; i < all; i++) {
        size_t len = strlen(c.map[i].key);
        memcpy(g[i].b, c.map[i].key, len);
        g[i].len = (unsigned char)len;
        g[i].order = (unsigned char)gram_order(g[i].b, len);
        g[i].count = c.map[i].value;
        p->distinct[g[i].order - 1]++;
    }
    shfree(c.map);
    memcpy(p->total, c.total, sizeof p->total);
    qsort(g, all, sizeof *g, by_count);
    p->n = all < LANGID_KEEP ? all : LANGID_KEEP;
    p->grams = xrealloc(g, (p->n ? p->n : 1) * sizeof *g);
    qsort(p->grams, p->n, sizeof *g, by_bytes);
    set_log_den(p);
    return p;
}

void langid_free(LangProfile *p) {
    if (!p) return;
    free(p->grams);
    free(p);
}

// ---- text form ----

char *langid_to_text(const LangProfile *p) {
    size_t cap = 256 + p->n * (24 + GRAM_MAX), at = 0;
    char *s = xmalloc(cap);
    at += (size_t)snprintf(s, cap, "nmt-langid 1 %zu\ntotal %" PRIu64 " %" PRIu64 " %" PRIu64 "\n"
                           "distinct %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", p->n, p->total[0], p->total[1],
                           p->total[2], p->distinct[0], p->distinct[1], p->distinct[2]);
    for (size_t i = 0; i < p->n; i++) {
        const Gram *g = &p->grams[i];
        at += (size_t)snprintf(s + at, cap - at, "%" PRIu64 " ", g->count);
        for (size_t k = 0; k < g->len; k++) s[at++] = g->b[k] == ' ' ? '_' : g->b[k];
        s[at++] = '\n';
    }
    s[at] = 0;
    return s;
}

// A reader of the untrusted text: never past end; `line` for messages.
typedef struct {
    const char *p, *end;
    size_t line;
} Cur;

static int cur_lit(Cur *c, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
    c->p += n;
    return 1;
}

static int cur_eol(Cur *c) {
    if (!cur_lit(c, "\n")) return 0;
    c->line++;
    return 1;
}

// A count: decimal digits, no sign, no leading zero, at most COUNT_MAX.
static int cur_count(Cur *c, uint64_t *v) {
    const char *s = c->p;
    uint64_t x = 0;
    for (; s < c->end && *s >= '0' && *s <= '9'; s++) {
        if (x > COUNT_MAX / 10) return 0;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (s == c->p || (*c->p == '0' && s - c->p > 1) || x > COUNT_MAX) return 0;
    c->p = s;
    *v = x;
    return 1;
}

// "WORD N1 N2 N3\n"
static int cur_triple(Cur *c, const char *word, uint64_t v[ORDERS]) {
    if (!cur_lit(c, word)) return 0;
    for (int o = 0; o < ORDERS; o++)
        if (!cur_lit(c, " ") || !cur_count(c, &v[o])) return 0;
    return cur_eol(c);
}

// One n-gram up to the line's end: 1..3 code points, each the padding ('_')
// or a lowercase letter as walk_grams makes them; not the padding alone.
static const char *cur_gram(Cur *c, Gram *g) {
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl) return "no line end";
    size_t len = (size_t)(nl - c->p);
    if (len == 0 || len > GRAM_MAX) return "an n-gram of 1 to 3 characters is expected";
    int order = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = utf8_next((const unsigned char *)c->p + i, len - i, &cp);
        if (!k) return "invalid UTF-8";
        if (cp != '_' && (!is_letter(cp) || lower(cp) != cp)) return "a character walk_grams never makes";
        i += (size_t)k;
        order++;
    }
    if (order > ORDERS) return "an n-gram of 1 to 3 characters is expected";
    if (len == 1 && c->p[0] == '_') return "the padding alone is not an n-gram";
    for (size_t i = 0; i < len; i++) g->b[i] = c->p[i] == '_' ? ' ' : c->p[i];
    g->len = (unsigned char)len;
    g->order = (unsigned char)order;
    c->p = nl + 1;
    return NULL;
}

// The n-gram lines: counts, order, and sums that agree with the header.
static const char *read_grams(Cur *c, LangProfile *p) {
    uint64_t kept[ORDERS] = {0}, sum[ORDERS] = {0};
    for (size_t i = 0; i < p->n; i++) {
        Gram *g = &p->grams[i];
        if (!cur_count(c, &g->count) || g->count == 0 || !cur_lit(c, " ")) return "a count from 1 to 10^15 is expected";
        const char *why = cur_gram(c, g);
        if (why) return why;
        if (i > 0 && gram_cmp(&p->grams[i - 1], g) >= 0) return "the n-grams are not in ascending order of their bytes";
        int o = g->order - 1;
        kept[o]++;
        sum[o] += g->count;
        if (sum[o] > p->total[o]) return "the counts of an order add up to more than its total";
        if (kept[o] > p->distinct[o]) return "more n-grams of an order than its distinct count";
        c->line++;
    }
    if (c->p != c->end) return "text after the last n-gram";
    for (int o = 0; o < ORDERS; o++)
        if (p->distinct[o] > p->total[o]) return "a distinct count above its total";
    return NULL;
}

LangProfile *langid_from_text(const char *text, size_t len, const char *what) {
    Cur c = {text, text + len, 1};
    uint64_t n = 0;
    LangProfile *p = xcalloc(1, sizeof *p);
    const char *why = NULL;
    if (!cur_lit(&c, "nmt-langid 1 ") || !cur_count(&c, &n))
        why = "the header \"nmt-langid 1 COUNT\" is expected";
    else if (n > PROFILE_MAX || n > len / 4)  // a line is at least "1 a\n"
        why = "more n-grams than the text can hold";
    else if (!cur_eol(&c)) why = "the header \"nmt-langid 1 COUNT\" is expected";
    else if (!cur_triple(&c, "total", p->total)) why = "\"total T1 T2 T3\" is expected";
    else if (!cur_triple(&c, "distinct", p->distinct)) why = "\"distinct D1 D2 D3\" is expected";
    if (!why) {
        p->n = (size_t)n;
        p->grams = xcalloc(p->n ? p->n : 1, sizeof *p->grams);
        why = read_grams(&c, p);
    }
    if (why) {
        err_set(NMT_ERR_INPUT, "%s: malformed language profile at line %zu: %s", what, c.line, why);
        langid_free(p);
        return NULL;
    }
    set_log_den(p);
    return p;
}

// ---- ranking ----

static uint64_t lookup(const LangProfile *p, const Gram *key) {
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = gram_cmp(&p->grams[mid], key);
        if (c == 0) return p->grams[mid].count;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

typedef struct {
    const LangProfile *const *p;
    size_t n;
    double *score;  // log-likelihood of the n-grams so far, per profile
    uint64_t *count;  // the current n-gram's count in each profile
    size_t grams;   // n-grams scored
} Rank;

// An n-gram no profile keeps says nothing of the language: counted, it would
// only favour the profile of the least text (the largest share for unseen
// n-grams), so it is skipped.
static void score_gram(void *arg, const char *b, size_t len, int order) {
    Rank *r = arg;
    Gram key;
    memcpy(key.b, b, len);
    key.len = (unsigned char)len;
    uint64_t known = 0;
    for (size_t i = 0; i < r->n; i++) known |= r->count[i] = lookup(r->p[i], &key);
    if (!known) return;
    for (size_t i = 0; i < r->n; i++)
        r->score[i] += log((double)r->count[i] + SMOOTH) - r->p[i]->log_den[order - 1];
    r->grams++;
}

void langid_rank(const LangProfile *const *profiles, size_t n, const char *text, double *confidence) {
    if (n == 0) return;
    Rank r = {profiles, n, xcalloc(n, sizeof(double)), xcalloc(n, sizeof(uint64_t)), 0};
    walk_grams(text, score_gram, &r);
    double top = r.score[0], sum = 0;
    for (size_t i = 1; i < n; i++)
        if (r.score[i] > top) top = r.score[i];
    for (size_t i = 0; i < n; i++) sum += exp(r.score[i] - top);
    for (size_t i = 0; i < n; i++)
        confidence[i] = r.grams ? 100.0 * exp(r.score[i] - top) / sum : 100.0 / (double)n;
    free(r.score);
    free(r.count);
}
