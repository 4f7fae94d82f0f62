// test_options.c — the command line's one option parser (src/cli/options.c):
// both syntaxes, flags, repeatable options, ranges, missing values, unknown
// options, positional arguments, the error wording and the generated --help.
#include <criterion/criterion.h>

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "common/util.h"

typedef struct {
    const char *checkpoint;
    const char **inputs;  // stb_ds array
    int quiet, beam;
    double alpha;
    const char **words;  // positional arguments
} Args;

enum { NOPT = 5 };

// A table like translate's, plus a repeatable option and a flag.
static void make_spec(Args *a, Option opts[NOPT], OptSpec *spec, int positionals) {
    memset(a, 0, sizeof *a);
    a->beam = 1;
    a->alpha = 0.6;
    const Option o[NOPT] = {
        {"--checkpoint", OPT_STRING, &a->checkpoint, 0, 0, "FILE", "a checkpoint", NULL},
        {"--input", OPT_STRINGS, &a->inputs, 0, 0, "FILE", "a text file (repeatable)", NULL},
        {"--quiet", OPT_FLAG, &a->quiet, 0, 0, NULL, "say less\nmuch less", NULL},
        {"--beam", OPT_INT, &a->beam, 1, 256, "K", "beam size", OPT_CURRENT},
        {"--alpha", OPT_DOUBLE, &a->alpha, 0, 10, "A", "length penalty", OPT_CURRENT},
    };
    memcpy(opts, o, sizeof o);
    *spec = (OptSpec){"demo", "usage: nmt demo [options]\n", opts, NOPT, positionals, "  after the options\n"};
}

// Parses the NULL-terminated arguments after the command's name.
static int parse(Args *a, int positionals, const char *const *args) {
    Option opts[NOPT];
    OptSpec spec;
    make_spec(a, opts, &spec, positionals);
    char *argv[32] = {"demo"};
    int argc = 1;
    while (args[argc - 1]) argv[argc] = (char *)args[argc - 1], argc++;
    err_clear();
    return options_parse(&spec, argc, argv, positionals ? &a->words : NULL);
}

