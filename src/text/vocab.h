// text/vocab.h — word vocabulary: whitespace-separated tokens <-> ids.
// ids 0..3 are <pad> <unk> <s> </s> (tokens.h); words follow, most
// frequent first (ties: byte order), so building is deterministic.
#ifndef NMT_VOCAB_H
#define NMT_VOCAB_H

#include <stddef.h>

typedef struct Vocab Vocab;

// Counts the words of the files; words seen fewer than min_freq times are left
// out, and at most max_size ids are kept (0 = no limit).
int vocab_build(Vocab **out, const char *const *paths, int npaths, int min_freq, int max_size);
int vocab_size(const Vocab *v);
const char *vocab_token(const Vocab *v, int id);
// A word's id: <unk>'s when unknown, and for a special's spelling ("<s>" in a
// text is a word, not the start of a sentence).
int vocab_id(const Vocab *v, const char *word);

// Appends the ids of a line's words to the stb_ds array *ids.
void vocab_encode(const Vocab *v, const char *line, int **ids);
// Words joined by single spaces; specials are skipped. Caller frees.
char *vocab_decode(const Vocab *v, const int *ids, size_t n);

// One word per line; deserialize checks the specials and duplicates.
char *vocab_serialize(const Vocab *v, size_t *len);
int vocab_deserialize(Vocab **out, const char *buf, size_t len, const char *what);
void vocab_free(Vocab *v);

#endif
