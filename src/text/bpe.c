// text/bpe.c — byte-pair encoding: learning (word-type counts, incrementally
// updated pair counts with a pair -> words index, lazy max-heap), encoding
// (merge ranks + a per-word cache), decoding and the text model format.
#include "text/bpe.h"
#include "common/util.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// stb_ds's hm* macros use GNU `typeof`, which -std=c11 spells __typeof__.
#ifndef typeof
#define typeof __typeof__
#endif
#include <stb/stb_ds.h>

// U+2581 stands for "a space before this word"; a literal U+2581 in the text
// is encoded through byte tokens so it can never be mistaken for a space.
#define MARKER "\xE2\x96\x81"
#define MARKER_LEN 3
#define MARKER_CP 0x2581u
#define MAX_VOCAB (1 << 24)
#define CACHE_MAX_ENTRIES (1 << 20) // bounds memory on endless input streams
#define CACHE_MAX_PIECE 256         // longer pieces are encoded uncached
#define FORMAT_HEADER "nmt-bpe 1"

typedef struct { uint32_t key; int value; } CpId;
typedef struct { int rank, result; } MergeInfo;
typedef struct { uint64_t key; MergeInfo value; } PairMerge;
typedef struct { char *key; int value; } StrId;
typedef struct { int a, b, result; } Merge;

struct Bpe {
    int n;               // number of ids
    char **tok;          // stb array: printable form of every id (owned)
    StrId *tok_id;       // printable form -> id
    uint32_t *chars;     // stb array: codepoint of learned char BPE_FIRST_LEARNED + i
    CpId *char_id;       // codepoint -> id
    Merge *merges;       // stb array, in rank order
    PairMerge *merge_of; // (a, b) -> rank, result
    int marker_id;
    // Encoding cache, mutated under `omp critical(bpe_cache)` even through a
    // const Bpe: it is a memo, not part of the model's value.
    StrId *cache;        // piece -> offset in cache_ids
    int *cache_ids;      // per piece: count, then the ids
};

static uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

// ---- UTF-8 and pre-tokenization ------------------------------------------


// Character classes. Runs of one class form a piece, so merges never cross
// a word/punctuation/digit boundary. RAW characters (controls, tab, the
// literal marker) are never learned: they always become byte tokens, which
// keeps every learned token printable and free of whitespace.
enum { CL_SPACE, CL_RAW, CL_PUNCT, CL_DIGIT, CL_WORD };

static int char_class(uint32_t c) {
    if (c == ' ') return CL_SPACE;
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || c == MARKER_CP) return CL_RAW;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    if (c < 0x80) return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? CL_WORD : CL_PUNCT;
    if ((c >= 0xA1 && c <= 0xBF) || c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x206F) ||
        (c >= 0x20A0 && c <= 0x20CF) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65))
        return CL_PUNCT;
    return CL_WORD;
}

typedef struct {
    size_t start, len;  // bytes of the line
    unsigned char marker; // preceded by a space: the piece starts with '▁'
    unsigned char raw;    // a RAW character: byte tokens only
} Piece;

// Splits a line into pieces. A dummy space is assumed before the line (as in
// SentencePiece) so a sentence-initial word looks like any other; decoding
// drops it again. Every space becomes the marker of the following piece, or
// a piece of its own when no word follows. Returns -1, or the byte offset of
// the first invalid UTF-8 sequence.
static long pretokenize(const char *line, size_t n, Piece **out) {
    arrsetlen(*out, 0);
    if (n == 0) return -1;
    const unsigned char *s = (const unsigned char *)line;
    int pending = 1, run = -1, run_class = -1;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = utf8_next(s + i, n - i, &cp);
        if (!k) return (long)i;
        int cl = char_class(cp);
        if (cl == CL_SPACE || cl == CL_RAW) {
            if (pending) arrpush(*out, ((Piece){i, 0, 1, 0}));
            pending = cl == CL_SPACE;
            if (cl == CL_RAW) arrpush(*out, ((Piece){i, (size_t)k, 0, 1}));
            run = -1;
        } else if (run >= 0 && cl == run_class) {
            (*out)[run].len += (size_t)k;
        } else {
            arrpush(*out, ((Piece){i, (size_t)k, (unsigned char)pending, 0}));
            run = (int)arrlen(*out) - 1;
            run_class = cl;
            pending = 0;
        }
        i += (size_t)k;
    }
    if (pending) arrpush(*out, ((Piece){n, 0, 1, 0}));
    return -1;
}

// The NUL-terminated string of a non-raw piece, marker included, in *key.
static size_t piece_key(const char *line, const Piece *p, char **key) {
    size_t n = (p->marker ? MARKER_LEN : 0) + p->len;
    arrsetlen(*key, n + 1);
    char *k = *key;
    if (p->marker) memcpy(k, MARKER, MARKER_LEN);
    memcpy(k + (p->marker ? MARKER_LEN : 0), line + p->start, p->len);
    k[n] = 0;
    return n;
}

// ---- the vocabulary ----------------------------------------------------------

