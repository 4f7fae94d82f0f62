// bench.h — `nmt bench`: speed of whole training steps (forward, backward,
// clipping, Adam) on synthetic batches of a fixed shape.
#ifndef NMT_BENCH_H
#define NMT_BENCH_H

// argv[0] is "bench"; options: --config FILE (repeatable; one result per
// config), --steps N (timed steps), --warmup W (untimed steps first), --json
// (only the JSON lines). The batch shape comes from the config's own keys:
// V = data.vocab_size, S = data.max_src_len, T = data.max_tgt_len,
// B = train.batch_tokens / max(S, T). Uses OMP_NUM_THREADS threads.
// Returns 0, or NMT_ERR_INPUT (2) with err_set() on bad arguments or configs.
int cmd_bench(int argc, char **argv);

#endif
