// cli/bleu.c — `nmt bleu REF_FILE [--lowercase] [--chrf] < HYP`: score standard
// input against a reference file (bleu.h does the reading and the scoring).
#include "cli/cli.h"
#include "cli/options.h"

#include "eval/bleu.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

static const char USAGE[] =
    "usage: nmt bleu REF_FILE [--lowercase] [--chrf] < HYP_FILE\n"
    "\n"
    "Corpus BLEU of the hypotheses on standard input (one segment a line) against\n"
    "REF_FILE (the same number of lines, UTF-8), computed as sacreBLEU 2.x does by\n"
    "default: 13a tokenizer, n-grams up to 4, exp smoothing, case-sensitive.\n"
    "\n";

// Reads both sides, scores them and prints the score line(s).
static int score(const char *ref_path, int lowercase, int want_chrf) {
    size_t n_ref = 0, n_hyp = 0;
    char **ref = NULL, **hyp = NULL, *ref_text = NULL, *hyp_text = NULL;
    int rc = bleu_read_segments(ref_path, ref_path, &ref_text, &ref, &n_ref);
    if (!rc) rc = bleu_read_segments("/dev/stdin", "<stdin>", &hyp_text, &hyp, &n_hyp);
    if (!rc && n_ref != n_hyp)
        rc = err_set(NMT_ERR_INPUT, "bleu: %s has %zu line%s but the hypotheses on stdin have %zu", ref_path, n_ref,
                     n_ref == 1 ? "" : "s", n_hyp);
    if (!rc && n_ref == 0) rc = err_set(NMT_ERR_INPUT, "bleu: %s is empty: nothing to score", ref_path);
    BleuResult br;
    ChrfResult cr;
    if (!rc)
        rc = bleu_score_segments((const char *const *)hyp, (const char *const *)ref, n_ref, lowercase, &br,
                                 want_chrf ? &cr : NULL);
    if (!rc) {
        char line[512];
        bleu_format(&br, line, sizeof line);
        printf("%s\n", line);
        if (want_chrf) {
            chrf_format(&cr, line, sizeof line);
            printf("%s\n", line);
        }
        fflush(stdout);
    }
    free(ref);
    free(hyp);
    free(ref_text);
    free(hyp_text);
    return rc;
}

int cli_bleu(int argc, char **argv) {
    int lowercase = 0, want_chrf = 0;
    const char **files = NULL;  // stb_ds array
    const Option opts[] = {
        {"--lowercase", OPT_FLAG, &lowercase, 0, 0, NULL, "compare lowercased text (BLEU and chrF)", NULL},
        {"--chrf", OPT_FLAG, &want_chrf, 0, 0, NULL,
         "also print chrF2 (character 6-grams, beta 2, whitespace removed)", NULL},
    };
    const OptSpec spec = {"bleu", USAGE, opts, sizeof opts / sizeof opts[0], 1, NULL};
    int rc = options_parse(&spec, argc, argv, &files);
    if (!rc && arrlen(files) == 0) rc = options_error(&spec, "missing REF_FILE");
    if (!rc && arrlen(files) > 1)
        rc = options_error(&spec, "unexpected argument '%s' (one REF_FILE only; hypotheses come on stdin)", files[1]);
    if (rc) rc = options_report(&spec, rc);
    else rc = cli_finish(score(files[0], lowercase, want_chrf));
    arrfree(files);
    return rc;
}
