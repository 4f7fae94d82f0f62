// kernels/qgemm.h — the int8 matrix product for decoding (CTranslate2's scheme).
//
// Weights: int8 with one symmetric scale per output (w[j][k] ~ q[j][k] *
// scale[j], q in -127..127), quantized once. Activations: quantized per row as
// they come, also symmetric in -127..127. The products are summed exactly in
// 32-bit integers, then scaled once per output: out[i][j] = acc[i][j] *
// (row_scale[i] * scale[j]) (+ bias[j]) (relu). Exact sums make every output
// independent of the thread count, of the batch it is in and of the kernel
// (AVX2 or portable): the same bits everywhere.
//
// Kernels: with AVX-512 VNNI, vpdpbusd multiplies unsigned by signed bytes
// and sums four products straight into int32 (the activations shifted by +128
// to be unsigned, the shift's share 128 * sum(w) taken off again); with AVX2,
// whose byte multiply (vpmaddubsw) saturates at 16 bits, both operands are
// widened to int16 and vpmaddwd sums pairs exactly into int32. A portable C
// loop does the same sums. All give the same integers, so the same bits.
#ifndef NMT_QGEMM_H
#define NMT_QGEMM_H

#include <stddef.h>
#include <stdint.h>
#include "common/real.h"

typedef struct {
    size_t n, k, kp;   // outputs, inputs, inputs rounded up to QGEMM_KSTEP
    int8_t *q;         // (n, kp): output j's weights in row j, zero after k
    float *scale;      // (n)
    int32_t *colsum;   // (n): the sum of row j's values (for the VNNI kernel's shift)
    int8_t *panels;    // the values again, laid out for the fastest kernel (qgemm.c)
} QMatrix;

enum { QGEMM_KSTEP = 32 };

typedef enum { QGEMM_BEST, QGEMM_PORTABLE, QGEMM_AVX2, QGEMM_VNNI } QgemmKernel;

// Quantizes a float matrix. in_out = 1: w is (k, n), a linear layer's
// (inputs, outputs) weights; in_out = 0: w is (n, k), e.g. an embedding table
// used as the output projection. Rows of zeros get scale 0. A NaN or an
// infinity in w is refused (NMT_ERR_INPUT, *bad its index in w, nothing
// allocated): no value that is not finite is ever converted to an integer.
int qmatrix_quantize(QMatrix *m, const real *w, size_t n, size_t k, int in_out, size_t *bad);
// From stored int8 values (n, k) row-major and scales, as qmatrix_quantize made them.
void qmatrix_from_int8(QMatrix *m, const int8_t *q, const float *scale, size_t n, size_t k);
// The float values it stands for, written back in w's layout (see quantize).
void qmatrix_dequantize(const QMatrix *m, real *w, int in_out);
void qmatrix_free(QMatrix *m);

// One value as the quantizers round it: nearest, ties to even, clamped (NaN: 0).
int8_t quantize_value(real x, real inv_scale);

// out (M, n), row stride ldo = relu?(quant(in) (M, k) . m^T + bias); bias may be NULL.
void qgemm(real *out, size_t ldo, const real *in, size_t ldi, size_t M, const QMatrix *m,
           const real *bias, int relu);

// The exact sums alone, for tests and benchmarks: acc (M, n) = a (M, kp) . m^T
// with a in -127..127 (zero after k), by the given kernel. Returns 0 when this
// build or machine lacks that kernel. qgemm uses QGEMM_BEST, the fastest built.
int qgemm_int32(int32_t *acc, const int8_t *a, size_t M, const QMatrix *m, QgemmKernel kernel);
// The name of the kernel QGEMM_BEST is ("avx512-vnni", "avx2", "portable").
const char *qgemm_kernel_name(void);

#endif
