// word_model.h — a word tokenizer built from two small texts (one vocabulary
// per side) and a randomly initialised model of shape s over it (s's
// vocabulary sizes are filled in): the fixture of the translation, scoring and
// serving tests. Needs tmpdir.h's temporary directory.
#ifndef NMT_TEST_WORD_MODEL_H
#define NMT_TEST_WORD_MODEL_H

#include <criterion/criterion.h>
#include <string.h>
#include "model/model.h"
#include "text/tokenizer.h"
#include "text/vocab.h"
#include "tmpdir.h"

static inline void word_model(Tokenizer *t, Model *m, const char *src_text, const char *tgt_text, ModelShape s,
                              uint64_t seed) {
    memset(t, 0, sizeof *t);
    const char *sp = write_tmp("train.src", src_text), *tp = write_tmp("train.tgt", tgt_text);
    t->kind = TOK_WORD;
    cr_assert_eq(vocab_build(&t->vocab[SIDE_SRC], &sp, 1, 1, 0), NMT_OK, "%s", err_msg());
    cr_assert_eq(vocab_build(&t->vocab[SIDE_TGT], &tp, 1, 1, 0), NMT_OK, "%s", err_msg());
    s.src_vocab = tokenizer_vocab_size(t, SIDE_SRC);
    s.tgt_vocab = tokenizer_vocab_size(t, SIDE_TGT);
    cr_assert_eq(model_create(m, &s), NMT_OK, "%s", err_msg());
    model_init_params(m, seed);
}

#endif
