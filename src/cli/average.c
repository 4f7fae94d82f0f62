// cli/average.c — `nmt average --output OUT IN1 IN2 ...` (average.h does the work).
#include "cli/cli.h"
#include "cli/options.h"
#include "common/files.h"

#include "train/average.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>

static const char USAGE[] =
    "usage: nmt average --output OUT.ckpt IN1.ckpt IN2.ckpt ...\n"
    "  writes the element-wise mean of the inputs' weights; the inputs must have the same\n"
    "  model shape and vocabulary. The output has no optimizer state: translate with it,\n"
    "  or start a new run from it by hand.\n";

// The output is none of the inputs (it would be replaced by the average).
static int refuse_inputs(const char *out, const char **in) {
    FileArg *args = NULL;  // stb_ds array
    for (ptrdiff_t i = 0; i < arrlen(in); i++) arrput(args, ((FileArg){"input", in[i]}));
    int rc = refuse_same_file(&(FileArg){"--output", out}, args, (int)arrlen(args));
    arrfree(args);
    return rc;
}

int cli_average(int argc, char **argv) {
    const char *out = NULL;
    const char **in = NULL;  // stb_ds array
    const Option opts[] = {
        {"--output", OPT_STRING, &out, 0, 0, "OUT.ckpt", "the checkpoint to write (required)", NULL},
    };
    const OptSpec spec = {"average", USAGE, opts, sizeof opts / sizeof opts[0], 1, NULL};
    int rc = options_parse(&spec, argc, argv, &in);
    if (!rc && (!out || arrlen(in) < 1)) rc = options_error(&spec, "needs --output OUT and at least one input");
    if (rc) rc = options_report(&spec, rc);
    else if ((rc = refuse_inputs(out, in))) cli_finish(rc);
    else {
        rc = cli_finish(checkpoint_average(out, in, (int)arrlen(in)));
        if (!rc) printf("nmt: averaged %d checkpoints into %s\n", (int)arrlen(in), out);
    }
    arrfree(in);
    return rc;
}