static int add_token(Bpe *b, const char *s) {
    int id = b->n++;
    arrpush(b->tok, xstrdup(s));
    shput(b->tok_id, b->tok[id], id);
    return id;
}

static Bpe *bpe_new(void) {
    Bpe *b = xcalloc(1, sizeof *b);
    sh_new_arena(b->tok_id);
    sh_new_arena(b->cache);
    b->marker_id = -1;
    for (int i = 0; i < TOK_SPECIALS; i++) add_token(b, token_special(i));
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        add_token(b, s);
    }
    return b;
}

static int add_char(Bpe *b, uint32_t cp) {
    char s[5];
    s[utf8_put(cp, s)] = 0;
    int id = add_token(b, s);
    arrpush(b->chars, cp);
    hmput(b->char_id, cp, id);
    if (cp == MARKER_CP) b->marker_id = id;
    return id;
}

// Looks up a string without touching the map (stb_ds lookups write a
// scratch field in the map header; encoding may run on several threads).
static int lookup_str(const StrId *map, const char *s) {
    if (!map) return -1;
    StrId *m = (StrId *)map;
    ptrdiff_t t;
    m = stbds_hmget_key_ts(m, sizeof *m, (void *)s, sizeof m->key, &t, STBDS_HM_STRING);
    return t >= 0 ? m[t].value : -1;
}

static int lookup_char(const Bpe *b, uint32_t cp) {
    if (!b->char_id) return -1;
    CpId *m = b->char_id;
    ptrdiff_t t;
    hmgeti_ts(m, cp, t);
    return t >= 0 ? m[t].value : -1;
}

// Rank and result of merging (a, b); rank INT_MAX when there is no such merge.
static MergeInfo lookup_merge(const Bpe *b, int x, int y) {
    MergeInfo none = {INT_MAX, -1};
    if (!b->merge_of || x < BPE_FIRST_LEARNED || y < BPE_FIRST_LEARNED) return none;
    PairMerge *m = b->merge_of;
    ptrdiff_t t;
    hmgeti_ts(m, pair_key(x, y), t);
    return t >= 0 ? m[t].value : none;
}

// The id of the concatenation of tokens x and y: an existing learned token of
// that spelling (two merge paths can spell the same string) or a new one.
// Returns -1 if the spelling is a special or byte token.
static int merge_result(Bpe *b, int x, int y) {
    size_t lx = strlen(b->tok[x]), ly = strlen(b->tok[y]);
    char *s = xmalloc(lx + ly + 1);
    memcpy(s, b->tok[x], lx);
    memcpy(s + lx, b->tok[y], ly + 1);
    int id = lookup_str(b->tok_id, s);
    if (id < 0) id = add_token(b, s);
    else if (id < BPE_FIRST_LEARNED) id = -1;
    free(s);
    return id;
}

static void add_merge(Bpe *b, int x, int y, int result) {
    MergeInfo info = {(int)arrlen(b->merges), result};
    arrpush(b->merges, ((Merge){x, y, result}));
    hmput(b->merge_of, pair_key(x, y), info);
}

void bpe_free(Bpe *b) {
    if (!b) return;
    for (ptrdiff_t i = 0; i < arrlen(b->tok); i++) free(b->tok[i]);
    arrfree(b->tok);
    shfree(b->tok_id);
    arrfree(b->chars);
    hmfree(b->char_id);
    arrfree(b->merges);
    hmfree(b->merge_of);
    shfree(b->cache);
    arrfree(b->cache_ids);
    free(b);
}

int bpe_vocab_size(const Bpe *b) { return b->n; }

const char *bpe_token(const Bpe *b, int id) { return id >= 0 && id < b->n ? b->tok[id] : NULL; }

int bpe_token_id(const Bpe *b, const char *token) { return lookup_str(b->tok_id, token); }

// ---- learning -------------------------------------------------------------------

typedef struct { char *key; int64_t value; } StrCount;
typedef struct { uint32_t key; int64_t value; } CpCount;
typedef struct { uint64_t key; int value; } PairIdx;
typedef struct { int64_t count; int pair; } HeapEnt;

typedef struct {
    int a, b;
    int64_t count;
    int *at;      // stb array: nodes where the pair began at some point (stale entries are checked)
    int stamp;    // merge step that last touched it
    int merged;
} Pair;

// All word types' symbols as one array of nodes; each word is a doubly
// linked list (-1 ends it), so a merge touches only its own occurrences and
// their neighbours: learning is linear in the corpus plus the merges, even
// for one very long word.
typedef struct {
    Bpe *b;
    int *sym;      // symbol of each node, -1 once merged into its left neighbour
    int *prev, *next;
    int *word;     // word type of each node
    int64_t *freq; // per word type
    Pair *pairs;   // stb array
    PairIdx *pair_idx;
    HeapEnt *heap; // stb array, max-heap
    int *touched;
    int stamp;
} Learner;

