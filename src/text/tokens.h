// text/tokens.h — token ids: the four special tokens every vocabulary (word or
// BPE) puts first, and how they are spelled. The one definition of both.
#ifndef NMT_TOKENS_H
#define NMT_TOKENS_H

enum { TOK_PAD = 0, TOK_UNK = 1, TOK_BOS = 2, TOK_EOS = 3, TOK_SPECIALS = 4 };

// "<pad>", "<unk>", "<s>", "</s>" for ids 0..3.
static inline const char *token_special(int id) {
    static const char *const spelling[TOK_SPECIALS] = {"<pad>", "<unk>", "<s>", "</s>"};
    return spelling[id];
}

#endif
