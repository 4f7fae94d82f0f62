// bench/steps.h — the speed of whole training steps (forward, backward, gradient
// norm, optimizer update) on synthetic batches of a fixed shape (`nmt bench`).
// A bench config is an ordinary config; its data files are never read.
#ifndef NMT_BENCH_H
#define NMT_BENCH_H

#include <stddef.h>
#include "train/comm.h"
#include "common/config.h"
#include "model/model.h"

typedef struct {
    char name[64];  // the config's file name without directory, "bench-" and ".json"
    size_t B, S, T, V;
} BenchShape;

// Parts of a step, timed separately; REDUCE: the sum over processes (mpirun).
enum { BENCH_FWD, BENCH_BWD, BENCH_REDUCE, BENCH_CLIP, BENCH_UPDATE, BENCH_NPHASE };

typedef struct {
    double ms_phase[BENCH_NPHASE];  // medians of each part
    double ms_median, ms_min, ms_max, tok_per_s, gflop_step, gflops, rss_mib, alloc_mib;
    double rss_before_mib;          // resident before the model exists (the program itself)
    double loss_first, loss_last;
    size_t nparams;                 // sum of tensor sizes (without alignment padding)
    int rss_per_config;             // 1 if the peak was reset before this config
    int processes, accum;           // a step: processes x accum micro-batches of the shape
    double mb_reduced;              // MB each process sent per step in the sums over processes
    double shared_frac;             // timed steps that saw other busy processes (par.h)
    Precision precision;            // of the step's products: the config's train.precision
} BenchResult;

// The batch shape from the config's own keys: V = data.vocab_size,
// S = data.max_src_len, T = data.max_tgt_len, B = train.batch_tokens / max(S, T).
// NMT_ERR_INPUT naming `path` when V < 5 or the shape cannot fit in memory.
int bench_shape(BenchShape *sh, const Config *c, const char *path);

// Times o->warmup untimed then o->steps timed training steps (>= 1) on
// random full-length batches, each step o->accum micro-batches of the shape on
// every process of comm (NULL: one process), as training does; GFLOP/s and
// tokens/s count the whole step (all processes); GFLOP/s counts 6 x the
// multiply-adds of the matrix products; peak RSS is VmHWM, reset first when
// the kernel allows it. Uses OMP_NUM_THREADS threads. NMT_ERR_RUNTIME when
// the loss is not finite. The products are the config's train.precision.
typedef struct {
    long steps, warmup;
    int accum;       // micro-batches per process per step
    int no_overlap;  // sum over processes only after the backward pass
} BenchOptions;

int bench_run(const Config *c, const BenchShape *sh, const BenchOptions *o, Comm *comm, BenchResult *r);

#endif