// Heap order: higher count first, then the lexicographically smaller pair of
// strings, so the merge sequence never depends on hash or insertion order.
static int heap_before(const Learner *L, HeapEnt x, HeapEnt y) {
    if (x.count != y.count) return x.count > y.count;
    if (x.pair == y.pair) return 0;
    const Pair *p = &L->pairs[x.pair], *q = &L->pairs[y.pair];
    int c = strcmp(L->b->tok[p->a], L->b->tok[q->a]);
    if (c == 0) c = strcmp(L->b->tok[p->b], L->b->tok[q->b]);
    return c < 0;
}

static void heap_push(Learner *L, HeapEnt e) {
    arrpush(L->heap, e);
    size_t i = arrlenu(L->heap) - 1;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(L, L->heap[i], L->heap[parent])) break;
        HeapEnt t = L->heap[i]; L->heap[i] = L->heap[parent]; L->heap[parent] = t;
        i = parent;
    }
}

static void heap_pop(Learner *L) {
    size_t n = arrlenu(L->heap) - 1;
    L->heap[0] = L->heap[n];
    arrsetlen(L->heap, n);
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && heap_before(L, L->heap[l], L->heap[best])) best = l;
        if (r < n && heap_before(L, L->heap[r], L->heap[best])) best = r;
        if (best == i) break;
        HeapEnt t = L->heap[i]; L->heap[i] = L->heap[best]; L->heap[best] = t;
        i = best;
    }
}

// The pair to merge next, or -1 when no pair occurs at least twice. Entries
// are lazy: a pair's count may have dropped since it was pushed.
static int heap_best(Learner *L) {
    while (arrlen(L->heap) > 0) {
        HeapEnt top = L->heap[0];
        int64_t cur = L->pairs[top.pair].count;
        if (cur == top.count) return cur >= 2 ? top.pair : -1;
        heap_pop(L);
        if (cur > 0 && cur < top.count) heap_push(L, (HeapEnt){cur, top.pair});
    }
    return -1;
}

static int pair_get(Learner *L, int a, int b) {
    uint64_t key = pair_key(a, b);
    ptrdiff_t i = hmgeti(L->pair_idx, key);
    if (i >= 0) return L->pair_idx[i].value;
    arrpush(L->pairs, ((Pair){a, b, 0, NULL, 0, 0}));
    int idx = (int)arrlen(L->pairs) - 1;
    hmput(L->pair_idx, key, idx);
    return idx;
}

// Adds df occurrences of the pair starting at node i (and records where it
// is when it grows: only pairs with the new symbol grow during a merge).
static void pair_add(Learner *L, int i, int64_t df) {
    int p = pair_get(L, L->sym[i], L->sym[L->next[i]]);
    L->pairs[p].count += df;
    if (df < 0) return;
    arrpush(L->pairs[p].at, i);
    if (L->pairs[p].stamp != L->stamp) {
        L->pairs[p].stamp = L->stamp;
        arrpush(L->touched, p);
    }
}

