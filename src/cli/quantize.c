// cli/quantize.c — `nmt quantize`: a float checkpoint in, an int8 deployment
// checkpoint out (quant.h says what is quantized, ckpt_quant.h how it is stored).
#include "cli/cli.h"
#include "cli/options.h"
#include "common/files.h"

#include "io/checkpoint.h"
#include "train/state.h"
#include "model/quant.h"
#include "common/util.h"

#include <stdio.h>
#include <sys/stat.h>

static const char USAGE[] =
    "usage: nmt quantize --checkpoint IN.ckpt --output OUT.ckpt\n"
    "  writes a checkpoint for decoding with int8 weights: every matrix (linear layers,\n"
    "  embeddings, output projection) as int8 with one scale per output; LayerNorm and\n"
    "  biases stay float; no optimizer state. translate and eval load it as any other;\n"
    "  train --resume refuses it.\n";

static double mib(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size / (1024.0 * 1024.0) : 0;
}

static int quantize(const char *in, const char *out) {
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    int rc = train_state_load(in, &c, &t, &m, NULL, &st);
    if (rc) return rc;
    if (m.quant) rc = err_set(NMT_ERR_INPUT, "quantize: %s is already an int8 checkpoint", in);
    else {
        rc = model_quantize(&m, in);
        if (!rc) rc = train_state_save(out, &c, &t, &m, NULL, &st);
        if (!rc)
            printf("nmt: wrote %s: %zu int8 matrices, %.2f MiB (%s: %.2f MiB)\n", out, m.quant->n, mib(out), in, mib(in));
    }
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    return rc;
}

int cli_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    const Option opts[] = {
        {"--checkpoint", OPT_STRING, &in, 0, 0, "IN.ckpt", "a float checkpoint (required)", NULL},
        {"--output", OPT_STRING, &out, 0, 0, "OUT.ckpt", "the int8 checkpoint to write (required)", NULL},
    };
    const OptSpec spec = {"quantize", USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc && (!in || !out)) rc = options_error(&spec, "needs --checkpoint IN and --output OUT");
    if (rc) return options_report(&spec, rc);
    const FileArg input[] = {{"--checkpoint", in}};
    rc = refuse_same_file(&(FileArg){"--output", out}, input, 1);
    return cli_finish(rc ? rc : quantize(in, out));
}
