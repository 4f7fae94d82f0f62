// attnmap.h — the cross-attention of one translation, drawn as a heatmap PNG
// (attnpng.h): the sentence is translated, then its output is force-decoded
// to record the last decoder layer's cross-attention at every output position.
#ifndef NMT_ATTNMAP_H
#define NMT_ATTNMAP_H

#include "decode.h"
#include "tokenizer.h"

// Translates `line` with o (n-best ignored; sources longer than max_src tokens
// are cut) and draws the weights averaged over heads, or with all_heads a grid
// of every head plus their average, into `path`: source tokens along the top,
// output tokens down the side. Returns NMT_OK or an error recorded with err_set().
int attention_map_png(const char *path, Model *m, const Tokenizer *tk, int max_src, const char *line,
                      const DecodeOptions *o, int all_heads);

#endif
