// decode/attnmap.c — a translation's cross-attention, drawn (see attnmap.h).
#include "decode/attnmap.h"
#include "decode/attnpng.h"
#include "model/decode_state.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The chosen output is force-decoded: translate_ids keeps no attention weights.
int attention_map(AttnMap *a, Model *m, const Tokenizer *tk, int max_src, const char *line, const DecodeOptions *o,
                  const char *what) {
    memset(a, 0, sizeof *a);
    int *src = NULL;
    int rc = tokenizer_encode(tk, SIDE_SRC, line, &src, what, 1);
    if (rc) return rc;
    if (arrlen(src) > max_src) arrsetlen(src, max_src);
    Hypothesis h = {NULL, 0, 0, 0};
    DecodeOptions one = *o;
    one.nbest = 1;
    rc = translate_ids(m, &src, 1, &one, &h);
    if (!rc) rc = attention_map_forced(a, m, tk, src, (size_t)arrlen(src), h.ids, (size_t)arrlen(h.ids));
    arrfree(h.ids);
    arrfree(src);
    return rc;
}

int attention_map_forced(AttnMap *a, Model *m, const Tokenizer *tk, const int *src, size_t src_len, const int *out,
                         size_t out_len) {
    memset(a, 0, sizeof *a);
    size_t S = src_len + 1, T = out_len + 1, H = (size_t)m->s.heads;
    int *srce = xmalloc(S * sizeof *srce);  // the source and its EOS
    for (size_t i = 0; i + 1 < S; i++) srce[i] = src[i];
    srce[S - 1] = TOK_EOS;
    int slen = (int)S;
    DecodeState *d = decode_state_create(m, 1, 1, S, T + 1);
    model_decode_begin(m, d, srce, &slen, 1, S);
    float *w = xcalloc(H * T * S, sizeof *w);  // (heads, T, S)
    int tok = TOK_BOS;
    for (size_t t = 0; t < T; t++) {
        model_decode_step(m, d, &tok, t);
        const real *p = model_decode_cross_attention(d);
        for (size_t hh = 0; hh < H; hh++)
            for (size_t j = 0; j < S; j++) w[(hh * T + t) * S + j] = (float)p[hh * S + j];
        if (t + 1 < T) tok = out[t];
    }
    a->rows = xcalloc(T, sizeof *a->rows);
    a->cols = xcalloc(S, sizeof *a->cols);
    for (size_t t = 0; t < T; t++) a->rows[t] = t + 1 < T ? tokenizer_token(tk, SIDE_TGT, out[t]) : "</s>";
    for (size_t j = 0; j < S; j++) a->cols[j] = j + 1 < S ? tokenizer_token(tk, SIDE_SRC, src[j]) : "</s>";
    a->w = w;
    a->H = H, a->T = T, a->S = S;
    decode_state_free(d);
    free(srce);
    return NMT_OK;
}

float *attention_map_mean(const AttnMap *a) {
    size_t n = a->T * a->S;
    float *avg = xcalloc(n ? n : 1, sizeof *avg);
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        for (size_t hh = 0; hh < a->H; hh++) sum += a->w[hh * n + i];
        avg[i] = (float)(sum / (double)a->H);
    }
    return avg;
}

void attention_map_free(AttnMap *a) {
    free(a->w);
    free(a->rows);
    free(a->cols);
    memset(a, 0, sizeof *a);
}

int attention_map_png(const char *path, Model *m, const Tokenizer *tk, int max_src, const char *line,
                      const DecodeOptions *o, int all_heads) {
    AttnMap a;
    int rc = attention_map(&a, m, tk, max_src, line, o, "stdin");
    if (rc) return rc;
    char title[160];
    snprintf(title, sizeof title, "cross-attention, decoder layer %d", m->s.dec_layers);
    if (all_heads) {
        rc = attention_grid_png(path, a.w, (int)a.H, (int)a.T, (int)a.S, a.rows, a.cols, title);
    } else {
        float *avg = attention_map_mean(&a);
        snprintf(title, sizeof title, "cross-attention, decoder layer %d, mean of %zu heads", m->s.dec_layers, a.H);
        rc = attention_png(path, avg, (int)a.T, (int)a.S, a.rows, a.cols, title);
        free(avg);
    }
    attention_map_free(&a);
    return rc;
}
