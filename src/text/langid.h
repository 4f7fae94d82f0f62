// text/langid.h — which language a text is in: character n-gram profiles of
// each side's training text (kept in checkpoints), and a naive-Bayes ranking
// of a text against them (LibreTranslate's "source": "auto" and /detect).
//
// A profile counts the n-grams of 1 to 3 code points of every word padded
// with a space on each side (" the " gives t h e, " t", "th", "he", "e ",
// " th", "the", "he "). A word is a run of letters: anything but ASCII
// digits, punctuation, spaces and controls, U+0080..U+00BF, × and ÷, and
// general punctuation (U+2000..U+206F, U+3000..U+303F); letters are
// lowercased (ASCII, Latin-1, Greek, basic Cyrillic). The LANGID_KEEP most
// frequent n-grams are kept with their counts (ties by bytes), plus, per
// order n, the number of n-grams seen (T_n) and of distinct ones (D_n).
// An n-gram g of order n has probability (count(g) + a) / (T_n + a V_n)
// with a = 0.5 and V = 100, 2000, 40000 for every profile (count 0 when not
// kept; V is the same for every profile so that one of little text does not
// win by the share it gives what it lacks); a text's score is the sum of the
// log probabilities of its n-grams that some profile keeps (one none keeps
// says nothing of the language), and the confidences are the posterior
// under a uniform prior. D_n is kept for the record (and checks).
#ifndef NMT_LANGID_H
#define NMT_LANGID_H

#include <stddef.h>

#define LANGID_KEEP 2000  // n-grams a profile keeps

typedef struct LangProfile LangProfile;

// A profile of the text of n lines (invalid UTF-8 bytes separate words).
LangProfile *langid_build(const char *const *lines, size_t n);

// Serialized as text (a checkpoint section, safetensors metadata) and back:
//   "nmt-langid 1 K\n" "total T1 T2 T3\n" "distinct D1 D2 D3\n"
//   then K lines "COUNT GRAM\n", GRAM with '_' for the padding space,
//   in ascending order of the n-grams' bytes (so one profile has one text).
// langid_from_text checks everything (the text is untrusted) and returns
// NULL with err_set(NMT_ERR_INPUT, "WHAT: ...") when it is malformed.
char *langid_to_text(const LangProfile *p);
LangProfile *langid_from_text(const char *text, size_t len, const char *what);

// For text (any length, possibly empty), each of the n profiles' confidence
// that text is its language, in percent (0..100, summing to 100 when n > 0):
// the posterior under a uniform prior, computed with log-sum-exp. No n-grams
// a profile keeps (empty text, only punctuation, an unknown script): equal
// confidences. Deterministic.
void langid_rank(const LangProfile *const *profiles, size_t n, const char *text, double *confidence);

void langid_free(LangProfile *p);

#endif
