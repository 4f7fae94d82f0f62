// text/vocab.c — word vocabulary with an stb_ds string hash map.
#include "text/vocab.h"
#include "text/tokens.h"
#include "common/util.h"

#include <limits.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *key; int value; } WordId;

struct Vocab {
    char **words;      // stb_ds array: id -> word
    WordId *index;     // stb_ds string map: word -> id
};

static Vocab *vocab_new(void) {
    Vocab *v = xcalloc(1, sizeof *v);
    sh_new_arena(v->index);
    return v;
}

static int vocab_add(Vocab *v, const char *w) {
    int id = (int)arrlen(v->words);
    shput(v->index, w, id);
    arrput(v->words, v->index[shgeti(v->index, w)].key);
    return id;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Calls fn(word, len, ctx) for every whitespace-separated word of line.
static void for_words(const char *line, void (*fn)(const char *, size_t, void *), void *ctx) {
    const char *p = line;
    while (*p) {
        while (*p && is_space(*p)) p++;
        const char *s = p;
        while (*p && !is_space(*p)) p++;
        if (p > s) fn(s, (size_t)(p - s), ctx);
    }
}

typedef struct { char *key; long value; } WordCount;

// The word w[0..n) as a C string: in `stack` when it fits, else in a heap
// buffer the caller frees (no word is cut: a cut could split a UTF-8
// character, and two long words would count as one).
static char *word_str(const char *w, size_t n, char *stack, size_t cap) {
    char *buf = n < cap ? stack : xmalloc(n + 1);
    memcpy(buf, w, n);
    buf[n] = 0;
    return buf;
}

static void count_word(const char *w, size_t n, void *ctx) {
    WordCount **counts = ctx;
    char stack[1024];
    char *buf = word_str(w, n, stack, sizeof stack);
    long c = shget(*counts, buf);
    shput(*counts, buf, c + 1);
    if (buf != stack) free(buf);
}

typedef struct { const char *w; long c; } Entry;
static int by_count(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->c != y->c) return x->c > y->c ? -1 : 1;
    return strcmp(x->w, y->w);
}

int vocab_build(Vocab **out, const char *const *paths, int npaths, int min_freq, int max_size) {
    *out = NULL;
    WordCount *counts = NULL;
    sh_new_arena(counts);
    shdefault(counts, 0);
    for (int f = 0; f < npaths; f++) {
        char *text = read_file_text(paths[f], NULL);
        if (!text) {
            shfree(counts);
            return NMT_ERR_INPUT;
        }
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            for_words(line, count_word, &counts);
        free(text);
    }
    size_t n = (size_t)shlen(counts);
    Entry *e = xmalloc((n ? n : 1) * sizeof *e);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int special = 0;
        for (int s = 0; s < TOK_SPECIALS; s++) special |= strcmp(counts[i].key, token_special(s)) == 0;
        if (!special && counts[i].value >= min_freq) e[k++] = (Entry){counts[i].key, counts[i].value};
    }
    qsort(e, k, sizeof *e, by_count);
    Vocab *v = vocab_new();
    for (int s = 0; s < TOK_SPECIALS; s++) vocab_add(v, token_special(s));
    for (size_t i = 0; i < k && (max_size <= 0 || (int)arrlen(v->words) < max_size); i++) vocab_add(v, e[i].w);
    free(e);
    shfree(counts);
    // A vocabulary of specials alone could not be loaded back from a checkpoint.
    if (vocab_size(v) == TOK_SPECIALS) {
        vocab_free(v);
        if (n == 0)
            return err_set(NMT_ERR_INPUT, "%s%s: no words: the files hold no sentences", npaths ? paths[0] : "(no files)",
                           npaths > 1 ? " and the other files" : "");
        return err_set(NMT_ERR_INPUT, "%s%s: no word is left in the vocabulary (min_freq %d, size limit %d, "
                       "specials included): lower data.min_freq or raise data.vocab_size",
                       npaths ? paths[0] : "(no files)", npaths > 1 ? " and the other files" : "", min_freq, max_size);
    }
    *out = v;
    return NMT_OK;
}

int vocab_size(const Vocab *v) { return (int)arrlen(v->words); }

const char *vocab_token(const Vocab *v, int id) {
    return id >= 0 && id < (int)arrlen(v->words) ? v->words[id] : NULL;
}

