// text/bpe.h — byte-pair encoding: the subword vocabulary, learned from text and
// applied to lines. The BPE model IS the vocabulary the model sees:
//   ids 0..3        <pad> <unk> <s> </s>
//   ids 4..259      one token per byte value (fallback for unseen characters)
//   ids 260..       learned symbols: the characters seen in training (most
//                   frequent first), then the merge results in merge order.
// Spaces become the marker U+2581 ('▁') at the start of the following word,
// so decode(encode(s)) == s exactly for every valid UTF-8 line.
// Learning is deterministic (ties: higher count, then smaller strings) and
// single-threaded, so it does not depend on OMP_NUM_THREADS.
#ifndef NMT_BPE_H
#define NMT_BPE_H

#include <stddef.h>
#include <stdio.h>
#include "text/tokens.h"

// The byte tokens follow the specials (tokens.h); learned symbols follow the bytes.
enum { BPE_BYTE0 = TOK_SPECIALS, BPE_FIRST_LEARNED = BPE_BYTE0 + 256 };

typedef struct Bpe Bpe;

// Learns a vocabulary of at most vocab_size ids (specials and bytes included)
// from plain-text files, one sentence per line. Stops early when no pair
// occurs twice. Errors: unreadable file, "FILE:LINE: invalid UTF-8", empty
// corpus, vocab_size smaller than 260 + the number of distinct characters.
int bpe_learn(Bpe **out, const char *const *paths, int npaths, int vocab_size);

// Text model file, written atomically; loading checks everything and names
// the file and line of the first problem.
int bpe_save(const Bpe *b, const char *path);
int bpe_load(Bpe **out, const char *path);
// The same text in memory (for checkpoints). serialize returns a malloc'ed,
// NUL-terminated buffer of *len bytes; `what` names the source in errors.
char *bpe_serialize(const Bpe *b, size_t *len);
int bpe_deserialize(Bpe **out, const char *buf, size_t len, const char *what);

int bpe_vocab_size(const Bpe *b);
// Printable, unique, space-free form of an id ("<s>", "<0xAB>", "▁the"), or
// NULL when out of range; bpe_token_id is its inverse (-1 when unknown).
const char *bpe_token(const Bpe *b, int id);
int bpe_token_id(const Bpe *b, const char *token);

// Appends the ids of one line (no newline; no BOS/EOS added) to the stb_ds
// array *ids. Invalid UTF-8 is an NMT_ERR_INPUT error; bpe_encode_at names
// FILE:LINE in it. Safe to call from several threads on one Bpe.
int bpe_encode(const Bpe *b, const char *line, int **ids);
int bpe_encode_at(const Bpe *b, const char *line, int **ids, const char *file, long lineno);
// The first `max` of those ids (max 0: all), without encoding the words past
// them; *cut tells whether any were left out. The whole line is still checked
// for valid UTF-8.
int bpe_encode_prefix(const Bpe *b, const char *line, size_t max, int **ids, int *cut,
                      const char *file, long lineno);
// malloc'ed text of the ids; specials and out-of-range ids are skipped. Always
// valid UTF-8: byte tokens that do not form a whole character (and NUL) give U+FFFD.
char *bpe_decode(const Bpe *b, const int *ids, size_t n);

// Line by line from `in` to `out` (`name` names `in` in errors, "NAME:LINE:
// ..."): encode writes each line's tokens separated by spaces, decode turns
// such lines back into text (its exact inverse). NUL bytes, invalid UTF-8 and
// unknown tokens are NMT_ERR_INPUT; lines before the bad one are written.
int bpe_encode_stream(const Bpe *b, FILE *in, FILE *out, const char *name);
int bpe_decode_stream(const Bpe *b, FILE *in, FILE *out, const char *name);

void bpe_free(Bpe *b);

#endif
