// data/corpus.h — parallel corpus in memory, length-bucketed batches by token count,
// shuffled per epoch with the run's seed, and a resumable cursor.
#ifndef NMT_DATA_H
#define NMT_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "model/batch.h"
#include "text/tokenizer.h"

typedef struct {
    int *ids;                 // stb_ds array: every pair's source then target ids
    size_t *src_off, *tgt_off;
    int *src_len, *tgt_len;   // without BOS/EOS
    size_t n;                 // pairs kept
    size_t skipped;           // pairs over the length limits or empty
} Corpus;

// Reads line-aligned files. Pairs with an empty side or longer than the
// limits (0 = no limit) are skipped and counted. Errors name file and line.
int corpus_load(Corpus *c, const Tokenizer *t, const char *src_path, const char *tgt_path,
                int max_src, int max_tgt);
void corpus_free(Corpus *c);

typedef struct {
    size_t *order;            // pair indices sorted by length
    size_t *starts;           // batch b is order[starts[b] .. starts[b+1])
    size_t nbatches;
    size_t *ntok;             // target tokens (with EOS) of each batch
    size_t *perm;             // batch visiting order of the current epoch
    uint64_t seed;
    int shuffle;
    long epoch;               // cursor: epoch (from 0) and position in perm
    size_t pos;
    // assembly buffers, sized once
    int *src, *src_len, *tgt_in, *tgt_out, *tgt_len;
    size_t max_tokens, max_src, max_tgt;  // largest padded sizes (with BOS/EOS)
} Batcher;

// Groups pairs of similar length so that B * max(S, T) <= batch_tokens,
// where S = source length + 1 (EOS) and T = target length + 1 (BOS / EOS).
void batcher_init(Batcher *b, const Corpus *c, size_t batch_tokens, uint64_t seed, int shuffle);
void batcher_set_cursor(Batcher *b, long epoch, size_t pos);
// Fills `out` (pointing into the batcher's buffers) and advances the cursor.
void batcher_next(Batcher *b, const Corpus *c, Batch *out);
// Moves the cursor past the batch batcher_next would give (another process computes it).
void batcher_skip(Batcher *b);
// The target tokens (Batch.ntok) of the next k batches batcher_next would
// give, across epochs; the cursor does not move.
size_t batcher_peek_ntok(const Batcher *b, size_t k);
void batcher_free(Batcher *b);

// Reads a text file into an stb_ds array of lines (the buffer *text owns them;
// '\r' before '\n' is dropped). Returns NMT_OK or an error naming the file.
int read_lines(const char *path, char **text, char ***lines);

#endif
