// cli/cli.h — the subcommands of `nmt`, one function each. argv[0] is the
// command's own name ("train", "gemm" for `nmt bench gemm`). Each parses its
// options (options.h), calls the library, prints its results and its errors,
// and returns the exit status: 0 ok, 1 runtime failure, 2 bad usage, config or input.
#ifndef NMT_CLI_H
#define NMT_CLI_H

int cli_train(int argc, char **argv);
int cli_translate(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_average(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_score(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_bleu(int argc, char **argv);
int cli_bpe(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_bench_gemm(int argc, char **argv);
int cli_config_keys(int argc, char **argv);

// A library call's status: when it failed, prints the error it recorded
// ("nmt: error: ..."). Returns rc.
int cli_finish(int rc);

#endif
