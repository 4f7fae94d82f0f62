// info.c — `nmt info CHECKPOINT`: describe and verify a checkpoint.
#include "cli.h"
#include "options.h"

#include "checkpoint.h"
#include "util.h"

#include <stb/stb_ds.h>

static const char USAGE[] =
    "usage: nmt info CHECKPOINT\n"
    "  prints the header, sections, config, step and sizes; verifies every checksum\n"
    "  exit status 0 when valid, 2 when corrupt\n";

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
