// decode/attnmap.h — the cross-attention of one translation, drawn as a heatmap PNG
// (attnpng.h): the sentence is translated (or its translation is given), then
// its output is force-decoded to record the last decoder layer's
// cross-attention at every output position.
#ifndef NMT_ATTNMAP_H
#define NMT_ATTNMAP_H

#include "decode/search.h"
#include "text/tokenizer.h"

// The last decoder layer's cross-attention of one translation: w (H, T, S)
// for T output positions (the tokens and the final EOS) over S source
// positions (the tokens and EOS); rows and cols name the tokens ("</s>" for EOS).
typedef struct {
    float *w;
    size_t H, T, S;
    const char **rows, **cols;   // point into the tokenizer
} AttnMap;

// Translates `line` with o (n-best ignored; sources longer than max_src tokens
// are cut; what names the input in errors) and force-decodes the output to
// record its weights. Returns NMT_OK or an error recorded with err_set().
int attention_map(AttnMap *a, Model *m, const Tokenizer *tk, int max_src, const char *line, const DecodeOptions *o,
                  const char *what);
// The weights of a translation already decoded: source ids src (src_len,
// without EOS) and output ids out (out_len, without EOS) are force-decoded.
// For a hypothesis of translate_ids on that source this is attention_map's
// second half (the same weights, bit for bit) without decoding it again.
int attention_map_forced(AttnMap *a, Model *m, const Tokenizer *tk, const int *src, size_t src_len, const int *out,
                         size_t out_len);
// The weights averaged over heads, (T, S). Caller frees.
float *attention_map_mean(const AttnMap *a);
void attention_map_free(AttnMap *a);

// attention_map, drawn averaged over heads, or with all_heads a grid of every
// head plus their average, into `path`: source tokens along the top, output
// tokens down the side.
int attention_map_png(const char *path, Model *m, const Tokenizer *tk, int max_src, const char *line,
                      const DecodeOptions *o, int all_heads);

#endif
