// data/corpus.c — corpus loading and token-count batching.
#include "data/corpus.h"
#include "common/rng.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

int read_lines(const char *path, char **text, char ***lines) {
    size_t len;
    *lines = NULL;
    *text = read_file_text(path, &len);
    if (!*text) return NMT_ERR_INPUT;
    if (memchr(*text, 0, len)) {
        free(*text);
        *text = NULL;
        return err_set(NMT_ERR_INPUT, "%s: contains a NUL byte (not a text file?)", path);
    }
    char *p = *text, *end = *text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r') stop[-1] = 0;
        *stop = 0;
        arrput(*lines, p);
        p = stop + 1;
    }
    return NMT_OK;
}

int corpus_load(Corpus *c, const Tokenizer *t, const char *src_path, const char *tgt_path,
                int max_src, int max_tgt) {
    memset(c, 0, sizeof *c);
    char *stext = NULL, *ttext = NULL, **sl = NULL, **tl = NULL;
    int rc = read_lines(src_path, &stext, &sl);
    if (!rc) rc = read_lines(tgt_path, &ttext, &tl);
    if (!rc && arrlen(sl) != arrlen(tl))
        rc = err_set(NMT_ERR_INPUT, "%s has %td lines but %s has %td", src_path, arrlen(sl), tgt_path, arrlen(tl));
    if (!rc && arrlen(sl) == 0) rc = err_set(NMT_ERR_INPUT, "%s: no sentences", src_path);
    int *s = NULL, *g = NULL;
    for (ptrdiff_t i = 0; !rc && i < arrlen(sl); i++) {
        arrsetlen(s, 0);
        arrsetlen(g, 0);
        rc = tokenizer_encode(t, SIDE_SRC, sl[i], &s, src_path, (long)i + 1);
        if (!rc) rc = tokenizer_encode(t, SIDE_TGT, tl[i], &g, tgt_path, (long)i + 1);
        if (rc) break;
        int ns = (int)arrlen(s), ng = (int)arrlen(g);
        if (ns == 0 || ng == 0 || (max_src && ns > max_src) || (max_tgt && ng > max_tgt)) {
            c->skipped++;
            continue;
        }
        arrput(c->src_off, (size_t)arrlen(c->ids));
        for (int k = 0; k < ns; k++) arrput(c->ids, s[k]);
        arrput(c->tgt_off, (size_t)arrlen(c->ids));
        for (int k = 0; k < ng; k++) arrput(c->ids, g[k]);
        arrput(c->src_len, ns);
        arrput(c->tgt_len, ng);
        c->n++;
    }
    if (!rc && c->n == 0)
        rc = err_set(NMT_ERR_INPUT, "%s: every pair is empty or over the length limits (%zu skipped)", src_path, c->skipped);
    arrfree(s);
    arrfree(g);
    arrfree(sl);
    arrfree(tl);
    free(stext);
    free(ttext);
    if (rc) corpus_free(c);
    return rc;
}

void corpus_free(Corpus *c) {
    arrfree(c->ids);
    arrfree(c->src_off);
    arrfree(c->tgt_off);
    arrfree(c->src_len);
    arrfree(c->tgt_len);
    memset(c, 0, sizeof *c);
}

static const Corpus *sort_corpus;  // qsort has no context argument
static int by_length(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const Corpus *c = sort_corpus;
    if (c->src_len[x] != c->src_len[y]) return c->src_len[x] - c->src_len[y];
    if (c->tgt_len[x] != c->tgt_len[y]) return c->tgt_len[x] - c->tgt_len[y];
    return x < y ? -1 : x > y;
}

