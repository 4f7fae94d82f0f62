// cli/options.c — one option parser for every subcommand (see options.h).
#include "cli/options.h"

#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int vrecord(const OptSpec *spec, const char *fmt, va_list ap) {
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return err_set(NMT_ERR_INPUT, "nmt %s: %s (see: nmt %s --help)", spec->command, msg, spec->command);
}

int options_error(const OptSpec *spec, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vrecord(spec, fmt, ap);
    va_end(ap);
    return rc;
}

int options_report(const OptSpec *spec, int rc) {
    if (rc == OPT_HELP) {
        options_help(spec, stdout);
        return NMT_OK;
    }
    if (rc) {
        fprintf(stderr, "%s\n", err_msg());
        err_clear();
    }
    return rc;
}

int options_fail(const OptSpec *spec, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vrecord(spec, fmt, ap);
    va_end(ap);
    return options_report(spec, rc);
}

static int is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

// The option whose name is the first n bytes of `name`, or NULL.
static const Option *find(const OptSpec *spec, const char *name, size_t n) {
    for (int i = 0; i < spec->noptions; i++) {
        const char *o = spec->options[i].name;
        if (strlen(o) == n && !strncmp(o, name, n)) return &spec->options[i];
    }
    return NULL;
}

// strtod, as translate has always read its numbers: "2.0" and "1e2" are
// whole numbers too. The range check also turns away nan and inf.
static int store_number(const OptSpec *spec, const Option *o, const char *v) {
    int whole = o->kind == OPT_INT;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= o->lo && d <= o->hi) || (whole && d != floor(d))) {
        if (whole)
            return options_error(spec, "%s: '%s' is not a whole number in [%.0f, %.0f]", o->name, v, o->lo, o->hi);
        return options_error(spec, "%s: '%s' is not a number in [%g, %g]", o->name, v, o->lo, o->hi);
    }
    if (whole) *(int *)o->target = (int)d;
    else *(double *)o->target = d;
    return NMT_OK;
}

static int store(const OptSpec *spec, const Option *o, const char *v) {
    switch (o->kind) {
    case OPT_FLAG: *(int *)o->target = 1; break;
    case OPT_STRING: *(const char **)o->target = v; break;
    case OPT_STRINGS: arrput(*(const char ***)o->target, v); break;
    case OPT_INT:
    case OPT_DOUBLE: return store_number(spec, o, v);
    }
    return NMT_OK;
}

// One option at argv[*i]; a value in the next argument moves *i past it.
static int parse_option(const OptSpec *spec, int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    const char *eq = !strncmp(arg, "--", 2) ? strchr(arg, '=') : NULL;
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    const Option *o = find(spec, arg, n);
    if (!o) return options_error(spec, "unknown option '%.*s'", (int)n, arg);
    if (o->kind == OPT_FLAG) {
        if (eq) return options_error(spec, "%s takes no value", o->name);
        return store(spec, o, NULL);
    }
    // "--name=" gives no value rather than an empty one.
    if (eq ? !eq[1] : *i + 1 >= argc) return options_error(spec, "%s needs a value", o->name);
    return store(spec, o, eq ? eq + 1 : argv[++*i]);
}

int options_parse(const OptSpec *spec, int argc, char **argv, const char ***positional) {
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) return OPT_HELP;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (a[0] == '-' && a[1]) rc = parse_option(spec, argc, argv, &i);
        else if (!spec->positionals) rc = options_error(spec, "unexpected argument '%s'", a);
        else {
            arrput(*positional, a);
            rc = NMT_OK;
        }
        if (rc) return rc;
    }
    return NMT_OK;
}

// "--beam K" as the left column shows it.
static int left_column(const Option *o, char *buf, size_t n) {
    return snprintf(buf, n, "%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
}

static void print_default(const Option *o, FILE *out) {
    if (!o->deflt) return;
    if (*o->deflt) fprintf(out, " (default %s)", o->deflt);
    else if (o->kind == OPT_INT) fprintf(out, " (default %d)", *(const int *)o->target);
    else if (o->kind == OPT_DOUBLE) fprintf(out, " (default %g)", *(const double *)o->target);
    else if (o->kind == OPT_STRING && *(const char *const *)o->target)
        fprintf(out, " (default %s)", *(const char *const *)o->target);
}

// The help text, its continuation lines indented to `col`, then the default.
static void print_help_text(const Option *o, int col, FILE *out) {
    const char *h = o->help ? o->help : "";
    for (const char *nl; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
        fprintf(out, "%.*s\n%*s", (int)(nl - h), h, col, "");
    fputs(h, out);
    print_default(o, out);
    fputc('\n', out);
}

void options_help(const OptSpec *spec, FILE *out) {
    char left[128];
    int width = (int)strlen("-h, --help");
    for (int i = 0; i < spec->noptions; i++) {
        int w = left_column(&spec->options[i], left, sizeof left);
        if (w > width) width = w;
    }
    int col = 2 + width + 2;
    fputs(spec->usage, out);
    for (int i = 0; i < spec->noptions; i++) {
        left_column(&spec->options[i], left, sizeof left);
        fprintf(out, "  %-*s  ", width, left);
        print_help_text(&spec->options[i], col, out);
    }
    fprintf(out, "  %-*s  print this text\n", width, "-h, --help");
    if (spec->epilog) fputs(spec->epilog, out);
}