static void free_args(Args *a) {
    arrfree(a->inputs);
    arrfree(a->words);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(options, both_syntaxes) {
    Args a;
    cr_assert_eq(parse(&a, 0, ARGS("--checkpoint", "a.ckpt", "--beam=4", "--alpha", "0.5")), 0, "%s", err_msg());
    cr_expect_str_eq(a.checkpoint, "a.ckpt");
    cr_expect_eq(a.beam, 4);
    cr_expect_float_eq(a.alpha, 0.5, 1e-12);
    cr_assert_eq(parse(&a, 0, ARGS("--checkpoint=b=c.ckpt", "--beam", "7", "--alpha=2")), 0, "%s", err_msg());
    cr_expect_str_eq(a.checkpoint, "b=c.ckpt");  // only the first '=' separates
    cr_expect_eq(a.beam, 7);
    cr_expect_float_eq(a.alpha, 2.0, 1e-12);
}

Test(options, defaults_stay_and_the_last_value_wins) {
    Args a;
    cr_assert_eq(parse(&a, 0, ARGS("--checkpoint", "x", "--checkpoint=y")), 0);
    cr_expect_str_eq(a.checkpoint, "y");
    cr_expect_eq(a.beam, 1);
    cr_expect_float_eq(a.alpha, 0.6, 1e-12);
    cr_expect_eq(a.quiet, 0);
}

Test(options, a_value_may_start_with_a_dash) {
    Args a;
    cr_assert_eq(parse(&a, 0, ARGS("--checkpoint", "-", "--input", "--quiet")), 0, "%s", err_msg());
    cr_expect_str_eq(a.checkpoint, "-");
    cr_assert_eq(arrlen(a.inputs), 1);
    cr_expect_str_eq(a.inputs[0], "--quiet");
    cr_expect_eq(a.quiet, 0);
    free_args(&a);
}

Test(options, flags) {
    Args a;
    cr_assert_eq(parse(&a, 0, ARGS("--quiet")), 0);
    cr_expect_eq(a.quiet, 1);
    cr_expect_eq(parse(&a, 0, ARGS("--quiet=1")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --quiet takes no value (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--quiet=")), NMT_ERR_INPUT);
}

Test(options, repeatable) {
    Args a;
    cr_assert_eq(parse(&a, 0, ARGS("--input", "a", "--quiet", "--input=b", "--input", "c")), 0);
    cr_assert_eq(arrlen(a.inputs), 3);
    cr_expect_str_eq(a.inputs[0], "a");
    cr_expect_str_eq(a.inputs[1], "b");
    cr_expect_str_eq(a.inputs[2], "c");
    free_args(&a);
}

Test(options, ranges) {
    Args a;
    cr_expect_eq(parse(&a, 0, ARGS("--beam", "256")), 0);
    cr_expect_eq(a.beam, 256);
    cr_expect_eq(parse(&a, 0, ARGS("--beam=2.0")), 0);  // as translate has always read it
    cr_expect_eq(a.beam, 2);
    cr_expect_eq(parse(&a, 0, ARGS("--alpha", "0")), 0);
    cr_expect_eq(parse(&a, 0, ARGS("--beam", "0")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --beam: '0' is not a whole number in [1, 256] (see: nmt demo --help)");
    const char *bad_int[] = {"257", "x", "1.5", "", "4k", "nan", "inf", "-1"};
    for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
        cr_expect_eq(parse(&a, 0, ARGS("--beam", bad_int[i])), NMT_ERR_INPUT, "'%s'", bad_int[i]);
        cr_expect(strstr(err_msg(), "is not a whole number in [1, 256]"), "%s", err_msg());
    }
    cr_expect_eq(a.beam, 1);
    cr_expect_eq(parse(&a, 0, ARGS("--alpha=10.5")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --alpha: '10.5' is not a number in [0, 10] (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--alpha", "-0.1")), NMT_ERR_INPUT);
}

Test(options, missing_values) {
    Args a;
    cr_expect_eq(parse(&a, 0, ARGS("--quiet", "--checkpoint")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --checkpoint needs a value (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--beam")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --beam needs a value (see: nmt demo --help)");
    // "--name=" gives no value; an empty argument is a value.
    cr_expect_eq(parse(&a, 0, ARGS("--checkpoint=")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: --checkpoint needs a value (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--input=")), NMT_ERR_INPUT);
    cr_expect_eq(parse(&a, 0, ARGS("--checkpoint", "")), 0);
    cr_expect_str_eq(a.checkpoint, "");
}

Test(options, unknown_options) {
    Args a;
    cr_expect_eq(parse(&a, 0, ARGS("--checkpoint", "x", "--bogus")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: unknown option '--bogus' (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--bogus=3")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: unknown option '--bogus' (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("-q")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: unknown option '-q' (see: nmt demo --help)");
    cr_expect_eq(parse(&a, 0, ARGS("--check")), NMT_ERR_INPUT);  // no prefixes
    cr_expect_eq(parse(&a, 0, ARGS("--checkpoints", "x")), NMT_ERR_INPUT);
    cr_expect_eq(parse(&a, 0, ARGS("--")), NMT_ERR_INPUT);
}

Test(options, positional_arguments) {
    Args a;
    cr_expect_eq(parse(&a, 0, ARGS("--quiet", "file.txt")), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt demo: unexpected argument 'file.txt' (see: nmt demo --help)");
    cr_assert_eq(parse(&a, 1, ARGS("one", "--beam", "3", "-", "--quiet", "two")), 0, "%s", err_msg());
    cr_assert_eq(arrlen(a.words), 3);
    cr_expect_str_eq(a.words[0], "one");
    cr_expect_str_eq(a.words[1], "-");
    cr_expect_str_eq(a.words[2], "two");
    cr_expect_eq(a.beam, 3);
    cr_expect_eq(a.quiet, 1);
    free_args(&a);
}

Test(options, help_wins_anywhere) {
    Args a;
    cr_expect_eq(parse(&a, 0, ARGS("--bogus", "--beam", "0", "-h")), OPT_HELP);
    cr_expect_eq(parse(&a, 0, ARGS("--help", "--bogus")), OPT_HELP);
    cr_expect_eq(err_code(), 0);
}

Test(options, error_wording) {
    Option opts[NOPT];
    OptSpec spec;
    Args a;
    make_spec(&a, opts, &spec, 0);
    spec.command = "bench gemm";
    err_clear();
    cr_expect_eq(options_error(&spec, "--%s FILE is required", "checkpoint"), NMT_ERR_INPUT);
    cr_expect_str_eq(err_msg(), "nmt bench gemm: --checkpoint FILE is required (see: nmt bench gemm --help)");
}

// The help text generated from the table, with the values before parsing as defaults.
Test(options, help_text) {
    Option opts[NOPT];
    OptSpec spec;
    Args a;
    make_spec(&a, opts, &spec, 0);
    a.beam = 4;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert(f);
    options_help(&spec, f);
    fclose(f);
    cr_expect_str_eq(text,
                     "usage: nmt demo [options]\n"
                     "  --checkpoint FILE  a checkpoint\n"
                     "  --input FILE       a text file (repeatable)\n"
                     "  --quiet            say less\n"
                     "                     much less\n"
                     "  --beam K           beam size (default 4)\n"
                     "  --alpha A          length penalty (default 0.6)\n"
                     "  -h, --help         print this text\n"
                     "  after the options\n");
    free(text);
}
