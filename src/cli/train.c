// cli/train.c — `nmt train`: options -> TrainArgs -> train_run().
#include "cli/cli.h"
#include "cli/options.h"

#include "train/comm.h"
#include "train/train.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <string.h>

static const char USAGE[] =
    "usage: nmt train --config FILE [--set key.path=value ...] [--resume CKPT] [--quiet] [--dry-run]\n";

int cli_train(int argc, char **argv) {
    TrainArgs a;
    memset(&a, 0, sizeof a);
    const char **sets = NULL;  // stb_ds array
    const Option opts[] = {
        {"--config", OPT_STRING, &a.config_path, 0, 0, "FILE", "JSON config (every key is listed in README.md)", NULL},
        {"--set", OPT_STRINGS, &sets, 0, 0, "key=value",
         "override a config key, e.g. --set train.max_steps=200 (repeatable)", NULL},
        {"--resume", OPT_STRING, &a.resume, 0, 0, "CKPT", "continue from this checkpoint",
         "<checkpoint_dir>/last.ckpt if it exists"},
        {"--quiet", OPT_FLAG, &a.quiet, 0, 0, NULL, "print only warnings, errors and the final summary", NULL},
        {"--dry-run", OPT_FLAG, &a.dry_run, 0, 0, NULL,
         "check the config and the data, print the resolved config, the parameter\n"
         "count and the memory the run will use; write nothing",
         NULL},
    };
    const OptSpec spec = {"train", USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (!rc && !a.config_path) rc = options_error(&spec, "--config FILE is required");
    if (rc) {
        arrfree(sets);
        return options_report(&spec, rc);
    }
    a.sets = sets;
    a.nset = (int)arrlen(sets);
    Comm comm;
    rc = comm_init(&comm);
    if (rc) {
        arrfree(sets);
        return cli_finish(rc);
    }
    a.comm = &comm;
    rc = train_run(&a);
    arrfree(sets);
    if (rc && comm.size > 1) {
        // Errors every process meets are described by rank 0 alone.
        if (comm.rank == 0 || err_msg()[0])
            fprintf(stderr, "nmt: error: rank %d: %s\n", comm.rank, err_msg()[0] ? err_msg() : "failed");
        comm_abort(&comm, rc);  // the others may be waiting for this one
    }
    comm_finalize(&comm);
    return comm.size > 1 ? rc : cli_finish(rc);
}
