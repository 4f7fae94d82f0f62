// tokenizer.c — chooses between word vocabularies and BPE; one serialised form.
#include "tokenizer.h"
#include "bpe.h"
#include "util.h"
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tokenizer_build(Tokenizer *t, const Config *c, int save) {
    memset(t, 0, sizeof *t);
    t->kind = c->tokenizer;
    if (c->tokenizer == TOK_BPE) {
        char path[4096];
        if (c->bpe_model[0]) snprintf(path, sizeof path, "%s", c->bpe_model);
        else snprintf(path, sizeof path, "%s/bpe.model", c->checkpoint_dir);
        struct stat st;
        if (stat(path, &st) == 0) return bpe_load(&t->bpe, path);
        const char *files[2] = {c->train_src, c->train_tgt};
        fprintf(stderr, "nmt: learning BPE (vocab_size %d) from %s and %s\n", c->vocab_size, files[0], files[1]);
        int rc = bpe_learn(&t->bpe, files, 2, c->vocab_size);
        if (rc || !save) return rc;
        if (make_dirs(c->checkpoint_dir)) return err_code();
        rc = bpe_save(t->bpe, path);
        if (!rc) fprintf(stderr, "nmt: BPE model saved to %s\n", path);
        return rc;
    }
    if (c->shared_vocab) {
        const char *files[2] = {c->train_src, c->train_tgt};
        int rc = vocab_build(&t->vocab[0], files, 2, c->min_freq, c->vocab_size);
        t->vocab[1] = t->vocab[0];
        return rc;
    }
    for (int side = 0; side < 2; side++) {
        const char *file = side == 0 ? c->train_src : c->train_tgt;
        int rc = vocab_build(&t->vocab[side], &file, 1, c->min_freq, c->vocab_size);
        if (rc) return rc;
    }
    return NMT_OK;
}

int tokenizer_vocab_size(const Tokenizer *t, int side) {
    return t->kind == TOK_BPE ? bpe_vocab_size(t->bpe) : vocab_size(t->vocab[side]);
}

int tokenizer_encode(const Tokenizer *t, int side, const char *line, int **ids,
                     const char *file, long lineno) {
    if (t->kind == TOK_BPE) return bpe_encode_at(t->bpe, line, ids, file, lineno);
    if (!utf8_valid(line, strlen(line)))
        return err_set(NMT_ERR_INPUT, "%s:%ld: invalid UTF-8", file, lineno);
    vocab_encode(t->vocab[side], line, ids);
    return NMT_OK;
}

const char *tokenizer_token(const Tokenizer *t, int side, int id) {
    const char *s = t->kind == TOK_BPE ? bpe_token(t->bpe, id) : vocab_token(t->vocab[side], id);
    return s ? s : "?";
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n) {
    return t->kind == TOK_BPE ? bpe_decode(t->bpe, ids, n) : vocab_decode(t->vocab[1], ids, n);
}

// Layout: a header line "nmt-tokenizer <kind> <len0> <len1>\n" and the parts.
char *tokenizer_serialize(const Tokenizer *t, size_t *len) {
    size_t l0 = 0, l1 = 0;
    char *p0, *p1 = NULL;
    const char *kind;
    if (t->kind == TOK_BPE) {
        kind = "bpe";
        p0 = bpe_serialize(t->bpe, &l0);
    } else {
        kind = t->vocab[0] == t->vocab[1] ? "word-shared" : "word";
        p0 = vocab_serialize(t->vocab[0], &l0);
        if (t->vocab[0] != t->vocab[1]) p1 = vocab_serialize(t->vocab[1], &l1);
    }
    char head[128];
    int hl = snprintf(head, sizeof head, "nmt-tokenizer %s %zu %zu\n", kind, l0, l1);
    char *out = xmalloc((size_t)hl + l0 + l1 + 1);
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, p0, l0);
    if (p1) memcpy(out + hl + l0, p1, l1);
    out[(size_t)hl + l0 + l1] = 0;
    *len = (size_t)hl + l0 + l1;
    free(p0);
    free(p1);
    return out;
}

int tokenizer_deserialize(Tokenizer *t, const char *buf, size_t len, const char *what) {
    memset(t, 0, sizeof *t);
    char kind[16];
    size_t l0, l1;
    int hl = 0;
    const char *nl = memchr(buf, '\n', len < 128 ? len : 128);
    if (!nl || sscanf(buf, "nmt-tokenizer %15s %zu %zu\n%n", kind, &l0, &l1, &hl) != 3 || hl <= 0 ||
        (size_t)hl + l0 + l1 != len)
        return err_set(NMT_ERR_INPUT, "%s: tokenizer section is malformed", what);
    const char *p = buf + hl;
    if (strcmp(kind, "bpe") == 0) {
        t->kind = TOK_BPE;
        return bpe_deserialize(&t->bpe, p, l0, what);
    }
    t->kind = TOK_WORD;
    int rc = vocab_deserialize(&t->vocab[0], p, l0, what);
    if (rc) return rc;
    if (strcmp(kind, "word-shared") == 0) {
        t->vocab[1] = t->vocab[0];
        return NMT_OK;
    }
    if (strcmp(kind, "word") != 0) {
        tokenizer_free(t);
        return err_set(NMT_ERR_INPUT, "%s: unknown tokenizer kind '%s'", what, kind);
    }
    rc = vocab_deserialize(&t->vocab[1], p + l0, l1, what);
    if (rc) tokenizer_free(t);
    return rc;
}

void tokenizer_free(Tokenizer *t) {
    if (t->vocab[1] != t->vocab[0]) vocab_free(t->vocab[1]);
    vocab_free(t->vocab[0]);
    bpe_free(t->bpe);
    memset(t, 0, sizeof *t);
}
