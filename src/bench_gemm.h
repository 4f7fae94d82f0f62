// bench_gemm.h — `nmt bench gemm`: GFLOP/s of gemm() at the model's shapes,
// side by side with OpenBLAS when libopenblas.so.0 can be loaded at run time.
#ifndef NMT_BENCH_GEMM_H
#define NMT_BENCH_GEMM_H

// argv[0] is "gemm"; options: --reps N (timed repetitions per case, median
// reported), --shape MxNxK (only that shape; repeatable). Uses OMP_NUM_THREADS
// threads. Returns 0, or NMT_ERR_INPUT (2) with err_set() on bad arguments.
int cmd_bench_gemm(int argc, char **argv);

#endif
