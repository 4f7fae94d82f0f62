// model/quant.c — a model's int8 decoding weights (quant.h).
#include "model/quant.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>

int quant_tensor_eligible(const Tensor *t, int *in_out) {
    if (t->rows < 2 || strstr(t->name, ".rel_")) return 0;  // relative position embeddings: small, added, not multiplied
    // Only the embedding tables and the output projection are (out, in).
    *in_out = !(strcmp(t->name, "src_emb") == 0 || strcmp(t->name, "tgt_emb") == 0 || strcmp(t->name, "out_proj") == 0);
    return 1;
}

void quant_tensor_dims(const Tensor *t, int in_out, size_t *n, size_t *k) {
    *n = in_out ? t->cols : t->rows;
    *k = in_out ? t->rows : t->cols;
}

void model_set_quant(Model *m, QTensor *t, size_t n) {
    struct QuantModel *q = xcalloc(1, sizeof *q);
    q->t = t;
    q->n = n;
    for (size_t i = 0; i < n; i++) qmatrix_dequantize(&t[i].q, m->params + m->tensors[t[i].tensor].offset, t[i].in_out);
    m->quant = q;
}

int model_quantize(Model *m, const char *what) {
    size_t count = 0, bad;
    int in_out;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) count += (size_t)quant_tensor_eligible(&m->tensors[i], &in_out);
    QTensor *t = xcalloc(count ? count : 1, sizeof *t);
    size_t j = 0;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *x = &m->tensors[i];
        if (!quant_tensor_eligible(x, &in_out)) continue;
        size_t n, k;
        quant_tensor_dims(x, in_out, &n, &k);
        t[j].tensor = (size_t)i;
        t[j].in_out = in_out;
        if (qmatrix_quantize(&t[j].q, m->params + x->offset, n, k, in_out, &bad)) {
            for (size_t q = 0; q < j; q++) qmatrix_free(&t[q].q);
            free(t);
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s' [%zu, %zu] is not finite: it cannot be quantized", what,
                           x->name, bad / x->cols, bad % x->cols);
        }
        j++;
    }
    model_set_quant(m, t, count);
    return NMT_OK;
}

const QMatrix *model_qmatrix(const Model *m, size_t off) {
    const struct QuantModel *q = m->quant;
    if (!q) return NULL;
    // A few dozen tensors in offset order: a binary search.
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2, o = m->tensors[q->t[mid].tensor].offset;
        if (o == off) return &q->t[mid].q;
        if (o < off) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void model_quant_free(Model *m) {
    struct QuantModel *q = m->quant;
    if (!q) return;
    for (size_t i = 0; i < q->n; i++) qmatrix_free(&q->t[i].q);
    free(q->t);
    free(q);
    m->quant = NULL;
}