static int int_cmp(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

// Merges every occurrence of pair pi into symbol c, left to right within a
// word (so "aaa" becomes "c a"), updating the counts of the neighbouring pairs.
static void apply_merge(Learner *L, int pi, int c) {
    int a = L->pairs[pi].a, b = L->pairs[pi].b;
    int *at = L->pairs[pi].at; // detached: every occurrence goes away now
    L->pairs[pi].at = NULL;
    L->stamp++;
    arrsetlen(L->touched, 0);
    qsort(at, arrlenu(at), sizeof *at, int_cmp); // node order is text order
    for (ptrdiff_t k = 0; k < arrlen(at); k++) {
        int i = at[k], j = L->next[i];
        if ((k > 0 && at[k - 1] == i) || L->sym[i] != a || j < 0 || L->sym[j] != b) continue;
        int64_t f = L->freq[L->word[i]];
        int h = L->prev[i], n = L->next[j];
        if (h >= 0) pair_add(L, h, -f);
        if (n >= 0) pair_add(L, j, -f);
        L->pairs[pi].count -= f;
        L->sym[i] = c;
        L->sym[j] = -1;
        L->next[i] = n;
        if (n >= 0) L->prev[n] = i;
        if (h >= 0) pair_add(L, h, f);
        if (n >= 0) pair_add(L, i, f);
    }
    arrfree(at);
    for (ptrdiff_t k = 0; k < arrlen(L->touched); k++) {
        int p = L->touched[k];
        if (L->pairs[p].count > 0) heap_push(L, (HeapEnt){L->pairs[p].count, p});
    }
}

typedef struct { uint32_t cp; int64_t count; } CharFreq;

static int charfreq_cmp(const void *x, const void *y) {
    const CharFreq *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return (a->cp > b->cp) - (a->cp < b->cp);
}

// Counts the word types (non-raw pieces) of all files.
static int count_words(const char *const *paths, int npaths, StrCount **wc) {
    Piece *pieces = NULL;
    char *key = NULL;
    int rc = NMT_OK;
    for (int f = 0; f < npaths && rc == NMT_OK; f++) {
        size_t len;
        char *text = read_file_text(paths[f], &len);
        if (!text) { rc = err_code() ? err_code() : NMT_ERR_INPUT; break; }
        size_t pos = 0;
        long lineno = 0;
        while (pos < len) {
            const char *nl = memchr(text + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - text) : len;
            lineno++;
            if (pretokenize(text + pos, end - pos, &pieces) >= 0) {
                rc = err_set(NMT_ERR_INPUT, "%s:%ld: invalid UTF-8", paths[f], lineno);
                break;
            }
            for (ptrdiff_t i = 0; i < arrlen(pieces); i++) {
                if (pieces[i].raw) continue;
                piece_key(text + pos, &pieces[i], &key);
                ptrdiff_t at = shgeti(*wc, key);
                if (at >= 0) (*wc)[at].value++;
                else shput(*wc, key, 1);
            }
            pos = end + 1;
        }
        free(text);
    }
    arrfree(pieces);
    arrfree(key);
    return rc;
}

static void learner_free(Learner *L) {
    for (ptrdiff_t i = 0; i < arrlen(L->pairs); i++) arrfree(L->pairs[i].at);
    arrfree(L->pairs);
    hmfree(L->pair_idx);
    arrfree(L->heap);
    arrfree(L->touched);
    free(L->sym);
    free(L->prev);
    free(L->next);
    free(L->word);
    free(L->freq);
}

// Links the symbols of every word type into nodes and counts their pairs.
static void learner_init(Learner *L, Bpe *b, const StrCount *wc, int nwords, size_t nsym) {
    L->b = b;
    L->sym = xmalloc(nsym * sizeof *L->sym);
    L->prev = xmalloc(nsym * sizeof *L->prev);
    L->next = xmalloc(nsym * sizeof *L->next);
    L->word = xmalloc(nsym * sizeof *L->word);
    L->freq = xmalloc((size_t)nwords * sizeof *L->freq);
    int node = 0;
    for (int w = 0; w < nwords; w++) {
        const unsigned char *s = (const unsigned char *)wc[w].key;
        size_t n = strlen(wc[w].key);
        L->freq[w] = wc[w].value;
        int first = node;
        for (size_t i = 0; i < n; node++) {
            uint32_t cp;
            i += (size_t)utf8_next(s + i, n - i, &cp);
            L->sym[node] = lookup_char(b, cp);
            L->word[node] = w;
            L->prev[node] = node == first ? -1 : node - 1;
            L->next[node] = i < n ? node + 1 : -1;
            if (L->prev[node] >= 0) {
                int p = pair_get(L, L->sym[node - 1], L->sym[node]);
                L->pairs[p].count += wc[w].value;
                arrpush(L->pairs[p].at, node - 1);
            }
        }
    }
    for (ptrdiff_t p = 0; p < arrlen(L->pairs); p++) heap_push(L, (HeapEnt){L->pairs[p].count, (int)p});
}

int bpe_learn(Bpe **out, const char *const *paths, int npaths, int vocab_size) {
    *out = NULL;
    if (npaths < 1) return err_set(NMT_ERR_INPUT, "bpe: no input files");
    if (vocab_size > MAX_VOCAB)
        return err_set(NMT_ERR_INPUT, "bpe: vocab size %d is too large (at most %d)", vocab_size, MAX_VOCAB);
    if (vocab_size <= BPE_FIRST_LEARNED)
        return err_set(NMT_ERR_INPUT, "bpe: vocab size %d is too small: the 4 specials and 256 byte "
                       "tokens take %d ids, plus one per character seen", vocab_size, BPE_FIRST_LEARNED);
    StrCount *wc = NULL;
    sh_new_arena(wc);
    int rc = count_words(paths, npaths, &wc);
    if (rc != NMT_OK) { shfree(wc); return rc; }
    int nwords = (int)shlen(wc);
    if (nwords == 0) {
        shfree(wc);
        return err_set(NMT_ERR_INPUT, "%s%s: empty corpus (no words to learn from)", paths[0],
                       npaths > 1 ? " ..." : "");
    }

    // The alphabet: every character seen, most frequent first.
    CpCount *cc = NULL;
    size_t nsym = 0;
    for (int w = 0; w < nwords; w++) {
        const unsigned char *s = (const unsigned char *)wc[w].key;
        size_t n = strlen(wc[w].key);
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += (size_t)utf8_next(s + i, n - i, &cp); // validated by pretokenize
            ptrdiff_t at = hmgeti(cc, cp);
            if (at >= 0) cc[at].value += wc[w].value;
            else hmput(cc, cp, wc[w].value);
            nsym++;
        }
    }
    if (nsym >= INT_MAX) {
        hmfree(cc);
        shfree(wc);
        return err_set(NMT_ERR_INPUT, "bpe: %zu characters in distinct words is too many to learn from "
                       "(at most %d)", nsym, INT_MAX - 1);
    }
    int nchars = (int)hmlen(cc);
    CharFreq *cf = xmalloc((size_t)nchars * sizeof *cf);
    for (int i = 0; i < nchars; i++) cf[i] = (CharFreq){cc[i].key, cc[i].value};
    hmfree(cc);
    qsort(cf, (size_t)nchars, sizeof *cf, charfreq_cmp);
    if (vocab_size < BPE_FIRST_LEARNED + nchars) {
        free(cf);
        shfree(wc);
        return err_set(NMT_ERR_INPUT, "bpe: vocab size %d is too small: 4 specials + 256 bytes + %d "
                       "characters seen in training need at least %d", vocab_size, nchars,
                       BPE_FIRST_LEARNED + nchars);
    }
    Bpe *b = bpe_new();
    for (int i = 0; i < nchars; i++) add_char(b, cf[i].cp);
    free(cf);

    Learner L = {0};
    learner_init(&L, b, wc, nwords, nsym);
    shfree(wc);

    while (b->n < vocab_size) {
        int p = heap_best(&L);
        if (p < 0) break;
        int c = merge_result(b, L.pairs[p].a, L.pairs[p].b);
        if (c < 0) { // cannot happen: pieces never spell "<...>" tokens
            learner_free(&L);
            bpe_free(b);
            return err_set(NMT_ERR_RUNTIME, "bpe: internal error: merge spells a reserved token");
        }
        // A pair re-created through a reused spelling keeps its first rank.
        if (!L.pairs[p].merged) add_merge(b, L.pairs[p].a, L.pairs[p].b, c);
        L.pairs[p].merged = 1;
        apply_merge(&L, p, c);
    }
    learner_free(&L);
    *out = b;
    return NMT_OK;
}

