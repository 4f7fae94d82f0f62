// cli/export.c — `nmt export` and `nmt import`: a checkpoint's weights as safetensors, and back.
#include "cli/cli.h"
#include "cli/options.h"
#include "common/files.h"

#include "io/export.h"
#include "train/import.h"

#include <string.h>

static const char EXPORT_USAGE[] =
    "usage: nmt export --checkpoint FILE [--format safetensors] --output OUT.safetensors\n"
    "  writes the model's weights (the moving average when the run kept one) with fairseq's\n"
    "  tensor names (encoder.layers.0.self_attn.q_proj.weight, ...), linear weights (out, in),\n"
    "  and the config, vocabulary and step in the header's __metadata__ (README: Files)\n";

static const char IMPORT_USAGE[] =
    "usage: nmt import --input FILE.safetensors [--config CONFIG.json] --output OUT.ckpt\n"
    "  builds a weights-only checkpoint from a file nmt export wrote (the round trip is exact);\n"
    "  the config comes from the file, or from --config, whose model keys must agree with it\n";

int cli_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *format = "safetensors";
    const Option opts[] = {
        {"--checkpoint", OPT_STRING, &ckpt, 0, 0, "FILE", "a float checkpoint (required)", NULL},
        {"--format", OPT_STRING, &format, 0, 0, "NAME", "safetensors (the only one)", OPT_CURRENT},
        {"--output", OPT_STRING, &out, 0, 0, "FILE", "the file to write, atomically (required)", NULL},
    };
    const OptSpec spec = {"export", EXPORT_USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc && (!ckpt || !out)) rc = options_error(&spec, "--checkpoint and --output are required");
    if (!rc && strcmp(format, "safetensors") != 0)
        rc = options_error(&spec, "--format %s: only safetensors is written", format);
    if (rc) return options_report(&spec, rc);
    const FileArg in[] = {{"--checkpoint", ckpt}};
    rc = refuse_same_file(&(FileArg){"--output", out}, in, 1);
    return cli_finish(rc ? rc : export_safetensors(ckpt, out));
}

int cli_import(int argc, char **argv) {
    const char *in = NULL, *config = NULL, *out = NULL;
    const Option opts[] = {
        {"--input", OPT_STRING, &in, 0, 0, "FILE", "a safetensors file written by nmt export (required)", NULL},
        {"--config", OPT_STRING, &config, 0, 0, "FILE", "use this config (its model keys must match the file's)",
         NULL},
        {"--output", OPT_STRING, &out, 0, 0, "FILE", "the checkpoint to write, atomically (required)", NULL},
    };
    const OptSpec spec = {"import", IMPORT_USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc && (!in || !out)) rc = options_error(&spec, "--input and --output are required");
    if (rc) return options_report(&spec, rc);
    const FileArg inputs[] = {{"--input", in}, {"--config", config}};
    rc = refuse_same_file(&(FileArg){"--output", out}, inputs, 2);
    return cli_finish(rc ? rc : import_checkpoint(in, config, out));
}
