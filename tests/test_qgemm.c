// test_qgemm.c — the int8 product: its integer sums against a 64-bit reference
// (exact, every edge tile, odd K, the largest magnitudes), the AVX2 kernel
// against the portable one, the float result against a double computation
// from the same quantized values, quantization's rounding, and outputs that do
// not depend on the thread count or on the other rows of the batch.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/par.h"
#include "kernels/qgemm.h"
#include "common/util.h"

static uint64_t rng = 1;
static uint32_t next(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}
static int rand_q(void) { return (int)(next() % 255) - 127; }           // -127..127
static real rand_real(void) { return (real)((double)next() / 2147483648.0 - 1.0); }  // -1..1

// A matrix of n outputs x k inputs straight from int8 values (scales 1).
static QMatrix random_qmatrix(size_t n, size_t k, int extreme) {
    int8_t *q = xmalloc(n * k + 1);
    float *s = xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n * k; i++) q[i] = (int8_t)(extreme ? (next() & 1 ? 127 : -127) : rand_q());
    for (size_t j = 0; j < n; j++) s[j] = 1;
    QMatrix m;
    qmatrix_from_int8(&m, q, s, n, k);
    free(q);
    free(s);
    return m;
}

static int8_t *random_rows(size_t M, size_t kp, size_t k, int sign) {
    int8_t *a = xcalloc(M * kp + 1, 1);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < k; j++) a[i * kp + j] = (int8_t)(sign ? 127 * sign : rand_q());
    return a;
}

static const QgemmKernel KERNELS[] = {QGEMM_PORTABLE, QGEMM_AVX2, QGEMM_VNNI, QGEMM_BEST};
static const char *const KERNEL_NAMES[] = {"portable", "avx2", "vnni", "best"};

// Every kernel this build has against 64-bit sums; returns how many ran.
static int expect_exact_sums(size_t M, size_t n, size_t k, int extreme) {
    QMatrix m = random_qmatrix(n, k, extreme);
    int8_t *a = random_rows(M, m.kp, k, extreme);
    int32_t *got = xmalloc(M * n * sizeof *got);
    int64_t *want = xmalloc(M * n * sizeof *want);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < n; j++) {
            want[i * n + j] = 0;
            for (size_t t = 0; t < k; t++) want[i * n + j] += (int64_t)a[i * m.kp + t] * (int64_t)m.q[j * m.kp + t];
        }
    int ran = 0;
    for (int kern = 0; kern < 4; kern++) {
        if (!qgemm_int32(got, a, M, &m, KERNELS[kern])) continue;
        ran++;
        for (size_t i = 0; i < M * n; i++)
            cr_assert_eq((int64_t)got[i], want[i], "%s kernel, M %zu n %zu k %zu at (%zu, %zu)", KERNEL_NAMES[kern], M,
                         n, k, i / n, i % n);
    }
    free(got);
    free(want);
    free(a);
    qmatrix_free(&m);
    return ran;
}

Test(qgemm, integer_sums_are_exact_on_every_edge_tile) {
    rng = 1;
    const size_t Ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13};
    const size_t ns[] = {1, 2, 3, 31, 32, 33, 65};
    const size_t ks[] = {1, 15, 16, 17, 33, 100};
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
            for (size_t c = 0; c < sizeof ks / sizeof *ks; c++)
                cr_assert_geq(expect_exact_sums(Ms[a], ns[b], ks[c], 0), 2, "the portable and the best kernel");
}

Test(qgemm, the_best_kernel_is_one_this_build_has) {
    const char *name = qgemm_kernel_name();
    cr_assert(!strcmp(name, "avx512-vnni") || !strcmp(name, "avx2") || !strcmp(name, "portable"), "%s", name);
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    cr_assert_str_eq(name, "avx512-vnni");
#elif defined(__AVX2__)
    cr_assert_str_eq(name, "avx2");
#endif
}

// The largest products: every term +-127*127; vpmaddubsw would saturate here
// (two terms of 127*127 overflow int16); no kernel may.
Test(qgemm, largest_magnitudes_do_not_saturate) {
    rng = 2;
    expect_exact_sums(5, 3, 4099, 1);
    expect_exact_sums(5, 3, 4099, -1);
    static int8_t w[2 * 4096];
    float sc[2] = {1, 1};
    for (size_t i = 0; i < 4096; i++) w[i] = 127, w[4096 + i] = -127;
    QMatrix m;
    qmatrix_from_int8(&m, w, sc, 2, 4096);
    int8_t *a = random_rows(3, m.kp, 4096, 1);
    for (size_t i = 0; i < 4096; i++) a[2 * m.kp + i] = -127;
    for (int kern = 0; kern < 4; kern++) {
        int32_t acc[6];
        if (!qgemm_int32(acc, a, 3, &m, KERNELS[kern])) continue;
        for (int i = 0; i < 3; i++) {
            int32_t sign = i == 2 ? -1 : 1;
            cr_assert_eq(acc[i * 2], sign * 127 * 127 * 4096, "%s", KERNEL_NAMES[kern]);
            cr_assert_eq(acc[i * 2 + 1], -sign * 127 * 127 * 4096, "%s", KERNEL_NAMES[kern]);
        }
    }
    free(a);
    qmatrix_free(&m);
}