// ---- encoding and decoding ---------------------------------------------------

// A candidate merge of the symbols at nodes i and next[i], as they were when
// it was queued; ordered by rank, then position (leftmost first).
typedef struct { int rank, i, x, y; } Cand;

static int cand_before(Cand p, Cand q) { return p.rank != q.rank ? p.rank < q.rank : p.i < q.i; }

static void cand_push(Cand **heap, Cand c) {
    arrpush(*heap, c);
    Cand *h = *heap;
    for (size_t k = arrlenu(h) - 1; k > 0;) {
        size_t parent = (k - 1) / 2;
        if (!cand_before(h[k], h[parent])) break;
        Cand t = h[k]; h[k] = h[parent]; h[parent] = t;
        k = parent;
    }
}

static Cand cand_pop(Cand *heap) {
    Cand top = heap[0];
    size_t n = arrlenu(heap) - 1;
    heap[0] = heap[n];
    arrsetlen(heap, n);
    for (size_t k = 0;;) {
        size_t l = 2 * k + 1, r = l + 1, best = k;
        if (l < n && cand_before(heap[l], heap[best])) best = l;
        if (r < n && cand_before(heap[r], heap[best])) best = r;
        if (best == k) break;
        Cand t = heap[k]; heap[k] = heap[best]; heap[best] = t;
        k = best;
    }
    return top;
}

static void queue_merge(const Bpe *b, Cand **heap, const int *sym, const int *next, int i) {
    if (i < 0 || next[i] < 0) return;
    MergeInfo m = lookup_merge(b, sym[i], sym[next[i]]);
    if (m.rank != INT_MAX) cand_push(heap, (Cand){m.rank, i, sym[i], sym[next[i]]});
}

// BPE on one piece: repeatedly merge the adjacent pair of lowest rank
// (leftmost on ties). Characters outside the alphabet become byte tokens.
// The symbols form a linked list and the candidates a heap (stale entries
// are skipped), so a piece of n characters takes O(n log n), not O(n^2).
static void encode_piece(const Bpe *b, const char *s, size_t n, int **out) {
    int *sym = NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        int id = cp == MARKER_CP ? b->marker_id : lookup_char(b, cp);
        if (id >= 0) arrpush(sym, id);
        else for (int j = 0; j < k; j++) arrpush(sym, BPE_BYTE0 + (unsigned char)s[i + j]);
        i += (size_t)k;
    }
    int m = (int)arrlen(sym);
    int *link = xmalloc(2 * (size_t)(m ? m : 1) * sizeof *link), *prev = link, *next = link + m;
    Cand *heap = NULL;
    for (int i = 0; i < m; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < m ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < m; i++) queue_merge(b, &heap, sym, next, i);
    while (arrlen(heap) > 0) {
        Cand c = cand_pop(heap);
        int j = next[c.i];
        if (sym[c.i] != c.x || j < 0 || sym[j] != c.y) continue; // changed since queued
        sym[c.i] = lookup_merge(b, c.x, c.y).result;
        sym[j] = -1;
        next[c.i] = next[j];
        if (next[j] >= 0) prev[next[j]] = c.i;
        queue_merge(b, &heap, sym, next, prev[c.i]);
        queue_merge(b, &heap, sym, next, c.i);
    }
    for (int i = 0; i >= 0 && i < m; i = next[i]) arrpush(*out, sym[i]);
    arrfree(sym);
    arrfree(heap);
    free(link);
}

