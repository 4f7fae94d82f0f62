// model/layout.h — the parameter layout of a ModelShape: every tensor in
// checkpoint order with its offset (16-real aligned), shape, weight decay,
// initialisation, nmt's name and the file name it has in fairseq's naming.
// model_create builds its table from this walk, model_param_count counts it
// and io/export.c names the safetensors file's tensors by it.
#ifndef NMT_MODEL_LAYOUT_H
#define NMT_MODEL_LAYOUT_H

#include <stddef.h>
#include "model/model.h"

// What a tensor is (its place in the layer's parameter groups).
typedef enum {
    ROLE_SRC_EMB, ROLE_TGT_EMB, ROLE_OUT_PROJ,
    ROLE_SELF_WQKV, ROLE_SELF_BQKV, ROLE_SELF_WO, ROLE_SELF_BO, ROLE_SELF_REL_K, ROLE_SELF_REL_V,
    ROLE_SELF_LN_W, ROLE_SELF_LN_B,
    ROLE_CROSS_WQ, ROLE_CROSS_BQ, ROLE_CROSS_WKV, ROLE_CROSS_BKV, ROLE_CROSS_WO, ROLE_CROSS_BO,
    ROLE_CROSS_LN_W, ROLE_CROSS_LN_B,
    ROLE_FFN_W1, ROLE_FFN_B1, ROLE_FFN_W2, ROLE_FFN_B2,
    ROLE_ENC_FFN_LN_W, ROLE_ENC_FFN_LN_B, ROLE_DEC_FFN_LN_W, ROLE_DEC_FFN_LN_B,
    ROLE_FINAL_LN_W, ROLE_FINAL_LN_B,
    ROLE_COUNT
} ParamRole;

enum { LAYOUT_NONE = -1, LAYOUT_ENC = 0, LAYOUT_DEC = 1 };  // the stacks (STACK_ENC/STACK_DEC)

typedef struct {
    ParamRole role;
    int stack;            // LAYOUT_ENC / LAYOUT_DEC; LAYOUT_NONE: embeddings, output projection
    int layer;            // -1: outside the layers (embeddings, a stack's final norm)
    size_t index;         // position in the table
    size_t offset;        // into the parameter buffer
    size_t size;          // the reals it takes there: rows * cols rounded up to 16
    size_t rows, cols;    // a linear weight is (in, out)
    int decay;            // weight decay applies
    real init_bound;      // uniform(-b, b); 0 = zeros; <0 = ones
} LayoutTensor;

// Called for each tensor in order; a nonzero return stops the walk and is
// returned by layout_walk.
typedef int (*LayoutVisit)(void *arg, const LayoutTensor *t);

// Walks the tensors of s: the source embedding, the target embedding (not
// when shared), the output projection (not when tied), each encoder layer,
// each decoder layer, the final norms (pre-norm). Every size and offset is
// checked: NMT_ERR_INPUT when they do not fit in size_t (the walk stops
// there; no message is set: the caller names what it was reading); no
// allocation. *nparams (may be NULL) gets the total, padding
// included. The shape's sizes must be at least 1 (model_param_count checks).
int layout_walk(const ModelShape *s, LayoutVisit visit, void *arg, size_t *nparams);

// nmt's name of t ("enc.0.self_attn.wqkv"), as the checkpoint stores it.
void layout_name(const LayoutTensor *t, char *buf, size_t cap);

// How t appears in the exported file (io/export.h): `parts` tensors, part p
// its columns [p cols/parts, (p+1) cols/parts), transposed when `transpose`
// (PyTorch's linear weights are (out, in)); a vector (rows 1) has one
// dimension. names[p]: fairseq's name of part p.
typedef struct {
    char names[3][128];
    int parts, transpose;
} FileNames;
void layout_file_names(const LayoutTensor *t, FileNames *f);

#endif