Test(qgemm, values_round_to_nearest_even_and_clamp) {
    cr_assert_eq(quantize_value((real)0.5, 1), 0);
    cr_assert_eq(quantize_value((real)1.5, 1), 2);
    cr_assert_eq(quantize_value((real)-2.5, 1), -2);
    cr_assert_eq(quantize_value((real)126.6, 1), 127);
    cr_assert_eq(quantize_value((real)300, 1), 127);
    cr_assert_eq(quantize_value((real)-300, 1), -127);
}

// No NaN or out-of-range float is ever converted to int8 (undefined
// behaviour: SANITIZE=1 builds with -fsanitize=float-cast-overflow).
Test(qgemm, nan_and_infinity_are_never_cast) {
    cr_assert_eq(quantize_value((real)NAN, 1), 0);
    cr_assert_eq(quantize_value((real)INFINITY, 1), 127);
    cr_assert_eq(quantize_value((real)-INFINITY, 1), -127);
    cr_assert_eq(quantize_value(0, (real)INFINITY), 0);  // 0 * inf is NaN
    real w[6] = {1, 2, 3, NAN, 5, 6};
    QMatrix m;
    size_t bad = 99;
    cr_assert_eq(qmatrix_quantize(&m, w, 2, 3, 0, &bad), NMT_ERR_INPUT);
    cr_assert_eq(bad, 3);
    cr_assert_null(m.q);
    w[3] = INFINITY;
    cr_assert_eq(qmatrix_quantize(&m, w, 2, 3, 1, &bad), NMT_ERR_INPUT);
    cr_assert_eq(bad, 3);
}

// A row whose largest magnitude is so small that 127 / maxabs overflows
// float (below about 3.7e-37) is still quantized in proportion (in double),
// not every value to +-127 and 0 * inf.
Test(qgemm, tiny_rows_quantize_in_proportion) {
    real w[8] = {0x1p-130f, 0x1p-131f, 0, -0x1p-130f, 0x1p-133f, -0x1p-149f, 0x1p-140f, 0};
    QMatrix m;
    size_t bad;
    cr_assert_eq(qmatrix_quantize(&m, w, 1, 8, 0, &bad), NMT_OK);
    const int8_t want[8] = {127, 64, 0, -127, 16, 0, 0, 0};  // 63.5 and 15.875 round to even / nearest
    for (int i = 0; i < 8; i++) cr_assert_eq(m.q[i], want[i], "value %d: %d, want %d", i, m.q[i], want[i]);
    cr_assert_gt(m.scale[0], 0);
    qmatrix_free(&m);
}

// An activation row holding a NaN or an infinity gives NaN outputs (as the
// float product would, so the decoder sees them), not finite numbers made
// from casting NaN; the other rows are unchanged, and a row of tiny values
// (and zeros) stays finite.
Test(qgemm, nonfinite_rows_give_nan_outputs) {
    rng = 6;
    size_t M = 4, n = 20, k = 40;
    real *in = xmalloc(M * k * sizeof *in), *w = xmalloc(n * k * sizeof *w);
    real *out = xmalloc(M * n * sizeof *out), *ref = xmalloc(M * n * sizeof *ref);
    for (size_t i = 0; i < M * k; i++) in[i] = rand_real();
    for (size_t i = 0; i < n * k; i++) w[i] = rand_real();
    QMatrix m;
    size_t bad;
    cr_assert_eq(qmatrix_quantize(&m, w, n, k, 0, &bad), NMT_OK);
    qgemm(ref, n, in, k, M, &m, NULL, 0);
    in[1 * k + 7] = NAN;
    in[2 * k + 3] = INFINITY;
    for (size_t i = 0; i < k; i++) in[3 * k + i] = i % 3 ? (real)0x1p-140f * (real)(i % 5) : 0;
    qgemm(out, n, in, k, M, &m, NULL, 0);
    for (size_t j = 0; j < n; j++) {
        cr_assert_eq(out[j], ref[j], "row 0 changed");
        cr_assert(isnan(out[n + j]), "NaN row: output %zu is %g", j, (double)out[n + j]);
        cr_assert(isnan(out[2 * n + j]), "infinite row: output %zu is %g", j, (double)out[2 * n + j]);
        cr_assert(isfinite(out[3 * n + j]), "tiny row: output %zu is %g", j, (double)out[3 * n + j]);
    }
    qmatrix_free(&m);
    free(in), free(w), free(out), free(ref);
}

