// fuzz_bpe.c — bpe_deserialize (the BPE model reader behind bpe_load and the
// checkpoint's tokenizer section) on arbitrary bytes (not NUL-terminated).
//
// Oracles when a model is accepted: serialize -> deserialize -> serialize is
// a fixed point; bpe_token and bpe_token_id are inverse over every id; a few
// fixed lines (and every token's own text) encode to in-range ids and decode
// back to exactly the line (bpe.h: decode(encode(s)) == s for valid UTF-8),
// and bpe_encode_prefix gives a prefix of those ids.
#include "fuzz.h"

#include <stb/stb_ds.h>

#include "text/bpe.h"

static const char *const LINES[] = {
    "", "a", "the cat sat on the mat .", "  two  leading spaces and trailing  ",
    "\xc3\xa9t\xc3\xa9 \xe2\x96\x81marker \xf0\x9f\x98\x80", "tab\there", "<unk> <s> </s> <pad>",
};

static void round_trip(const Bpe *b, const char *line) {
    int *ids = NULL;
    err_clear();
    int rc = bpe_encode(b, line, &ids);
    FUZZ_CHECK(rc == NMT_OK, "encode '%s': %s", line, err_msg());
    int V = bpe_vocab_size(b);
    for (ptrdiff_t i = 0; i < arrlen(ids); i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < V, "encode '%s' gives id %d of %d", line, ids[i], V);
    char *back = bpe_decode(b, ids, (size_t)arrlen(ids));
    FUZZ_CHECK(strcmp(back, line) == 0, "decode(encode('%s')) = '%s'", line, back);
    free(back);
    // A prefix of the ids is what encoding with a limit gives.
    size_t max = (size_t)arrlen(ids) / 2 + 1;
    int *head = NULL, cut;
    rc = bpe_encode_prefix(b, line, max, &head, &cut, "line", 1);
    FUZZ_CHECK(rc == NMT_OK, "encode_prefix '%s': %s", line, err_msg());
    size_t want = max < (size_t)arrlen(ids) ? max : (size_t)arrlen(ids);
    FUZZ_CHECK((size_t)arrlen(head) == want && (!want || memcmp(head, ids, want * sizeof *ids) == 0) &&
                   cut == (want < (size_t)arrlen(ids)),
               "encode_prefix '%s' with max %zu is not the prefix of encode", line, max);
    arrfree(head);
    arrfree(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = fuzz_memdup(data, size);
    Bpe *b = NULL;
    err_clear();
    if (bpe_deserialize(&b, buf, size, "fuzz.bpe") == NMT_OK) {
        FUZZ_CHECK(b != NULL, "no model");
        size_t l1, l2;
        char *s1 = bpe_serialize(b, &l1);
        Bpe *b2 = NULL;
        int rc = bpe_deserialize(&b2, s1, l1, "round-trip.bpe");
        FUZZ_CHECK(rc == NMT_OK, "the serialized model does not load: %s", err_msg());
        char *s2 = bpe_serialize(b2, &l2);
        FUZZ_CHECK(l1 == l2 && memcmp(s1, s2, l1) == 0, "serialize is not a fixed point");
        free(s1);
        free(s2);
        bpe_free(b2);

        int V = bpe_vocab_size(b);
        FUZZ_CHECK(V >= BPE_FIRST_LEARNED, "vocab size %d", V);
        FUZZ_CHECK(bpe_token(b, V) == NULL && bpe_token(b, -1) == NULL, "out-of-range token");
        for (int id = 0; id < V; id++) {
            const char *tok = bpe_token(b, id);
            FUZZ_CHECK(tok && *tok && !strchr(tok, ' '), "token %d", id);
            FUZZ_CHECK(bpe_token_id(b, tok) == id, "token_id(token(%d) = '%s') = %d", id, tok, bpe_token_id(b, tok));
        }
        for (size_t i = 0; i < sizeof LINES / sizeof *LINES; i++) round_trip(b, LINES[i]);
        // Each learned symbol's text ("▁" = a space), which exercises its merges.
        for (int id = BPE_FIRST_LEARNED; id < V && id < BPE_FIRST_LEARNED + 64; id++) {
            const char *tok = bpe_token(b, id);
            char line[256];
            size_t k = 0;
            for (const char *p = tok; *p && k + 2 < sizeof line;) {
                if (strncmp(p, "\xe2\x96\x81", 3) == 0) line[k++] = ' ', p += 3;
                else line[k++] = *p++;
            }
            line[k] = 0;
            if (utf8_valid(line, k)) round_trip(b, line);
        }
        bpe_free(b);
    } else {
        FUZZ_CHECK(b == NULL && err_code() == NMT_ERR_INPUT && *err_msg(), "failed load: code %d", err_code());
    }
    err_clear();
    free(buf);
    return 0;
}
