// cmd_bpe.c — `nmt bpe learn|encode|decode`: the command-line face of bpe.c.
#include "cmd_bpe.h"
#include "bpe.h"
#include "util.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stb/stb_ds.h>

static const char USAGE[] =
    "usage: nmt bpe learn --vocab-size N --input FILE [--input FILE ...] --output MODEL\n"
    "       nmt bpe encode --model MODEL   < text > tokens\n"
    "       nmt bpe decode --model MODEL   < tokens > text\n"
    "\n"
    "learn   learns a joint byte-pair vocabulary of N ids (4 specials + 256 byte\n"
    "        tokens + characters + merges) from plain UTF-8 text, one sentence a line.\n"
    "encode  prints each input line as space-separated token strings.\n"
    "decode  turns lines of token strings back into text (exact inverse of encode).\n";

typedef struct {
    const char *sub, *output, *model;
    const char **inputs; // stb array
    int vocab_size;      // 0 = not given
} Options;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(NMT_ERR_INPUT, "bpe: %s (see 'nmt bpe --help')", msg);
}

static int parse_options(int argc, char **argv, Options *o) {
    o->sub = argv[1];
    if (strcmp(o->sub, "learn") && strcmp(o->sub, "encode") && strcmp(o->sub, "decode"))
        return usage_error("unknown subcommand '%s'", o->sub);
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i], *val;
        const char *eq = strchr(opt, '=');
        char name[32];
        size_t n = eq ? (size_t)(eq - opt) : strlen(opt);
        if (strncmp(opt, "--", 2) != 0 || n >= sizeof name) return usage_error("unexpected argument '%s'", opt);
        memcpy(name, opt, n);
        name[n] = 0;
        if (strcmp(name, "--vocab-size") && strcmp(name, "--input") && strcmp(name, "--output") &&
            strcmp(name, "--model"))
            return usage_error("unknown option '%s'", opt);
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return usage_error("missing value for %s", name);
        if (!strcmp(name, "--vocab-size")) {
            char *end;
            long v = strtol(val, &end, 10);
            if (!*val || *end || v <= 0 || v > 1 << 24)
                return usage_error("--vocab-size needs a positive integer (at most 16777216), got '%s'", val);
            o->vocab_size = (int)v;
        } else if (!strcmp(name, "--input")) arrpush(o->inputs, val);
        else if (!strcmp(name, "--output")) o->output = val;
        else o->model = val;
    }
    if (!strcmp(o->sub, "learn")) {
        if (o->model) return usage_error("learn takes no --model");
        if (!o->vocab_size) return usage_error("learn needs --vocab-size N");
        if (!arrlen(o->inputs)) return usage_error("learn needs at least one --input FILE");
        if (!o->output) return usage_error("learn needs --output MODEL");
    } else {
        if (o->vocab_size || o->inputs || o->output)
            return usage_error("%s takes only --model (text comes from stdin)", o->sub);
        if (!o->model) return usage_error("%s needs --model MODEL", o->sub);
    }
    return NMT_OK;
}

static int learn(const Options *o) {
    // Fail before spending the learning time on an unwritable destination.
    char *copy = xstrdup(o->output);
    const char *dir = dirname(copy);
    int ok = access(dir, W_OK) == 0;
    if (!ok) err_set(NMT_ERR_INPUT, "bpe: cannot write --output %s: directory %s is missing or read-only", o->output, dir);
    free(copy);
    if (!ok) return NMT_ERR_INPUT;
    double t0 = now_seconds();
    Bpe *b;
    int rc = bpe_learn(&b, o->inputs, (int)arrlen(o->inputs), o->vocab_size);
    if (rc) return rc;
    double t1 = now_seconds();
    rc = bpe_save(b, o->output);
    if (!rc)
        fprintf(stderr, "bpe: learned %d ids (requested %d) in %.2f s, wrote %s\n", bpe_vocab_size(b),
                o->vocab_size, t1 - t0, o->output);
    bpe_free(b);
    return rc;
}

// Reads stdin line by line, without the newline; rejects NUL bytes.
static int read_line(char **line, size_t *cap, long lineno, int *eof) {
    ssize_t n = getline(line, cap, stdin);
    if (n < 0) {
        *eof = 1;
        return ferror(stdin) ? err_set(NMT_ERR_RUNTIME, "bpe: read error on stdin") : NMT_OK;
    }
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[--n] = 0;
    if (strlen(*line) != (size_t)n) return err_set(NMT_ERR_INPUT, "stdin:%ld: NUL byte in line", lineno);
    return NMT_OK;
}

static int encode(const Bpe *b) {
    char *line = NULL;
    size_t cap = 0;
    int *ids = NULL, rc = NMT_OK, eof = 0;
    for (long lineno = 1; rc == NMT_OK; lineno++) {
        if ((rc = read_line(&line, &cap, lineno, &eof)) || eof) break;
        arrsetlen(ids, 0);
        if ((rc = bpe_encode_at(b, line, &ids, "stdin", lineno))) break;
        for (ptrdiff_t i = 0; i < arrlen(ids); i++) {
            if (i) putchar(' ');
            fputs(bpe_token(b, ids[i]), stdout);
        }
        putchar('\n');
    }
    free(line);
    arrfree(ids);
    return rc;
}

static int decode(const Bpe *b) {
    char *line = NULL;
    size_t cap = 0;
    int *ids = NULL, rc = NMT_OK, eof = 0;
    for (long lineno = 1; rc == NMT_OK; lineno++) {
        if ((rc = read_line(&line, &cap, lineno, &eof)) || eof) break;
        arrsetlen(ids, 0);
        for (char *s = line, *tok; (tok = strsep(&s, " ")) != NULL;) {
            if (!*tok) continue;
            int id = bpe_token_id(b, tok);
            if (id < 0) {
                rc = err_set(NMT_ERR_INPUT, "stdin:%ld: unknown token '%.60s'", lineno, tok);
                break;
            }
            arrpush(ids, id);
        }
        if (rc) break;
        char *text = bpe_decode(b, ids, arrlenu(ids));
        fputs(text, stdout);
        putchar('\n');
        free(text);
    }
    free(line);
    arrfree(ids);
    return rc;
}

int cmd_bpe(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return NMT_OK;
        }
    if (argc < 2) return usage_error("missing subcommand (learn, encode or decode)");
    Options o = {0};
    int rc = parse_options(argc, argv, &o);
    if (!rc && !strcmp(o.sub, "learn")) rc = learn(&o);
    else if (!rc) {
        Bpe *b;
        rc = bpe_load(&b, o.model);
        if (!rc) {
            rc = !strcmp(o.sub, "encode") ? encode(b) : decode(b);
            bpe_free(b);
        }
    }
    arrfree(o.inputs);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = err_set(NMT_ERR_RUNTIME, "bpe: write error on stdout");
    return rc;
}