int bpe_encode_prefix(const Bpe *b, const char *line, size_t max, int **ids, int *cut,
                      const char *file, long lineno) {
    *cut = 0;
    size_t base = arrlenu(*ids);
    Piece *pieces = NULL;
    long bad = pretokenize(line, strlen(line), &pieces);
    if (bad >= 0) {
        arrfree(pieces);
        if (file) return err_set(NMT_ERR_INPUT, "%s:%ld: invalid UTF-8", file, lineno);
        return err_set(NMT_ERR_INPUT, "invalid UTF-8 at byte %ld", bad);
    }
    Bpe *memo = (Bpe *)b; // only the cache is written, see struct Bpe
    char *key = NULL;
    int *tmp = NULL;
    for (ptrdiff_t i = 0; i < arrlen(pieces); i++) {
        const Piece *p = &pieces[i];
        if (max && arrlenu(*ids) - base >= max) { *cut = 1; break; } // every piece gives >= 1 id
        if (p->raw) {
            for (size_t j = 0; j < p->len; j++) arrpush(*ids, BPE_BYTE0 + (unsigned char)line[p->start + j]);
            continue;
        }
        size_t n = piece_key(line, p, &key);
        if (n > CACHE_MAX_PIECE) { encode_piece(b, key, n, ids); continue; }
        int found = 0;
#pragma omp critical(bpe_cache)
        {
            int off = lookup_str(memo->cache, key);
            if (off >= 0) {
                found = 1;
                int cnt = memo->cache_ids[off];
                for (int j = 0; j < cnt; j++) arrpush(*ids, memo->cache_ids[off + 1 + j]);
            }
        }
        if (found) continue;
        arrsetlen(tmp, 0);
        encode_piece(b, key, n, &tmp);
#pragma omp critical(bpe_cache)
        {
            if (shlen(memo->cache) < CACHE_MAX_ENTRIES && lookup_str(memo->cache, key) < 0) {
                shput(memo->cache, key, (int)arrlen(memo->cache_ids));
                arrpush(memo->cache_ids, (int)arrlen(tmp));
                for (ptrdiff_t j = 0; j < arrlen(tmp); j++) arrpush(memo->cache_ids, tmp[j]);
            }
        }
        for (ptrdiff_t j = 0; j < arrlen(tmp); j++) arrpush(*ids, tmp[j]);
    }
    if (max && arrlenu(*ids) - base > max) {
        arrsetlen(*ids, base + max);
        *cut = 1;
    }
    arrfree(pieces);
    arrfree(key);
    arrfree(tmp);
    return NMT_OK;
}

int bpe_encode_at(const Bpe *b, const char *line, int **ids, const char *file, long lineno) {
    int cut;
    return bpe_encode_prefix(b, line, 0, ids, &cut, file, lineno);
}

int bpe_encode(const Bpe *b, const char *line, int **ids) { return bpe_encode_at(b, line, ids, NULL, 0); }

