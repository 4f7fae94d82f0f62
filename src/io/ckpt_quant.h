// io/ckpt_quant.h — the sections of an int8 deployment checkpoint (`nmt
// quantize`), for checkpoint.c. Such a file has config, tokenizer, tensors and
// state like any checkpoint, no optimizer state, and in place of `params`:
//   quant     text: "int8 per-output-symmetric\n", then "name n k\n" for every
//             quantized tensor in table order (n outputs of k inputs each)
//   qweights  int8: each quantized tensor's (n, k) values, row j = output j,
//             back to back, in -127..127
//   qscales   float32: each quantized tensor's n scales (finite, >= 0)
//   fparams   the float values of every other tensor in table order, each
//             rows * cols values without padding
#ifndef NMT_CKPT_QUANT_H
#define NMT_CKPT_QUANT_H

#include "io/ckptfile.h"
#include "model/model.h"

enum { QUANT_SECTIONS = 4 };

// Fills sec[0..3] for m (m->quant set); *owned gets buffers to free after writing.
void quant_sections(const Model *m, CkptSection sec[QUANT_SECTIONS], void *owned[QUANT_SECTIONS]);
// Before the model is allocated: the largest parameter count that the int8
// sections could hold (so a small file cannot make a huge model allocated).
size_t quant_param_bound(const CkptFile *f, size_t ntensors);
// After model_create and the tensor table's check: verifies every int8 section
// against m's tensors and fills m->params and m->quant. NMT_ERR_INPUT "PATH: ...".
int quant_load(const CkptFile *f, Model *m, const char *path);

#endif
