// model/quant.h — a model's int8 decoding weights. Every matrix of the model (the
// linear layers, the embeddings and the output projection) becomes a QMatrix
// with one scale per output; LayerNorm, biases and everything else stay float.
// The model's float values of those matrices are replaced by what the int8
// values stand for, so that embedding lookups (and a tied output projection)
// see the same weights as the int8 products.
#ifndef NMT_QUANT_H
#define NMT_QUANT_H

#include "model/model.h"
#include "kernels/qgemm.h"

typedef struct {
    size_t tensor;   // index in the model's tensor table
    int in_out;      // the float layout: (in, out) for linear layers, (out, in) for tables
    QMatrix q;
} QTensor;

struct QuantModel {
    QTensor *t;      // in tensor-table order
    size_t n;
};

// Which tensors are quantized: every matrix (rows > 1). *in_out gets its layout.
int quant_tensor_eligible(const Tensor *t, int *in_out);
// Its outputs n and inputs k in that layout.
void quant_tensor_dims(const Tensor *t, int in_out, size_t *n, size_t *k);
// Quantizes m's float weights (m->quant must be NULL). A weight that is not
// finite is refused (NMT_ERR_INPUT naming what, the tensor and the element;
// m is unchanged): loading checks them, this keeps the cast safe regardless.
int model_quantize(Model *m, const char *what);
// Adopts ready-made quantized tensors (a loaded int8 checkpoint): writes their
// float values into m->params and takes ownership of t (n entries).
void model_set_quant(Model *m, QTensor *t, size_t n);
// The quantized matrix at parameter offset off, or NULL (float model, or a
// tensor that is not quantized).
const QMatrix *model_qmatrix(const Model *m, size_t off);
void model_quant_free(Model *m);

#endif