// The batch visiting order of an epoch.
static void epoch_order(const Batcher *b, long epoch, size_t *perm) {
    for (size_t i = 0; i < b->nbatches; i++) perm[i] = i;
    if (!b->shuffle) return;
    uint64_t key = rng_key(b->seed, 0x5417, (uint64_t)epoch);
    for (size_t i = b->nbatches; i > 1; i--) {  // Fisher-Yates
        size_t j = (size_t)(rng_u64(key, i) % i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static void shuffle_epoch(Batcher *b) { epoch_order(b, b->epoch, b->perm); }

void batcher_init(Batcher *b, const Corpus *c, size_t batch_tokens, uint64_t seed, int shuffle) {
    memset(b, 0, sizeof *b);
    b->order = xmalloc(c->n * sizeof *b->order);
    for (size_t i = 0; i < c->n; i++) b->order[i] = i;
    sort_corpus = c;
    qsort(b->order, c->n, sizeof *b->order, by_length);
    // Greedy grouping in length order.
    b->starts = xmalloc((c->n + 1) * sizeof *b->starts);
    size_t i = 0;
    while (i < c->n) {
        b->starts[b->nbatches++] = i;
        size_t S = 0, T = 0, count = 0;
        while (i < c->n) {
            size_t s = (size_t)c->src_len[b->order[i]] + 1, t = (size_t)c->tgt_len[b->order[i]] + 1;
            size_t ns = s > S ? s : S, nt = t > T ? t : T, w = ns > nt ? ns : nt;
            if (count > 0 && (count + 1) * w > batch_tokens) break;
            S = ns;
            T = nt;
            count++;
            i++;
        }
        if (S > b->max_src) b->max_src = S;
        if (T > b->max_tgt) b->max_tgt = T;
        size_t used = count * (S > T ? S : T);
        if (used > b->max_tokens) b->max_tokens = used;
    }
    b->starts[b->nbatches] = c->n;
    b->ntok = xcalloc(b->nbatches, sizeof *b->ntok);
    for (size_t k = 0; k < b->nbatches; k++)
        for (size_t i = b->starts[k]; i < b->starts[k + 1]; i++) b->ntok[k] += (size_t)c->tgt_len[b->order[i]] + 1;
    b->perm = xmalloc(b->nbatches * sizeof *b->perm);
    b->seed = seed;
    b->shuffle = shuffle;
    shuffle_epoch(b);
    size_t cap = b->max_tokens;
    b->src = xmalloc(cap * sizeof(int));
    b->tgt_in = xmalloc(cap * sizeof(int));
    b->tgt_out = xmalloc(cap * sizeof(int));
    b->src_len = xmalloc(cap * sizeof(int));
    b->tgt_len = xmalloc(cap * sizeof(int));
}

void batcher_set_cursor(Batcher *b, long epoch, size_t pos) {
    b->epoch = epoch;
    b->pos = pos;
    shuffle_epoch(b);
}

size_t batcher_peek_ntok(const Batcher *b, size_t k) {
    size_t sum = 0, pos = b->pos, *perm = b->perm, *next = NULL;
    long epoch = b->epoch;
    for (size_t i = 0; i < k && b->nbatches; i++) {
        if (pos >= b->nbatches) {
            if (!next) next = xmalloc(b->nbatches * sizeof *next);
            epoch_order(b, ++epoch, next);
            perm = next;
            pos = 0;
        }
        sum += b->ntok[perm[pos++]];
    }
    free(next);
    return sum;
}

void batcher_skip(Batcher *b) {
    if (b->pos >= b->nbatches) batcher_set_cursor(b, b->epoch + 1, 0);
    b->pos++;
}

void batcher_next(Batcher *b, const Corpus *c, Batch *out) {
    if (b->pos >= b->nbatches) batcher_set_cursor(b, b->epoch + 1, 0);
    size_t k = b->perm[b->pos++];
    size_t lo = b->starts[k], hi = b->starts[k + 1], B = hi - lo, S = 0, T = 0;
    for (size_t i = lo; i < hi; i++) {
        size_t p = b->order[i];
        if ((size_t)c->src_len[p] + 1 > S) S = (size_t)c->src_len[p] + 1;
        if ((size_t)c->tgt_len[p] + 1 > T) T = (size_t)c->tgt_len[p] + 1;
    }
    memset(b->src, 0, B * S * sizeof(int));
    memset(b->tgt_in, 0, B * T * sizeof(int));
    memset(b->tgt_out, 0, B * T * sizeof(int));
    size_t ntok = 0;
    for (size_t r = 0; r < B; r++) {
        size_t p = b->order[lo + r];
        int ns = c->src_len[p], nt = c->tgt_len[p];
        const int *s = c->ids + c->src_off[p], *g = c->ids + c->tgt_off[p];
        memcpy(b->src + r * S, s, (size_t)ns * sizeof(int));
        b->src[r * S + (size_t)ns] = TOK_EOS;
        b->src_len[r] = ns + 1;
        b->tgt_in[r * T] = TOK_BOS;
        memcpy(b->tgt_in + r * T + 1, g, (size_t)nt * sizeof(int));
        memcpy(b->tgt_out + r * T, g, (size_t)nt * sizeof(int));
        b->tgt_out[r * T + (size_t)nt] = TOK_EOS;
        b->tgt_len[r] = nt + 1;
        ntok += (size_t)nt + 1;
    }
    *out = (Batch){B, S, T, b->src, b->src_len, b->tgt_in, b->tgt_out, b->tgt_len, ntok};
}

void batcher_free(Batcher *b) {
    free(b->order);
    free(b->starts);
    free(b->perm);
    free(b->ntok);
    free(b->src);
    free(b->tgt_in);
    free(b->tgt_out);
    free(b->src_len);
    free(b->tgt_len);
    memset(b, 0, sizeof *b);
}
