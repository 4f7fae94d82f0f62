// cli/info.c — `nmt info CHECKPOINT`: describe and verify a checkpoint.
#include "cli/cli.h"
#include "cli/options.h"

#include "io/checkpoint.h"
#include "common/util.h"

#include <stb/stb_ds.h>

static const char USAGE[] =
    "usage: nmt info CHECKPOINT\n"
    "  prints the header, sections, config, step and sizes; verifies the checkpoint\n"
    "  exactly as loading it does (checksums; config, tokenizer, tensor table, parameter\n"
    "  and optimizer-state sizes agreeing; every weight and optimizer value finite)\n"
    "  exit status 0 when valid, 2 when corrupt or inconsistent (the error names the\n"
    "  section, and for a non-finite value the tensor and element)\n";

int cli_info(int argc, char **argv) {
    const char **files = NULL;  // stb_ds array
    const OptSpec spec = {"info", USAGE, NULL, 0, 1, NULL};
    int rc = options_parse(&spec, argc, argv, &files);
    if (!rc && arrlen(files) != 1) rc = options_error(&spec, "expects exactly one checkpoint file");
    if (!rc) rc = cli_finish(checkpoint_info(files[0]));
    else rc = options_report(&spec, rc);
    arrfree(files);
    return rc;
}
