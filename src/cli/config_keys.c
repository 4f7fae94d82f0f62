// cli/config_keys.c — `nmt config-keys`: the table of config keys (Markdown).
#include "cli/cli.h"
#include "cli/options.h"

#include "common/config.h"

static const char USAGE[] =
    "usage: nmt config-keys\n"
    "  prints every config key with its type, default and meaning (a Markdown table)\n";

int cli_config_keys(int argc, char **argv) {
    const OptSpec spec = {"config-keys", USAGE, NULL, 0, 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    if (rc) return options_report(&spec, rc);
    config_print_keys();
    return 0;
}
