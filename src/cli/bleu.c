// cmd_bleu.c — the `bleu` subcommand: score standard input against a reference file.
#include "cmd_bleu.h"

#include "bleu.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: nmt bleu REF_FILE [--lowercase] [--chrf] < HYP_FILE\n"
    "\n"
    "Corpus BLEU of the hypotheses on standard input (one segment a line) against\n"
    "REF_FILE (the same number of lines, UTF-8), computed as sacreBLEU 2.x does by\n"
    "default: 13a tokenizer, n-grams up to 4, exp smoothing, case-sensitive.\n"
    "\n"
    "  --lowercase  compare lowercased text (BLEU and chrF)\n"
    "  --chrf       also print chrF2 (character 6-grams, beta 2, whitespace removed)\n"
    "  --help       print this text\n";

// Cuts `text` into lines at '\n' in place (a final newline ends the last line
// rather than starting an empty one, as Python's line iteration does) and
// checks that every line is NUL-free UTF-8. `*lines` is malloc'ed.
static int split_lines(char *text, size_t len, const char *name, char ***lines, size_t *n) {
    size_t cap = 0, cnt = 0, start = 0;
    char **v = NULL;
    *lines = NULL;
    *n = 0;
    while (start < len) {
        char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (memchr(text + start, 0, end - start)) {
            free(v);
            return err_set(NMT_ERR_INPUT, "%s:%zu: line contains a NUL byte", name, cnt + 1);
        }
        long bad = bleu_utf8_check(text + start, end - start);
        if (bad >= 0) {
            free(v);
            return err_set(NMT_ERR_INPUT, "%s:%zu: invalid UTF-8 at byte %ld of the line", name, cnt + 1, bad + 1);
        }
        if (cnt == cap) v = xrealloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v);
        text[end] = 0;  // the '\n' (or the terminating NUL already there)
        v[cnt++] = text + start;
        start = end + 1;
    }
    *lines = v;
    *n = cnt;
    return NMT_OK;
}

int cmd_bleu(int argc, char **argv) {
    const char *ref_path = NULL;
    int lowercase = 0, want_chrf = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return NMT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--lowercase")) lowercase = 1;
        else if (!strcmp(a, "--chrf")) want_chrf = 1;
        else if (a[0] == '-' && a[1] != 0)
            return err_set(NMT_ERR_INPUT, "bleu: unknown option '%s' (see nmt bleu --help)", a);
        else if (!ref_path) ref_path = a;
        else return err_set(NMT_ERR_INPUT, "bleu: unexpected argument '%s' (one REF_FILE only; hypotheses come on stdin)", a);
    }
    if (!ref_path) return err_set(NMT_ERR_INPUT, "bleu: missing REF_FILE (usage: nmt bleu REF_FILE [--lowercase] [--chrf] < HYP)");

    int rc = NMT_OK;
    size_t ref_len = 0, hyp_len = 0, n_ref = 0, n_hyp = 0;
    char **ref = NULL, **hyp = NULL, *hyp_text = NULL;
    char *ref_text = read_file_text(ref_path, &ref_len);
    if (!ref_text) return err_code() ? err_code() : NMT_ERR_INPUT;
    if ((rc = split_lines(ref_text, ref_len, ref_path, &ref, &n_ref))) goto done;
    if (!(hyp_text = read_file_text("/dev/stdin", &hyp_len))) { rc = NMT_ERR_INPUT; goto done; }
    if ((rc = split_lines(hyp_text, hyp_len, "<stdin>", &hyp, &n_hyp))) goto done;
    if (n_ref != n_hyp) {
        rc = err_set(NMT_ERR_INPUT, "bleu: %s has %zu line%s but the hypotheses on stdin have %zu", ref_path, n_ref,
                     n_ref == 1 ? "" : "s", n_hyp);
        goto done;
    }
    if (n_ref == 0) {
        rc = err_set(NMT_ERR_INPUT, "bleu: %s is empty: nothing to score", ref_path);
        goto done;
    }

    BleuStats bs;
    ChrfStats cs;
    bleu_stats_init(&bs, lowercase);
    chrf_stats_init(&cs, lowercase);
    for (size_t i = 0; i < n_ref; i++) {
        if ((rc = bleu_add(&bs, hyp[i], ref[i]))) goto done;
        if (want_chrf && (rc = chrf_add(&cs, hyp[i], ref[i]))) goto done;
    }
    char line[512];
    BleuResult br = bleu_result(&bs);
    bleu_format(&br, line, sizeof line);
    printf("%s\n", line);
    if (want_chrf) {
        ChrfResult cr = chrf_result(&cs);
        chrf_format(&cr, line, sizeof line);
        printf("%s\n", line);
    }
    fflush(stdout);

done:
    free(ref);
    free(hyp);
    free(ref_text);
    free(hyp_text);
    return rc;
}
