// main.c — subcommand dispatch, argument parsing, exit codes.
// Only this file prints errors and chooses the exit status:
// 0 ok, 1 runtime failure, 2 bad usage / config / input.
#include "average.h"
#include "bench_gemm.h"
#include "checkpoint.h"
#include "cmd_bleu.h"
#include "cmd_bpe.h"
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
    "usage: nmt train --config FILE [--set key.path=value ...] [--resume CKPT] [--quiet]\n"
    "  --config FILE        JSON config (every key is listed in README.md)\n"
    "  --set key=value      override a config key, e.g. --set train.max_steps=200\n"
    "  --resume CKPT        continue from this checkpoint (default: <checkpoint_dir>/last.ckpt if it exists)\n"
    "  --quiet              print only warnings and errors\n";

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

static const char *TRANSLATE_HELP =
    "usage: nmt translate --checkpoint FILE [options] < SOURCE > TRANSLATION\n"
    "  reads sentences from stdin, one per line, writes one translation per line in order\n"
    "  --checkpoint FILE    a checkpoint written by nmt train (required)\n"
    "  --beam K             beam size; 1 = greedy (default 1)\n"
    "  --alpha A            length penalty ((5+len)/6)^A for beam search (default 0.6)\n"
    "  --nbest N            print N hypotheses per sentence as 'index ||| text ||| score' (default 1)\n"
    "  --batch N            sentences decoded together (default 32); output does not depend on it\n"
    "  --max-len-a A        output length limit A * source length + B (default 1.5)\n"
    "  --max-len-b B        (default 10)\n";

static int parse_num(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) {
        err_set(NMT_ERR_INPUT, "%s %s: '%s' is not a number in [%g, %g]", cmd, opt, v, lo, hi);
        return NMT_ERR_INPUT;
    }
    *out = d;
    return 0;
}

static int cmd_translate(int argc, char **argv) {
    const char *ckpt = NULL;
    DecodeOptions o = decode_defaults();
    double beam = o.beam, batch = o.batch, nbest = 1;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) { fputs(TRANSLATE_HELP, stdout); return 0; }
        if (i + 1 >= argc) return usage_error("translate", "unknown option or missing value: '%s'", opt);
        const char *v = argv[++i];
        int rc = 0;
        double lenb = o.max_len_b;
        if (!strcmp(opt, "--checkpoint")) ckpt = v;
        else if (!strcmp(opt, "--beam")) rc = parse_num("translate", opt, v, 1, 256, &beam);
        else if (!strcmp(opt, "--alpha")) rc = parse_num("translate", opt, v, 0, 10, &o.alpha);
        else if (!strcmp(opt, "--nbest")) rc = parse_num("translate", opt, v, 1, 256, &nbest);
        else if (!strcmp(opt, "--batch")) rc = parse_num("translate", opt, v, 1, 4096, &batch);
        else if (!strcmp(opt, "--max-len-a")) rc = parse_num("translate", opt, v, 0, 100, &o.max_len_a);
        else if (!strcmp(opt, "--max-len-b")) rc = parse_num("translate", opt, v, 0, 10000, &lenb);
        else return usage_error("translate", "unknown option '%s'", opt);
        if (rc) return finish(rc);
        o.max_len_b = (int)lenb;
    }
    if (!ckpt) return usage_error("translate", "%s", "--checkpoint FILE is required");
    if (beam != floor(beam) || nbest != floor(nbest) || batch != floor(batch))
        return finish(err_set(NMT_ERR_INPUT, "translate: --beam, --nbest and --batch take whole numbers"));
    if (nbest > beam) return finish(err_set(NMT_ERR_INPUT, "translate: --nbest (%g) cannot exceed --beam (%g)", nbest, beam));
    o.beam = (int)beam;
    o.nbest = (int)nbest;
    o.batch = (int)batch;
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    int rc = checkpoint_load(ckpt, &c, &t, &m, NULL, &st);
    if (rc) return finish(rc);
    // Read all of stdin first: a bad line is reported before any output.
    char *text = NULL, **lines = NULL;
    rc = read_lines("/dev/stdin", &text, &lines);
    int **src = NULL;
    for (ptrdiff_t i = 0; !rc && i < arrlen(lines); i++) {
        int *ids = NULL;
        rc = tokenizer_encode(&t, SIDE_SRC, lines[i], &ids, "stdin", (long)i + 1);
        if (!rc && arrlen(ids) > c.max_src_len) {
            fprintf(stderr, "nmt: warning: stdin:%td: %td tokens, truncated to data.max_src_len (%d)\n", i + 1,
                    arrlen(ids), c.max_src_len);
            arrsetlen(ids, c.max_src_len);
        }
        arrput(src, ids);
    }
    if (!rc) {
        size_t n = (size_t)arrlen(src), nb = (size_t)o.nbest;
        Hypothesis *out = xcalloc(n * nb + 1, sizeof *out);
        translate_ids(&m, src, n, &o, out);
        for (size_t i = 0; i < n; i++)
            for (size_t h = 0; h < nb; h++) {
                Hypothesis *hy = &out[i * nb + h];
                // Empty input lines give empty output lines.
                char *s = arrlen(src[i]) ? tokenizer_decode(&t, hy->ids, (size_t)arrlen(hy->ids)) : xstrdup("");
                if (nb > 1) printf("%zu ||| %s ||| %.6f\n", i, s, hy->score);
                else puts(s);
                free(s);
                arrfree(hy->ids);
            }
        free(out);
    }
    if (fflush(stdout) != 0 && !rc) rc = err_set(NMT_ERR_RUNTIME, "stdout: write failed");
    for (ptrdiff_t i = 0; i < arrlen(src); i++) arrfree(src[i]);
    arrfree(src);
    arrfree(lines);
    free(text);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
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
    "  translate   translate stdin to stdout with a checkpoint\n"
    "  info        describe and verify a checkpoint\n"
    "  average     average the weights of compatible checkpoints\n"
    "  bleu        corpus BLEU (sacreBLEU-compatible) of stdin against a reference file\n"
    "  bpe         learn, apply and undo byte-pair encoding\n"
    "  bench gemm  time the matrix product against OpenBLAS\n"
    "  config-keys print every config key with its default (Markdown)\n"
    "  --version   print the version\n";

int main(int argc, char **argv) {
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
    if (!strcmp(cmd, "translate")) return cmd_translate(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "average")) return finish(cmd_average(argc - 1, argv + 1));
    if (!strcmp(cmd, "bleu")) return finish(cmd_bleu(argc - 1, argv + 1));
    if (!strcmp(cmd, "bpe")) return finish(cmd_bpe(argc - 1, argv + 1));
    if (!strcmp(cmd, "bench") && argc >= 3 && !strcmp(argv[2], "gemm")) return finish(cmd_bench_gemm(argc - 2, argv + 2));
    if (!strcmp(cmd, "config-keys")) {
        config_print_keys();
        return 0;
    }
    fprintf(stderr, "nmt: unknown command '%s' (see: nmt --help)\n", cmd);
    return NMT_ERR_INPUT;
}
