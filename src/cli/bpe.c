// cli/bpe.c — `nmt bpe learn|encode|decode`: the command-line face of bpe.h.
#include "cli/cli.h"
#include "cli/options.h"
#include "common/files.h"

#include "text/bpe.h"
#include "common/util.h"

#include <libgen.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: nmt bpe learn --vocab-size N --input FILE [--input FILE ...] --output MODEL\n"
    "       nmt bpe encode --model MODEL   < text > tokens\n"
    "       nmt bpe decode --model MODEL   < tokens > text\n"
    "\n"
    "learn   learns a joint byte-pair vocabulary of N ids (4 specials + 256 byte\n"
    "        tokens + characters + merges) from plain UTF-8 text, one sentence a line.\n"
    "encode  prints each input line as space-separated token strings.\n"
    "decode  turns lines of token strings back into text (exact inverse of encode).\n"
    "\n";

typedef struct {
    const char *sub, *output, *model;
    const char **inputs; // stb_ds array
    int vocab_size;      // 0 = not given
} Args;

// What each of learn / encode / decode needs and refuses.
static int check(const OptSpec *spec, const Args *a) {
    if (!strcmp(a->sub, "learn")) {
        if (a->model) return options_error(spec, "learn takes no --model");
        if (!a->vocab_size) return options_error(spec, "learn needs --vocab-size N");
        if (!arrlen(a->inputs)) return options_error(spec, "learn needs at least one --input FILE");
        if (!a->output) return options_error(spec, "learn needs --output MODEL");
        return NMT_OK;
    }
    if (strcmp(a->sub, "encode") && strcmp(a->sub, "decode"))
        return options_error(spec, "unknown subcommand '%s'", a->sub);
    if (a->vocab_size || a->inputs || a->output)
        return options_error(spec, "%s takes only --model (text comes from stdin)", a->sub);
    if (!a->model) return options_error(spec, "%s needs --model MODEL", a->sub);
    return NMT_OK;
}

static int learn(const Args *a) {
    // Fail before spending the learning time on an unwritable destination, or one that is an input.
    FileArg *in = NULL;  // stb_ds array
    for (ptrdiff_t i = 0; i < arrlen(a->inputs); i++) arrput(in, ((FileArg){"--input", a->inputs[i]}));
    int rc = refuse_same_file(&(FileArg){"--output", a->output}, in, (int)arrlen(in));
    arrfree(in);
    if (rc) return rc;
    char *copy = xstrdup(a->output);
    const char *dir = dirname(copy);
    int ok = access(dir, W_OK) == 0;
    if (!ok) err_set(NMT_ERR_INPUT, "bpe: cannot write --output %s: directory %s is missing or read-only", a->output, dir);
    free(copy);
    if (!ok) return NMT_ERR_INPUT;
    double t0 = now_seconds();
    Bpe *b;
    rc = bpe_learn(&b, a->inputs, (int)arrlen(a->inputs), a->vocab_size);
    if (rc) return rc;
    double t1 = now_seconds();
    rc = bpe_save(b, a->output);
    if (!rc)
        fprintf(stderr, "bpe: learned %d ids (requested %d) in %.2f s, wrote %s\n", bpe_vocab_size(b),
                a->vocab_size, t1 - t0, a->output);
    bpe_free(b);
    return rc;
}

static int run(const Args *a) {
    int rc;
    if (!strcmp(a->sub, "learn")) rc = learn(a);
    else {
        Bpe *b;
        rc = bpe_load(&b, a->model);
        if (!rc) {
            rc = !strcmp(a->sub, "encode") ? bpe_encode_stream(b, stdin, stdout, "stdin")
                                           : bpe_decode_stream(b, stdin, stdout, "stdin");
            bpe_free(b);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) rc = err_set(NMT_ERR_RUNTIME, "bpe: write error on stdout");
    return rc;
}

int cli_bpe(int argc, char **argv) {
    Args a = {0};
    const char **words = NULL;  // stb_ds array: the subcommand
    const Option opts[] = {
        {"--vocab-size", OPT_INT, &a.vocab_size, 1, 1 << 24, "N", "learn: ids in the vocabulary", NULL},
        {"--input", OPT_STRINGS, &a.inputs, 0, 0, "FILE", "learn: a training text file (repeatable)", NULL},
        {"--output", OPT_STRING, &a.output, 0, 0, "MODEL", "learn: the model file to write", NULL},
        {"--model", OPT_STRING, &a.model, 0, 0, "MODEL", "encode, decode: the model file to use", NULL},
    };
    const OptSpec spec = {"bpe", USAGE, opts, sizeof opts / sizeof opts[0], 1, NULL};
    int rc = options_parse(&spec, argc, argv, &words);
    if (!rc && arrlen(words) == 0) rc = options_error(&spec, "missing subcommand (learn, encode or decode)");
    if (!rc && arrlen(words) > 1) rc = options_error(&spec, "unexpected argument '%s'", words[1]);
    if (!rc) a.sub = words[0];
    if (!rc) rc = check(&spec, &a);
    if (rc) rc = options_report(&spec, rc);
    else rc = cli_finish(run(&a));
    arrfree(a.inputs);
    arrfree(words);
    return rc;
}