int vocab_id(const Vocab *v, const char *word) {
    WordId *index = v->index;  // stb_ds look-ups write through the map pointer
    ptrdiff_t i = shgeti(index, word);
    // A special's spelling in a text ("<s>", "</s>", "<pad>") is a word like any
    // other, and not one of the vocabulary's (building skips it): unknown.
    return i < 0 || index[i].value < TOK_SPECIALS ? TOK_UNK : index[i].value;
}

typedef struct { const Vocab *v; int **ids; } EncodeCtx;
static void encode_word(const char *w, size_t n, void *ctx) {
    EncodeCtx *c = ctx;
    char stack[1024];
    char *buf = word_str(w, n, stack, sizeof stack);
    arrput(*c->ids, vocab_id(c->v, buf));
    if (buf != stack) free(buf);
}

void vocab_encode(const Vocab *v, const char *line, int **ids) {
    EncodeCtx c = {v, ids};
    for_words(line, encode_word, &c);
}

char *vocab_decode(const Vocab *v, const int *ids, size_t n) {
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        if (ids[i] > TOK_EOS && ids[i] < vocab_size(v)) len += strlen(v->words[ids[i]]) + 1;
    // <unk> is shown, so a reader sees that a word was not known.
    len += 6 * n;
    char *s = xmalloc(len), *p = s;
    *p = 0;
    for (size_t i = 0; i < n; i++) {
        const char *w = NULL;
        if (ids[i] == TOK_UNK) w = token_special(TOK_UNK);
        else if (ids[i] > TOK_EOS && ids[i] < vocab_size(v)) w = v->words[ids[i]];
        if (!w) continue;
        if (p != s) *p++ = ' ';
        size_t wl = strlen(w);
        memcpy(p, w, wl);
        p += wl;
        *p = 0;
    }
    return s;
}

char *vocab_serialize(const Vocab *v, size_t *len) {
    size_t n = 1;
    for (int i = 0; i < vocab_size(v); i++) n += strlen(v->words[i]) + 1;
    char *s = xmalloc(n), *p = s;
    for (int i = 0; i < vocab_size(v); i++) {
        size_t wl = strlen(v->words[i]);
        memcpy(p, v->words[i], wl);
        p += wl;
        *p++ = '\n';
    }
    *p = 0;
    *len = (size_t)(p - s);
    return s;
}

int vocab_deserialize(Vocab **out, const char *buf, size_t len, const char *what) {
    *out = NULL;
    Vocab *v = vocab_new();
    size_t i = 0;
    int line = 0;
    while (i < len) {
        // Ids are ints: a section of more lines than that is not a vocabulary.
        if (line == INT_MAX - 1) {
            vocab_free(v);
            return err_set(NMT_ERR_INPUT, "%s: vocabulary has too many lines", what);
        }
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t j = nl ? (size_t)(nl - buf) : len;
        line++;
        // No length limit: vocab_build keeps long words whole.
        size_t wl = j - i;
        if (j >= len || wl == 0 || memchr(buf + i, ' ', wl) || memchr(buf + i, 0, wl)) {
            vocab_free(v);
            return err_set(NMT_ERR_INPUT, "%s: vocabulary line %d is malformed", what, line);
        }
        char stack[1024], *word = wl < sizeof stack ? stack : xmalloc(wl + 1);
        memcpy(word, buf + i, wl);
        word[wl] = 0;
        if ((line <= TOK_SPECIALS && strcmp(word, token_special(line - 1)) != 0) || shgeti(v->index, word) >= 0) {
            vocab_free(v);
            err_set(NMT_ERR_INPUT, "%s: vocabulary line %d ('%.80s%s') is wrong or repeated", what, line, word,
                    wl > 80 ? "..." : "");
            if (word != stack) free(word);
            return NMT_ERR_INPUT;
        }
        vocab_add(v, word);
        if (word != stack) free(word);
        i = j + 1;
    }
    if (vocab_size(v) < 5) {
        vocab_free(v);
        return err_set(NMT_ERR_INPUT, "%s: vocabulary has no words", what);
    }
    *out = v;
    return NMT_OK;
}

void vocab_free(Vocab *v) {
    if (!v) return;
    arrfree(v->words);
    shfree(v->index);
    free(v);
}
