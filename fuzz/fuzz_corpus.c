// fuzz_corpus.c — corpus reading and tokenisation: corpus_load on two
// arbitrary files, the batcher over the result, and tokenizer_encode/decode
// per line, with the word vocabulary and the BPE model in fuzz/data/.
//
// Input: one options byte, then the source file, a NUL, the target file.
//   bit 0      tokenizer: 0 word (fuzz/data/word.tok), 1 BPE (fuzz/data/toy.bpe)
//   bits 1..3  max_src_len = max_tgt_len = 0 (no limit) or 4 * value
//   bits 4..7  batch_tokens = 16 * (value + 1)
// Oracles: every kept pair's ids are in range and within the limits; kept +
// skipped = the number of lines; one epoch of batches visits every pair once,
// with BOS/EOS and padding in place; BPE: decode(encode(line)) == line for
// every valid UTF-8 line (bpe.h).
#include "fuzz.h"

#include <stb/stb_ds.h>

#include "text/bpe.h"
#include "data/corpus.h"
#include "text/tokenizer.h"

#ifndef FUZZ_DATA_DIR
#define FUZZ_DATA_DIR "fuzz/data"
#endif

static Tokenizer word, bpe;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    size_t n;
    char *text = read_file_text(FUZZ_DATA_DIR "/word.tok", &n);
    if (!text || tokenizer_deserialize(&word, text, n, "word.tok") != NMT_OK) {
        fprintf(stderr, "fuzz_corpus: %s\n", err_msg());
        abort();
    }
    free(text);
    bpe.kind = TOK_BPE;
    if (bpe_load(&bpe.bpe, FUZZ_DATA_DIR "/toy.bpe") != NMT_OK) {
        fprintf(stderr, "fuzz_corpus: %s\n", err_msg());
        abort();
    }
    return 0;
}

// Lines of a file as read_lines cuts them: '\n' ends a line, a '\r' before it is dropped.
static size_t count_lines(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k + (n > 0 && s[n - 1] != '\n');
}

static void check_lines(const Tokenizer *t, const char *s, size_t n) {
    char *text = fuzz_strndup(s, n);
    for (char *line = text, *next; line && line < text + n; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        next = nl ? nl + 1 : NULL;
        if (nl) {
            *nl = 0;
            if (nl > line && nl[-1] == '\r') nl[-1] = 0;
        }
        for (int side = 0; side < 2; side++) {
            int *ids = NULL;
            err_clear();
            int valid = utf8_valid(line, strlen(line));
            int rc = tokenizer_encode(t, side, line, &ids, "line", 1);
            if (t->kind == TOK_BPE) FUZZ_CHECK((rc == NMT_OK) == valid, "encode rc %d, valid %d", rc, valid);
            int V = tokenizer_vocab_size(t, side);
            for (ptrdiff_t k = 0; rc == NMT_OK && k < arrlen(ids); k++)
                FUZZ_CHECK(ids[k] >= 0 && ids[k] < V, "id %d of %d", ids[k], V);
            if (rc == NMT_OK && side == SIDE_TGT) {
                char *back = tokenizer_decode(t, ids, (size_t)arrlen(ids));
                if (t->kind == TOK_BPE) FUZZ_CHECK(strcmp(back, line) == 0, "decode(encode('%s')) = '%s'", line, back);
                FUZZ_CHECK(utf8_valid(back, strlen(back)) || t->kind == TOK_WORD, "decode gives invalid UTF-8");
                free(back);
            }
            arrfree(ids);
        }
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned opt = data[0];
    const char *src = (const char *)data + 1, *tgt = "";
    size_t ns = size - 1, nt = 0;
    const char *nul = memchr(src, 0, ns);
    if (nul) {
        tgt = nul + 1;
        nt = ns - (size_t)(tgt - src);
        ns = (size_t)(nul - src);
    }
    const Tokenizer *t = opt & 1 ? &bpe : &word;
    int maxlen = 4 * (int)((opt >> 1) & 7);
    size_t batch_tokens = 16 * ((opt >> 4) + 1);

    const char *ps = fuzz_file(0, src, ns), *pt = fuzz_file(1, tgt, nt);
    err_clear();
    Corpus c;
    memset(&c, 0, sizeof c);
    if (corpus_load(&c, t, ps, pt, maxlen, maxlen) == NMT_OK) {
        size_t lines = count_lines(src, ns);
        FUZZ_CHECK(c.n + c.skipped == lines, "kept %zu + skipped %zu != %zu lines", c.n, c.skipped, lines);
        for (size_t i = 0; i < c.n; i++) {
            FUZZ_CHECK(c.src_len[i] > 0 && c.tgt_len[i] > 0, "empty side kept");
            FUZZ_CHECK(!maxlen || (c.src_len[i] <= maxlen && c.tgt_len[i] <= maxlen), "pair over the limit");
            int Vs = tokenizer_vocab_size(t, SIDE_SRC), Vt = tokenizer_vocab_size(t, SIDE_TGT);
            for (int k = 0; k < c.src_len[i]; k++) FUZZ_CHECK(c.ids[c.src_off[i] + k] >= 0 && c.ids[c.src_off[i] + k] < Vs, "src id");
            for (int k = 0; k < c.tgt_len[i]; k++) FUZZ_CHECK(c.ids[c.tgt_off[i] + k] >= 0 && c.ids[c.tgt_off[i] + k] < Vt, "tgt id");
        }
        if (c.n > 0) {
            Batcher b;
            batcher_init(&b, &c, batch_tokens, opt, 1);
            size_t seen = 0;
            for (size_t k = 0; k < b.nbatches; k++) {
                Batch x;
                batcher_next(&b, &c, &x);
                FUZZ_CHECK(x.B > 0 && x.S > 0 && x.T > 0, "empty batch");
                for (size_t r = 0; r < x.B; r++) {
                    FUZZ_CHECK(x.tgt_in[r * x.T] == TOK_BOS, "no BOS");
                    FUZZ_CHECK(x.src_len[r] >= 1 && (size_t)x.src_len[r] <= x.S, "src_len");
                    FUZZ_CHECK(x.src[r * x.S + x.src_len[r] - 1] == TOK_EOS, "no source EOS");
                    FUZZ_CHECK(x.tgt_out[r * x.T + x.tgt_len[r] - 1] == TOK_EOS, "no target EOS");
                }
                seen += x.B;
            }
            FUZZ_CHECK(seen == c.n, "one epoch gave %zu pairs of %zu", seen, c.n);
            batcher_free(&b);
        }
        corpus_free(&c);
    } else {
        FUZZ_CHECK(err_code() == NMT_ERR_INPUT && *err_msg(), "failed load: code %d", err_code());
    }
    check_lines(t, src, ns);
    err_clear();
    return 0;
}
