// cli/main.c — `nmt`: subcommand dispatch, --help and --version.
// Each subcommand (cli.h) prints its own results and errors and returns the
// exit status: 0 ok, 1 runtime failure, 2 bad usage / config / input.
#include "cli/cli.h"
#include "kernels/gemm.h"
#include "train/comm.h"

#include "common/real.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NMT_VERSION "0.1.0"

int cli_finish(int rc) {
    if (rc) fprintf(stderr, "nmt: error: %s\n", err_msg()[0] ? err_msg() : "failed");
    return rc;
}

static const char *HELP =
    "nmt — Transformer translation models: train, translate, inspect\n"
    "usage: nmt COMMAND [options]   (nmt COMMAND --help for each)\n"
    "  train       train (or resume) a model from a JSON config\n"
    "  translate   translate stdin to stdout with a checkpoint (greedy or beam search)\n"
    "  eval        translate a file and score it with BLEU and chrF against references\n"
    "  info        describe and verify a checkpoint\n"
    "  average     average the weights of compatible checkpoints\n"
    "  quantize    write an int8 checkpoint for fast decoding\n"
    "  score       the log-probability of given translations (forced decoding)\n"
    "  export      write a checkpoint's weights as safetensors (PyTorch names)\n"
    "  import      build a checkpoint from such a file\n"
    "  serve       a translation server over HTTP, with a page to try it\n"
    "  bleu        corpus BLEU (sacreBLEU-compatible) of stdin against a reference file\n"
    "  bpe         learn, apply and undo byte-pair encoding\n"
    "  bench       time training steps on synthetic batches (configs/bench-*.json)\n"
    "  bench gemm  time the matrix product against OpenBLAS\n"
    "  config-keys print every config key with its default (Markdown)\n"
    "  --version   print the version\n";

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} Command;

static const Command COMMANDS[] = {
    {"train", cli_train}, {"translate", cli_translate}, {"eval", cli_eval},
    {"info", cli_info},   {"average", cli_average},     {"quantize", cli_quantize}, {"bleu", cli_bleu},
    {"score", cli_score}, {"export", cli_export}, {"import", cli_import}, {"serve", cli_serve},
    {"bpe", cli_bpe},     {"bench", cli_bench},         {"config-keys", cli_config_keys},
};

// OpenMP threads that spin long while waiting steal the CPU from everything
// else on a shared machine (measured here: beam search 20x slower next to a
// busy process with libgomp's default spinning), and threads that never spin
// pay a wake-up at every parallel region (toy training 18k instead of 22k
// tokens/s). A short spin does best on both counts. Unless the user chose a
// policy, restart once with it: libgomp reads its variables before main().
static void prefer_short_spin(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "20000", 1);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;  // carry on with the default policy
    self[n] = 0;
    execv(self, argv);
}

// NMT_GEMM_KERNEL=portable|avx2|avx512 overrides the kernel nmt chooses
// (benchmarks; every kernel gives the same bits). An unknown or unavailable
// one is refused.
static int choose_gemm_kernel(void) {
    const char *name = getenv("NMT_GEMM_KERNEL");
    if (!name || !*name) return NMT_OK;
    int k = gemm_kernel_by_name(name);
    if (k < 0) return err_set(NMT_ERR_INPUT, "NMT_GEMM_KERNEL=%s: not a kernel (portable, avx2 or avx512)", name);
    if (!gemm_kernel_available((GemmKernel)k))
        return err_set(NMT_ERR_INPUT, "NMT_GEMM_KERNEL=%s: not available on this CPU or build (it has %s)", name,
                       gemm_kernel_name(gemm_kernel()));
    return gemm_use_kernel((GemmKernel)k);
}

// NMT_BF16_KERNEL=portable|avx2|avx512bf16 likewise for the bf16 products.
static int choose_bf16_kernel(void) {
    const char *name = getenv("NMT_BF16_KERNEL");
    if (!name || !*name) return NMT_OK;
    int k = gemm_bf16_kernel_by_name(name);
    if (k < 0)
        return err_set(NMT_ERR_INPUT, "NMT_BF16_KERNEL=%s: not a bf16 kernel (portable, avx2 or avx512bf16)", name);
    if (!gemm_bf16_kernel_available((Bf16Kernel)k))
        return err_set(NMT_ERR_INPUT, "NMT_BF16_KERNEL=%s: not available on this CPU or build (it has %s)", name,
                       gemm_bf16_kernel_name(gemm_bf16_kernel()));
    return gemm_bf16_use_kernel((Bf16Kernel)k);
}

int main(int argc, char **argv) {
    prefer_short_spin(argv);
    if (choose_gemm_kernel() || choose_bf16_kernel()) return cli_finish(NMT_ERR_INPUT);
    if (argc < 2) {
        fputs(HELP, stderr);
        return NMT_ERR_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(HELP, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("nmt %s (%s, %s)\n", NMT_VERSION, REAL_NAME, comm_built_with_mpi() ? "Open MPI" : "without Open MPI");
        return 0;
    }
    if (!strcmp(cmd, "bench") && argc >= 3 && !strcmp(argv[2], "gemm")) return cli_bench_gemm(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(cmd, COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "nmt: unknown command '%s' (see: nmt --help)\n", cmd);
    return NMT_ERR_INPUT;
}
