// text/tokenizer.c — chooses between word vocabularies and BPE; one serialised form.
#include "text/tokenizer.h"
#include "text/bpe.h"
#include "common/util.h"
#include "text/vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>
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

int tokenizer_encode_prefix(const Tokenizer *t, int side, const char *line, int max, int **ids,
                            int *cut, const char *file, long lineno) {
    size_t limit = max > 0 ? (size_t)max : 0, base = arrlenu(*ids);
    if (t->kind == TOK_BPE) return bpe_encode_prefix(t->bpe, line, limit, ids, cut, file, lineno);
    *cut = 0;
    if (!utf8_valid(line, strlen(line)))
        return err_set(NMT_ERR_INPUT, "%s:%ld: invalid UTF-8", file, lineno);
    vocab_encode(t->vocab[side], line, ids); // linear in the line
    if (limit && arrlenu(*ids) - base > limit) {
        arrsetlen(*ids, base + limit);
        *cut = 1;
    }
    return NMT_OK;
}

int tokenizer_encode(const Tokenizer *t, int side, const char *line, int **ids,
                     const char *file, long lineno) {
    int cut;
    return tokenizer_encode_prefix(t, side, line, 0, ids, &cut, file, lineno);
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

// A decimal size of at most 20 digits, no sign, stopped by `end`; the value
// must fit in size_t. *p advances past `end`. Returns 0 when malformed.
static int read_size(const char **p, const char *lim, char end, size_t *out) {
    const char *s = *p;
    size_t v = 0;
    int digits = 0;
    for (; s < lim && *s >= '0' && *s <= '9'; s++, digits++) {
        size_t d = (size_t)(*s - '0');
        if (digits >= 20 || v > (SIZE_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (digits == 0 || s >= lim || *s != end) return 0;
    *p = s + 1;
    *out = v;
    return 1;
}

// The header "nmt-tokenizer KIND LEN0 LEN1\n", read within the first
// 128 bytes of buf (never past len: the section is not NUL-terminated).
static int read_header(const char *buf, size_t len, char kind[16], size_t *l0, size_t *l1, size_t *hl) {
    static const char PREFIX[] = "nmt-tokenizer ";
    const size_t np = sizeof PREFIX - 1;
    const char *lim = buf + (len < 128 ? len : 128);
    if ((size_t)(lim - buf) <= np || memcmp(buf, PREFIX, np) != 0) return 0;
    const char *p = buf + np;
    size_t k = 0;
    while (p < lim && k < 15 && ((*p >= 'a' && *p <= 'z') || *p == '-')) kind[k++] = *p++;
    kind[k] = 0;
    if (k == 0 || p >= lim || *p++ != ' ') return 0;
    if (!read_size(&p, lim, ' ', l0) || !read_size(&p, lim, '\n', l1)) return 0;
    *hl = (size_t)(p - buf);
    return 1;
}

int tokenizer_deserialize(Tokenizer *t, const char *buf, size_t len, const char *what) {
    memset(t, 0, sizeof *t);
    char kind[16];
    size_t l0, l1, hl;
    // The two parts must fill the section exactly; compared by subtraction,
    // since the lengths are the file's and may be anything up to 2^64 - 1.
    if (!read_header(buf, len, kind, &l0, &l1, &hl) || l0 > len - hl || l1 != len - hl - l0)
        return err_set(NMT_ERR_INPUT, "%s: tokenizer section is malformed (its header's lengths do not add up to the "
                       "section's %zu bytes)", what, len);
    const char *p = buf + hl;
    int word = strcmp(kind, "word") == 0, shared = strcmp(kind, "word-shared") == 0, bpe = strcmp(kind, "bpe") == 0;
    if (!word && !shared && !bpe) return err_set(NMT_ERR_INPUT, "%s: unknown tokenizer kind '%s'", what, kind);
    if (!word && l1 != 0)
        return err_set(NMT_ERR_INPUT, "%s: tokenizer section is malformed (a second part of %zu bytes for kind '%s')",
                       what, l1, kind);
    if (bpe) {
        t->kind = TOK_BPE;
        return bpe_deserialize(&t->bpe, p, l0, what);
    }
    t->kind = TOK_WORD;
    int rc = vocab_deserialize(&t->vocab[0], p, l0, what);
    if (rc) return rc;
    if (shared) {
        t->vocab[1] = t->vocab[0];
        return NMT_OK;
    }
    rc = vocab_deserialize(&t->vocab[1], p + l0, l1, what);
    if (rc) tokenizer_free(t);
    return rc;
}

char *tokenizer_profiles_to_text(const Tokenizer *t, size_t *len) {
    *len = 0;
    if (!t->src_profile || !t->tgt_profile) return NULL;
    char *a = langid_to_text(t->src_profile), *b = langid_to_text(t->tgt_profile), head[64];
    size_t la = strlen(a), lb = strlen(b);
    int hl = snprintf(head, sizeof head, "nmt-langid-pair %zu %zu\n", la, lb);
    char *out = xmalloc((size_t)hl + la + lb + 1);
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, a, la);
    memcpy(out + hl + la, b, lb + 1);
    *len = (size_t)hl + la + lb;
    free(a);
    free(b);
    return out;
}

int tokenizer_profiles_from_text(Tokenizer *t, const char *buf, size_t len, const char *what) {
    static const char PREFIX[] = "nmt-langid-pair ";
    const size_t np = sizeof PREFIX - 1;
    const char *lim = buf + (len < 128 ? len : 128), *p = buf + (len < np ? len : np);
    size_t la, lb;
    // The two parts fill the text exactly (compared by subtraction: the lengths are the file's).
    if (len <= np || memcmp(buf, PREFIX, np) != 0 || !read_size(&p, lim, ' ', &la) || !read_size(&p, lim, '\n', &lb) ||
        la > len - (size_t)(p - buf) || lb != len - (size_t)(p - buf) - la)
        return err_set(NMT_ERR_INPUT, "%s: malformed language profiles (the header \"nmt-langid-pair SRC_LEN TGT_LEN\" "
                       "and two profiles that fill the %zu bytes are expected)", what, len);
    char who[4200];
    snprintf(who, sizeof who, "%s, source profile", what);
    LangProfile *src = langid_from_text(p, la, who);
    if (!src) return err_code();
    snprintf(who, sizeof who, "%s, target profile", what);
    LangProfile *tgt = langid_from_text(p + la, lb, who);
    if (!tgt) {
        langid_free(src);
        return err_code();
    }
    langid_free(t->src_profile);
    langid_free(t->tgt_profile);
    t->src_profile = src;
    t->tgt_profile = tgt;
    return NMT_OK;
}

void tokenizer_free(Tokenizer *t) {
    langid_free(t->src_profile);
    langid_free(t->tgt_profile);
    if (t->vocab[1] != t->vocab[0]) vocab_free(t->vocab[1]);
    vocab_free(t->vocab[0]);
    bpe_free(t->bpe);
    memset(t, 0, sizeof *t);
}
