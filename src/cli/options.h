// cli/options.h — the one option parser of every subcommand. A command describes
// its options in a table; the parser reads `--name value` and `--name=value`,
// collects positional arguments, prints --help from the same table, and words
// every usage error one way: "nmt CMD: WHAT (see: nmt CMD --help)".
#ifndef NMT_CLI_OPTIONS_H
#define NMT_CLI_OPTIONS_H

#include <stdio.h>

typedef enum {
    OPT_FLAG,     // --name: *(int *)target = 1; --name=value is an error
    OPT_STRING,   // --name V: *(const char **)target = V (the last one given wins)
    OPT_STRINGS,  // repeatable --name V: appended to the stb_ds array *(const char ***)target
    OPT_INT,      // whole number in [lo, hi]: *(int *)target
    OPT_DOUBLE,   // number in [lo, hi]: *(double *)target
} OptKind;

// deflt == OPT_CURRENT: --help shows the target's value before parsing.
#define OPT_CURRENT ""

typedef struct {
    const char *name;     // "--beam"
    OptKind kind;
    void *target;
    double lo, hi;        // OPT_INT, OPT_DOUBLE: the accepted range, both ends included
    const char *metavar;  // "K" in "--beam K" (NULL for flags)
    const char *help;     // '\n' starts a continuation line
    const char *deflt;    // "(default X)" after the help; NULL: none shown
} Option;

typedef struct {
    const char *command;     // "translate", "bench gemm": named in every message
    const char *usage;       // printed first by --help: usage line(s) and description, '\n'-terminated
    const Option *options;
    int noptions;
    int positionals;         // 0: bare words are errors; 1: collected for the command to check
    const char *epilog;      // printed after the options by --help, or NULL
} OptSpec;

enum { OPT_HELP = -1 };

// Parses argv[1..argc) (argv[0] is the command's name). With spec->positionals,
// bare words (and "-") are appended in order to the stb_ds array *positional
// (the caller frees it); otherwise positional may be NULL. Returns 0; OPT_HELP
// when -h or --help is anywhere among the arguments (nothing else is read); or
// NMT_ERR_INPUT with the message recorded by err_set(). Prints nothing.
int options_parse(const OptSpec *spec, int argc, char **argv, const char ***positional);

// The --help text: spec->usage, one line per option, -h/--help, spec->epilog.
void options_help(const OptSpec *spec, FILE *out);

// Records "nmt CMD: <message> (see: nmt CMD --help)" and returns NMT_ERR_INPUT.
int options_error(const OptSpec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// What a command does with options_parse()'s status: OPT_HELP prints the help
// to stdout and gives 0; an error is printed to stderr as recorded and given back.
int options_report(const OptSpec *spec, int rc);

// options_error() then options_report(): prints the usage error, returns NMT_ERR_INPUT.
int options_fail(const OptSpec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