char *bpe_decode(const Bpe *b, const int *ids, size_t n) {
    char *out = NULL;
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id < BPE_BYTE0 || id >= b->n) continue;
        if (id < BPE_FIRST_LEARNED) {
            arrpush(out, (char)(id - BPE_BYTE0));
            first = 0;
            continue;
        }
        const char *t = b->tok[id];
        // The dummy space encode put before the line.
        if (first && strncmp(t, MARKER, MARKER_LEN) == 0) t += MARKER_LEN;
        first = 0;
        while (*t) {
            if (strncmp(t, MARKER, MARKER_LEN) == 0) { arrpush(out, ' '); t += MARKER_LEN; }
            else arrpush(out, *t++);
        }
    }
    // Byte tokens a model emits need not form whole UTF-8 sequences: each
    // byte that does not (and NUL, which would end the text) becomes U+FFFD,
    // so what decoding returns is always valid UTF-8 text.
    size_t len = arrlenu(out), o = 0;
    char *s = xmalloc(3 * len + 1);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = utf8_next((const unsigned char *)out + i, len - i, &cp);
        if (k > 0 && cp != 0) {
            memcpy(s + o, out + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(s + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    s[o] = 0;
    arrfree(out);
    return s;
}

// ---- the text model format ---------------------------------------------------
//   nmt-bpe 1
//   size N          total ids
//   chars K         then K lines, one character each, in id order
//   merges M        then M lines "LEFT RIGHT" (token strings), in rank order
//   end

static void put_str(char **buf, const char *s) {
    size_t n = strlen(s);
    memcpy(arraddnptr(*buf, n), s, n);
}

char *bpe_serialize(const Bpe *b, size_t *len) {
    char *buf = NULL, line[64];
    snprintf(line, sizeof line, FORMAT_HEADER "\nsize %d\nchars %d\n", b->n, (int)arrlen(b->chars));
    put_str(&buf, line);
    for (ptrdiff_t i = 0; i < arrlen(b->chars); i++) {
        put_str(&buf, b->tok[BPE_FIRST_LEARNED + i]);
        arrpush(buf, '\n');
    }
    snprintf(line, sizeof line, "merges %d\n", (int)arrlen(b->merges));
    put_str(&buf, line);
    for (ptrdiff_t i = 0; i < arrlen(b->merges); i++) {
        put_str(&buf, b->tok[b->merges[i].a]);
        arrpush(buf, ' ');
        put_str(&buf, b->tok[b->merges[i].b]);
        arrpush(buf, '\n');
    }
    put_str(&buf, "end\n");
    size_t n = arrlenu(buf);
    char *s = xmalloc(n + 1);
    memcpy(s, buf, n);
    s[n] = 0;
    arrfree(buf);
    if (len) *len = n;
    return s;
}

typedef struct {
    const char *buf, *what;
    size_t len, pos;
    long lineno;
    const char *line; // current line, not NUL-terminated
    size_t n;
} Reader;

static int bad_line(const Reader *r, const char *msg) {
    return err_set(NMT_ERR_INPUT, "%s:%ld: %s", r->what, r->lineno, msg);
}

// Reads the next line; checks it is valid UTF-8 without NUL bytes.
static int next_line(Reader *r) {
    r->lineno++;
    if (r->pos >= r->len) return bad_line(r, "unexpected end of BPE model (truncated file?)");
    const char *s = r->buf + r->pos;
    const char *nl = memchr(s, '\n', r->len - r->pos);
    r->line = s;
    r->n = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += r->n + (nl ? 1 : 0);
    if (memchr(s, 0, r->n)) return bad_line(r, "NUL byte in BPE model");
    for (size_t i = 0; i < r->n;) {
        uint32_t cp;
        int k = utf8_next((const unsigned char *)s + i, r->n - i, &cp);
        if (!k) return bad_line(r, "invalid UTF-8");
        i += (size_t)k;
    }
    return NMT_OK;
}

// Parses "NAME <decimal>" with the value in [lo, hi].
static int read_count(Reader *r, const char *name, long lo, long hi, int *out) {
    if (next_line(r)) return NMT_ERR_INPUT;
    size_t k = strlen(name);
    char msg[96];
    if (r->n <= k + 1 || memcmp(r->line, name, k) != 0 || r->line[k] != ' ') {
        snprintf(msg, sizeof msg, "expected '%s N'", name);
        return bad_line(r, msg);
    }
    long v = 0;
    for (size_t i = k + 1; i < r->n; i++) {
        char c = r->line[i];
        if (c < '0' || c > '9' || i - k > 10) {
            snprintf(msg, sizeof msg, "expected '%s N' with N a decimal number", name);
            return bad_line(r, msg);
        }
        v = v * 10 + (c - '0');
    }
    if (v < lo || v > hi) {
        snprintf(msg, sizeof msg, "%s %ld out of range [%ld, %ld]", name, v, lo, hi);
        return bad_line(r, msg);
    }
    *out = (int)v;
    return NMT_OK;
}

static int parse_model(Bpe *b, Reader *r) {
    if (next_line(r)) return NMT_ERR_INPUT;
    if (r->n != strlen(FORMAT_HEADER) || memcmp(r->line, FORMAT_HEADER, r->n) != 0)
        return bad_line(r, "not a BPE model (expected '" FORMAT_HEADER "')");
    int size, nchars, nmerges;
    if (read_count(r, "size", BPE_FIRST_LEARNED + 1, MAX_VOCAB, &size)) return NMT_ERR_INPUT;
    if (read_count(r, "chars", 1, size - BPE_FIRST_LEARNED, &nchars)) return NMT_ERR_INPUT;
    for (int i = 0; i < nchars; i++) {
        if (next_line(r)) return NMT_ERR_INPUT;
        uint32_t cp;
        int k = r->n ? utf8_next((const unsigned char *)r->line, r->n, &cp) : 0;
        if (k == 0 || (size_t)k != r->n) return bad_line(r, "expected exactly one character");
        int cl = char_class(cp);
        if (cl == CL_SPACE || (cl == CL_RAW && cp != MARKER_CP))
            return bad_line(r, "space and control characters cannot be learned symbols");
        if (lookup_char(b, cp) >= 0) return bad_line(r, "duplicate character");
        add_char(b, cp);
    }
    if (b->marker_id < 0) return bad_line(r, "the word marker U+2581 is missing from the characters");
    if (read_count(r, "merges", 0, INT_MAX, &nmerges)) return NMT_ERR_INPUT;
    char *tmp = NULL;
    int rc = NMT_OK;
    for (int i = 0; i < nmerges && rc == NMT_OK; i++) {
        if ((rc = next_line(r))) break;
        const char *sp = memchr(r->line, ' ', r->n);
        if (!sp || sp == r->line || sp + 1 == r->line + r->n || memchr(sp + 1, ' ', (size_t)(r->line + r->n - sp - 1))) {
            rc = bad_line(r, "expected 'LEFT RIGHT'");
            break;
        }
        arrsetlen(tmp, r->n + 1);
        memcpy(tmp, r->line, r->n);
        tmp[r->n] = 0;
        size_t ln = (size_t)(sp - r->line);
        tmp[ln] = 0;
        int x = lookup_str(b->tok_id, tmp), y = lookup_str(b->tok_id, tmp + ln + 1);
        if (x < BPE_FIRST_LEARNED || y < BPE_FIRST_LEARNED) {
            rc = bad_line(r, "merge of a token that is not (yet) a learned symbol");
            break;
        }
        if (lookup_merge(b, x, y).result >= 0) { rc = bad_line(r, "duplicate merge"); break; }
        int c = merge_result(b, x, y);
        if (c < 0) { rc = bad_line(r, "merge result spells a special or byte token"); break; }
        if (b->n > size) { rc = bad_line(r, "more tokens than the declared size"); break; }
        add_merge(b, x, y, c);
    }
    arrfree(tmp);
    if (rc) return rc;
    if (next_line(r)) return NMT_ERR_INPUT;
    if (r->n != 3 || memcmp(r->line, "end", 3) != 0) return bad_line(r, "expected 'end'");
    if (r->pos < r->len) { r->lineno++; return bad_line(r, "unexpected data after 'end'"); }
    if (b->n != size) {
        char msg[96];
        snprintf(msg, sizeof msg, "declared size %d but the model defines %d tokens", size, b->n);
        return bad_line(r, msg);
    }
    return NMT_OK;
}

int bpe_deserialize(Bpe **out, const char *buf, size_t len, const char *what) {
    *out = NULL;
    Reader r = {buf, what ? what : "BPE model", len, 0, 0, NULL, 0};
    Bpe *b = bpe_new();
    int rc = parse_model(b, &r);
    if (rc) { bpe_free(b); return rc; }
    *out = b;
    return NMT_OK;
}

int bpe_save(const Bpe *b, const char *path) {
    size_t len;
    char *s = bpe_serialize(b, &len);
    int rc = write_file_atomic(path, s, len);
    free(s);
    return rc;
}

int bpe_load(Bpe **out, const char *path) {
    *out = NULL;
    size_t len;
    char *s = read_file_text(path, &len);
    if (!s) return err_code() ? err_code() : NMT_ERR_INPUT;
    int rc = bpe_deserialize(out, s, len, path);
    free(s);
    return rc;
}

// ---------------------------------------------------------------------------
// Streams of lines

// One line without its newline; NUL bytes are refused.
static int read_line(FILE *in, const char *name, char **line, size_t *cap, long lineno, int *eof) {
    ssize_t n = getline(line, cap, in);
    if (n < 0) {
        *eof = 1;
        return ferror(in) ? err_set(NMT_ERR_RUNTIME, "bpe: read error on %s", name) : NMT_OK;
    }
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[--n] = 0;
    if (strlen(*line) != (size_t)n) return err_set(NMT_ERR_INPUT, "%s:%ld: NUL byte in line", name, lineno);
    return NMT_OK;
}

// Calls each(b, line, lineno, ids, name, out) for every line of in, with ids
// an emptied scratch array: how encode and decode walk their streams.
typedef int (*LineFn)(const Bpe *b, char *line, long lineno, int **ids, const char *name, FILE *out);
static int each_line(const Bpe *b, FILE *in, FILE *out, const char *name, LineFn each) {
    char *line = NULL;
    size_t cap = 0;
    int *ids = NULL, rc = NMT_OK, eof = 0;
    for (long lineno = 1; rc == NMT_OK; lineno++) {
        if ((rc = read_line(in, name, &line, &cap, lineno, &eof)) || eof) break;
        arrsetlen(ids, 0);
        rc = each(b, line, lineno, &ids, name, out);
    }
    free(line);
    arrfree(ids);
    return rc;
}

static int encode_line(const Bpe *b, char *line, long lineno, int **ids, const char *name, FILE *out) {
    int rc = bpe_encode_at(b, line, ids, name, lineno);
    if (rc) return rc;
    for (ptrdiff_t i = 0; i < arrlen(*ids); i++) {
        if (i) fputc(' ', out);
        fputs(bpe_token(b, (*ids)[i]), out);
    }
    fputc('\n', out);
    return NMT_OK;
}

static int decode_line(const Bpe *b, char *line, long lineno, int **ids, const char *name, FILE *out) {
    for (char *s = line, *tok; (tok = strsep(&s, " ")) != NULL;) {
        if (!*tok) continue;
        int id = bpe_token_id(b, tok);
        if (id < 0) return err_set(NMT_ERR_INPUT, "%s:%ld: unknown token '%.60s'", name, lineno, tok);
        arrpush(*ids, id);
    }
    char *text = bpe_decode(b, *ids, arrlenu(*ids));
    fputs(text, out);
    fputc('\n', out);
    free(text);
    return NMT_OK;
}

int bpe_encode_stream(const Bpe *b, FILE *in, FILE *out, const char *name) {
    return each_line(b, in, out, name, encode_line);
}

int bpe_decode_stream(const Bpe *b, FILE *in, FILE *out, const char *name) {
    return each_line(b, in, out, name, decode_line);
}
