// text/tokenizer.h — text <-> ids for both sides: word vocabularies or BPE.
#ifndef NMT_TOKENIZER_H
#define NMT_TOKENIZER_H

#include <stddef.h>
#include "common/config.h"
#include "text/langid.h"

typedef struct Vocab Vocab;
typedef struct Bpe Bpe;

enum { SIDE_SRC = 0, SIDE_TGT = 1 };

typedef struct {
    int kind;             // TOK_WORD | TOK_BPE
    Vocab *vocab[2];      // word: per side (the same pointer when shared)
    Bpe *bpe;             // bpe: one joint model for both sides
    // Character n-gram profiles of each side's training text (text/langid.h),
    // for telling which side's language a text is in; both or neither (NULL:
    // a checkpoint from before them). Kept apart from the serialized form
    // above: a checkpoint's "langid" section (tokenizer_profiles_to_text).
    LangProfile *src_profile, *tgt_profile;
} Tokenizer;

// From the config's training data (word), or the BPE model file, learned (and,
// if save, saved) when it does not exist yet.
int tokenizer_build(Tokenizer *t, const Config *c, int save);
int tokenizer_vocab_size(const Tokenizer *t, int side);
// Appends the ids of `line` (no BOS/EOS) to the stb_ds array *ids. Invalid
// UTF-8 is an NMT_ERR_INPUT error naming file:lineno.
int tokenizer_encode(const Tokenizer *t, int side, const char *line, int **ids,
                     const char *file, long lineno);
// The first `max` of those ids (max 0: all); *cut tells whether some were
// left out. BPE does not encode the words past the limit.
int tokenizer_encode_prefix(const Tokenizer *t, int side, const char *line, int max, int **ids,
                            int *cut, const char *file, long lineno);
// Printable form of one token id of a side ("<unk>", "▁Haus", "<0xE2>"), or "?".
const char *tokenizer_token(const Tokenizer *t, int side, int id);
// Target-side text of ids (specials skipped). Caller frees.
char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n);
// One buffer holding everything (stored in checkpoints). Caller frees.
char *tokenizer_serialize(const Tokenizer *t, size_t *len);
int tokenizer_deserialize(Tokenizer *t, const char *buf, size_t len, const char *what);
// The two profiles as one text (a checkpoint's "langid" section, export's
// "nmt.langid" metadata): "nmt-langid-pair SRC_LEN TGT_LEN\n", then the
// source's and the target's langid_to_text. NULL (and *len 0) when the
// tokenizer has no profiles. Caller frees.
char *tokenizer_profiles_to_text(const Tokenizer *t, size_t *len);
// Sets t's profiles from such a text (untrusted; not NUL-terminated): else
// NMT_ERR_INPUT "WHAT: ..." (naming the profile) and t's profiles unchanged.
int tokenizer_profiles_from_text(Tokenizer *t, const char *buf, size_t len, const char *what);
void tokenizer_free(Tokenizer *t);

#endif