// w (k, n) as a linear layer holds it: quantized per output (column) and back.
Test(qgemm, quantized_weights_are_within_half_a_step) {
    rng = 3;
    size_t k = 37, n = 11;
    real *w = xmalloc(k * n * sizeof *w), *back = xmalloc(k * n * sizeof *back);
    for (size_t i = 0; i < k * n; i++) w[i] = rand_real() * (real)(1 + i % n);
    for (size_t i = 0; i < k; i++) w[i * n + 4] = 0;  // a zero output: scale 0
    QMatrix m;
    size_t bad_;
    cr_assert_eq(qmatrix_quantize(&m, w, n, k, 1, &bad_), NMT_OK);
    qmatrix_dequantize(&m, back, 1);
    cr_assert_eq(m.scale[4], 0);
    for (size_t j = 0; j < n; j++) {
        real maxabs = 0;
        for (size_t i = 0; i < k; i++) maxabs = fmax(maxabs, fabs(w[i * n + j]));
        cr_assert_float_eq(m.scale[j], maxabs / 127, 1e-7 * maxabs + 1e-30);
        for (size_t i = 0; i < k; i++)
            cr_assert_leq(fabs(back[i * n + j] - w[i * n + j]), 0.5001 * m.scale[j] + 1e-12, "(%zu, %zu)", i, j);
    }
    qmatrix_free(&m);
    free(w);
    free(back);
}

// out = relu?(quant(in) . w^T scaled + bias) against the same computation in
// double from the quantized values, and close to the float product.
Test(qgemm, float_result_is_the_scaled_exact_sum) {
    rng = 4;
    size_t M = 9, n = 70, k = 53;
    real *in = xmalloc(M * k * sizeof *in), *w = xmalloc(k * n * sizeof *w), *bias = xmalloc(n * sizeof *bias);
    real *out = xmalloc(M * n * sizeof *out);
    for (size_t i = 0; i < M * k; i++) in[i] = rand_real() * 3;
    for (size_t i = 0; i < k * n; i++) w[i] = rand_real();
    for (size_t j = 0; j < n; j++) bias[j] = rand_real();
    for (size_t i = 0; i < k; i++) in[2 * k + i] = 0;  // an all-zero row
    QMatrix m;
    size_t bad_;
    cr_assert_eq(qmatrix_quantize(&m, w, n, k, 1, &bad_), NMT_OK);
    for (int relu = 0; relu < 2; relu++) {
        qgemm(out, n, in, k, M, &m, bias, relu);
        for (size_t i = 0; i < M; i++) {
            double maxabs = 0;
            for (size_t t = 0; t < k; t++) maxabs = fmax(maxabs, fabs(in[i * k + t]));
            real inv = maxabs > 0 ? (real)(127 / (real)maxabs) : 0;
            for (size_t j = 0; j < n; j++) {
                int64_t acc = 0;
                double exact = bias[j];
                for (size_t t = 0; t < k; t++) {
                    acc += (int64_t)quantize_value(in[i * k + t], inv) * m.q[j * m.kp + t];
                    exact += (double)in[i * k + t] * (double)w[t * n + j];
                }
                double want = (double)acc * ((double)(real)(maxabs / 127) * m.scale[j]) + bias[j];
                if (relu && !(want > 0)) want = 0;
                if (relu && exact < 0) exact = 0;
                cr_assert_float_eq(out[i * n + j], want, 1e-5 * (fabs(want) + 1), "(%zu, %zu) relu %d", i, j, relu);
                cr_assert_float_eq(out[i * n + j], exact, 0.05 * (fabs(exact) + 1), "(%zu, %zu): far from float", i, j);
            }
        }
    }
    qmatrix_free(&m);
    free(in);
    free(w);
    free(bias);
    free(out);
}

// 1, 2 and 3 threads, and each row alone: the same bytes.
Test(qgemm, same_bits_for_any_thread_count_and_batch) {
    rng = 5;
    size_t M = 24, n = 301, k = 200;
    real *in = xmalloc(M * k * sizeof *in), *w = xmalloc(n * k * sizeof *w);
    for (size_t i = 0; i < M * k; i++) in[i] = rand_real();
    for (size_t i = 0; i < n * k; i++) w[i] = rand_real();
    QMatrix m;
    size_t bad_;
    cr_assert_eq(qmatrix_quantize(&m, w, n, k, 0, &bad_), NMT_OK);
    double saved = par_min_fmas;
    par_min_fmas = 0;  // split even this product
    real *out[4];
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        out[t] = xmalloc(M * n * sizeof(real));
        qgemm(out[t], n, in, k, M, &m, NULL, 0);
    }
    out[0] = xmalloc(M * n * sizeof(real));
    for (size_t i = 0; i < M; i++) qgemm(out[0] + i * n, n, in + i * k, k, 1, &m, NULL, 0);
    par_min_fmas = saved;
    omp_set_num_threads(2);
    cr_assert(memcmp(out[1], out[2], M * n * sizeof(real)) == 0, "1 vs 2 threads");
    cr_assert(memcmp(out[1], out[3], M * n * sizeof(real)) == 0, "1 vs 3 threads");
    cr_assert(memcmp(out[1], out[0], M * n * sizeof(real)) == 0, "batch vs rows alone");
    for (int t = 0; t < 4; t++) free(out[t]);
    qmatrix_free(&m);
    free(in);
    free(w);
}
