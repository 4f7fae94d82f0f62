// attnmap.c — a translation's cross-attention, drawn (see attnmap.h).
#include "attnmap.h"
#include "attnpng.h"
#include "decode_state.h"
#include "util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

// The chosen output is force-decoded: translate_ids keeps no attention weights.
int attention_map_png(const char *path, Model *m, const Tokenizer *tk, int max_src, const char *line,
                      const DecodeOptions *o, int all_heads) {
    int *src = NULL, *out = NULL;
    int rc = tokenizer_encode(tk, SIDE_SRC, line, &src, "stdin", 1);
    if (rc) return rc;
    if (arrlen(src) > max_src) arrsetlen(src, max_src);
    Hypothesis h = {NULL, 0, 0, 0};
    DecodeOptions one = *o;
    one.nbest = 1;
    translate_ids(m, &src, 1, &one, &h);
    size_t S = (size_t)arrlen(src) + 1, T = (size_t)arrlen(h.ids) + 1, H = (size_t)m->s.heads;
    for (size_t i = 0; i + 1 < S; i++) arrput(out, src[i]);
    arrput(out, TOK_EOS);
    int slen = (int)S;
    DecodeState *d = decode_state_create(m, 1, 1, S, T + 1);
    model_decode_begin(m, d, out, &slen, 1, S);
    float *w = xcalloc(H * T * S, sizeof *w);  // (heads, T, S)
    int tok = TOK_BOS;
    for (size_t t = 0; t < T; t++) {
        model_decode_step(m, d, &tok, t);
        const real *p = model_decode_cross_attention(d);
        for (size_t hh = 0; hh < H; hh++)
            for (size_t j = 0; j < S; j++) w[(hh * T + t) * S + j] = (float)p[hh * S + j];
        if (t + 1 < T) tok = h.ids[t];
    }
    const char **rows = xcalloc(T, sizeof *rows), **cols = xcalloc(S, sizeof *cols);
    for (size_t t = 0; t < T; t++) rows[t] = t + 1 < T ? tokenizer_token(tk, SIDE_TGT, h.ids[t]) : "</s>";
    for (size_t j = 0; j < S; j++) cols[j] = j + 1 < S ? tokenizer_token(tk, SIDE_SRC, src[j]) : "</s>";
    char title[160];
    snprintf(title, sizeof title, "cross-attention, decoder layer %d", m->s.dec_layers);
    if (all_heads) {
        rc = attention_grid_png(path, w, (int)H, (int)T, (int)S, rows, cols, title);
    } else {
        float *avg = xcalloc(T * S, sizeof *avg);
        for (size_t i = 0; i < T * S; i++) {
            double sum = 0;
            for (size_t hh = 0; hh < H; hh++) sum += w[hh * T * S + i];
            avg[i] = (float)(sum / (double)H);
        }
        snprintf(title, sizeof title, "cross-attention, decoder layer %d, mean of %zu heads", m->s.dec_layers, H);
        rc = attention_png(path, avg, (int)T, (int)S, rows, cols, title);
        free(avg);
    }
    free(rows);
    free(cols);
    free(w);
    decode_state_free(d);
    arrfree(h.ids);
    arrfree(src);
    arrfree(out);
    return rc;
}
