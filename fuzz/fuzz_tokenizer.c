// fuzz_tokenizer.c — tokenizer_deserialize (the checkpoint's tokenizer
// section: "nmt-tokenizer KIND L0 L1\n" then word vocabularies (vocab.c) or
// the BPE model (bpe.c)) on arbitrary bytes, not NUL-terminated.
//
// Oracles when accepted: serialize -> deserialize -> serialize is a fixed
// point; encoding a few lines gives in-range ids on both sides; decoding works.
#include "fuzz.h"

#include <stb/stb_ds.h>

#include "text/tokenizer.h"
#include "text/tokens.h"

static const char *const LINES[] = {"", "the cat sat on the mat .", "  a  b ", "\xc3\xa9t\xc3\xa9 \xe2\x96\x81", "<unk> </s>"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = fuzz_memdup(data, size);
    Tokenizer t;
    err_clear();
    if (tokenizer_deserialize(&t, buf, size, "fuzz.tok") == NMT_OK) {
        size_t l1, l2;
        char *s1 = tokenizer_serialize(&t, &l1);
        Tokenizer t2;
        int rc = tokenizer_deserialize(&t2, s1, l1, "round-trip.tok");
        FUZZ_CHECK(rc == NMT_OK, "the serialized tokenizer does not load: %s", err_msg());
        char *s2 = tokenizer_serialize(&t2, &l2);
        FUZZ_CHECK(l1 == l2 && memcmp(s1, s2, l1) == 0, "serialize is not a fixed point");
        free(s1);
        free(s2);
        tokenizer_free(&t2);
        for (int side = 0; side < 2; side++) {
            int V = tokenizer_vocab_size(&t, side);
            FUZZ_CHECK(V > TOK_SPECIALS, "side %d vocab %d", side, V);
            for (size_t i = 0; i < sizeof LINES / sizeof *LINES; i++) {
                int *ids = NULL;
                err_clear();
                rc = tokenizer_encode(&t, side, LINES[i], &ids, "line", 1);
                FUZZ_CHECK(rc == NMT_OK, "encode '%s': %s", LINES[i], err_msg());
                for (ptrdiff_t k = 0; k < arrlen(ids); k++) {
                    FUZZ_CHECK(ids[k] >= 0 && ids[k] < V, "id %d of %d", ids[k], V);
                    FUZZ_CHECK(tokenizer_token(&t, side, ids[k]) != NULL, "token %d", ids[k]);
                }
                if (side == SIDE_TGT) free(tokenizer_decode(&t, ids, (size_t)arrlen(ids)));
                arrfree(ids);
            }
        }
        tokenizer_free(&t);
    } else {
        FUZZ_CHECK(err_code() == NMT_ERR_INPUT && *err_msg(), "failed load: code %d", err_code());
        FUZZ_CHECK(!t.vocab[0] && !t.vocab[1] && !t.bpe, "a failed load left a tokenizer behind");
    }
    err_clear();
    free(buf);
    return 0;
}
