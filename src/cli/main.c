// main.c — subcommand dispatch, argument parsing, exit codes.
// Only this file prints errors and chooses the exit status:
// 0 ok, 1 runtime failure, 2 bad usage / config / input.
#include "average.h"
#include "bench.h"
#include "bench_gemm.h"
#include "checkpoint.h"
#include "cmd_bleu.h"
#include "cmd_bpe.h"
#include "cmd_translate.h"
#include "decode.h"
#include "config.h"
#include "data.h"
#include "train.h"
#include "util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NMT_VERSION "0.1.0"

static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "nmt %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see: nmt %s --help)\n", cmd);
    return NMT_ERR_INPUT;
}

static int finish(int rc) {
    if (rc) fprintf(stderr, "nmt: error: %s\n", err_msg()[0] ? err_msg() : "failed");
    return rc;
}

static const char *TRAIN_HELP =
    "usage: nmt train --config FILE [--set key.path=value ...] [--resume CKPT] [--quiet] [--dry-run]\n"
    "  --config FILE        JSON config (every key is listed in README.md)\n"
    "  --set key=value      override a config key, e.g. --set train.max_steps=200\n"
    "  --resume CKPT        continue from this checkpoint (default: <checkpoint_dir>/last.ckpt if it exists)\n"
    "  --quiet              print only warnings, errors and the final summary\n"
    "  --dry-run            check the config and the data, print the resolved config, the parameter\n"
    "                       count and the memory the run will use; write nothing\n";

static int cmd_train(int argc, char **argv) {
    TrainArgs a;
    memset(&a, 0, sizeof a);
    const char **sets = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(TRAIN_HELP, stdout);
            arrfree(sets);
            return 0;
        }
        if (!strcmp(o, "--quiet")) { a.quiet = 1; continue; }
        if (!strcmp(o, "--dry-run")) { a.dry_run = 1; continue; }
        if (!strcmp(o, "--config") || !strcmp(o, "--set") || !strcmp(o, "--resume")) {
            if (i + 1 >= argc) { arrfree(sets); return usage_error("train", "%s needs a value", o); }
            const char *v = argv[++i];
            if (!strcmp(o, "--config")) a.config_path = v;
            else if (!strcmp(o, "--resume")) a.resume = v;
            else arrput(sets, v);
            continue;
        }
        arrfree(sets);
        return usage_error("train", "unknown option '%s'", o);
    }
    if (!a.config_path) { arrfree(sets); return usage_error("train", "%s", "--config FILE is required"); }
    a.sets = sets;
    a.nset = (int)arrlen(sets);
    int rc = train_run(&a);
    arrfree(sets);
    return finish(rc);
}

static int cmd_info(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: nmt info CHECKPOINT\n  prints the header, sections, config, step and sizes; verifies every checksum\n"
             "  exit status 0 when valid, 2 when corrupt");
        return 0;
    }
    if (argc != 2) return usage_error("info", "%s", "expects exactly one checkpoint file");
    return finish(checkpoint_info(argv[1]));
}

static const char *HELP =
    "nmt — Transformer translation models: train, translate, inspect\n"
    "usage: nmt COMMAND [options]   (nmt COMMAND --help for each)\n"
    "  train       train (or resume) a model from a JSON config\n"
    "  translate   translate stdin to stdout with a checkpoint (greedy or beam search)\n"
    "  eval        translate a file and score it with BLEU and chrF against references\n"
    "  info        describe and verify a checkpoint\n"
    "  average     average the weights of compatible checkpoints\n"
    "  bleu        corpus BLEU (sacreBLEU-compatible) of stdin against a reference file\n"
    "  bpe         learn, apply and undo byte-pair encoding\n"
    "  bench       time training steps on synthetic batches (configs/bench-*.json)\n"
    "  bench gemm  time the matrix product against OpenBLAS\n"
    "  config-keys print every config key with its default (Markdown)\n"
    "  --version   print the version\n";

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

int main(int argc, char **argv) {
    prefer_short_spin(argv);
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
        printf("nmt %s (%s)\n", NMT_VERSION, REAL_NAME);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "translate")) return finish(cmd_translate(argc - 1, argv + 1));
    if (!strcmp(cmd, "eval")) return finish(cmd_eval(argc - 1, argv + 1));
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "average")) return finish(cmd_average(argc - 1, argv + 1));
    if (!strcmp(cmd, "bleu")) return finish(cmd_bleu(argc - 1, argv + 1));
    if (!strcmp(cmd, "bpe")) return finish(cmd_bpe(argc - 1, argv + 1));
    if (!strcmp(cmd, "bench") && argc >= 3 && !strcmp(argv[2], "gemm")) return finish(cmd_bench_gemm(argc - 2, argv + 2));
    if (!strcmp(cmd, "bench")) return finish(cmd_bench(argc - 1, argv + 1));
    if (!strcmp(cmd, "config-keys")) {
        config_print_keys();
        return 0;
    }
    fprintf(stderr, "nmt: unknown command '%s' (see: nmt --help)\n", cmd);
    return NMT_ERR_INPUT;
}
