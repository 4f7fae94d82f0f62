// model/product.c — where the arithmetic of each of the model's matrix
// products is decided: int8 for a weight the model holds in int8 (decoding a
// quantized model), else the model's precision, float or bf16. The layers
// call these and never choose themselves, so the three are cases of one
// mechanism rather than three copies of the layers.
#include "model/internal.h"
#include "model/quant.h"
#include "kernels/gemm.h"

#include <string.h>

const char *precision_name(Precision p) { return p == PRECISION_BF16 ? "bf16" : "fp32"; }

int precision_by_name(const char *name) {
    if (!strcmp(name, "fp32")) return PRECISION_FP32;
    if (!strcmp(name, "bf16")) return PRECISION_BF16;
    return -1;
}

ProductKind product_kind(const Model *m, size_t w) {
    if (m->quant && model_qmatrix(m, w)) return PRODUCT_INT8;
    return m->precision == PRECISION_BF16 ? PRODUCT_BF16 : PRODUCT_FP32;
}

int products_bf16(const Model *m) { return m->precision == PRECISION_BF16; }

void product_linear(const Model *m, real *out, const real *in, size_t w, size_t b, size_t N, size_t K, size_t M,
                    int relu) {
    ProductKind kind = product_kind(m, w);
    if (kind == PRODUCT_INT8) qgemm(out, M, in, K, N, model_qmatrix(m, w), m->params + b, relu);
    else if (relu) linear_relu_forward(out, in, m->params + w, m->params + b, N, K, M, kind == PRODUCT_BF16);
    else linear_forward(out, in, m->params + w, m->params + b, N, K, M, kind == PRODUCT_BF16);
}

void product_logits(const Model *m, const real *y, size_t ldy, size_t n, real *logits) {
    size_t C = (size_t)m->s.d_model, V = (size_t)m->s.tgt_vocab;
    ProductKind kind = product_kind(m, m->out_proj);
    if (kind == PRODUCT_INT8) qgemm(logits, V, y, ldy, n, model_qmatrix(m, m->out_proj), NULL, 0);
    else gemm_call(&(GemmCall){0, 1, n, V, C, 1, y, ldy, m->params + m->out_proj, C, 0, logits, V, NULL, 0,
                               kind == PRODUCT_BF16});
}
