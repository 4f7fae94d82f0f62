// cli/score.c — `nmt score`: the log-probability of given translations (forced decoding).
#include "cli/cli.h"
#include "cli/options.h"

#include "io/checkpoint.h"
#include "data/corpus.h"
#include "decode/ensemble.h"
#include "decode/score.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

static const char USAGE[] =
    "usage: nmt score --checkpoint FILE [--checkpoint FILE2 ... [--weights W1,W2,...]] --src SOURCE\n"
    "                 --tgt TRANSLATIONS [--normalize] [--batch N]\n"
    "  prints, one line per pair, the log-probability (natural log) the model gives each line of\n"
    "  TRANSLATIONS as the translation of the same line of SOURCE: the sum over its tokens and\n"
    "  the end of sentence (forced decoding, no dropout); higher is more likely. An ensemble's\n"
    "  score is the weighted mean of its models' (what its search ranks)\n";

// Each pair's weighted mean over the members of score_lines' log-probability.
static int score_members(const Members *ms, char *const *src, char *const *tgt, size_t n, size_t batch,
                         const char *src_path, const char *tgt_path, double *lp, size_t *ntok) {
    double *one = xcalloc(n + 1, sizeof *one);
    int rc = NMT_OK;
    for (size_t k = 0; k < ms->n && !rc; k++) {
        const Loaded *l = &ms->l[0];
        rc = score_lines(ms->m[k], &l->t, l->c.max_src_len, src, tgt, n, batch, src_path, tgt_path, one, ntok);
        for (size_t i = 0; !rc && i < n; i++) lp[i] = (k ? lp[i] : 0) + ms->w[k] * one[i];
    }
    free(one);
    return rc;
}

int cli_score(int argc, char **argv) {
    const char *src_path = NULL, *tgt_path = NULL, *weights = NULL;
    char **ckpts = NULL;
    int normalize = 0, batch = 32;
    const Option opts[] = {
        {"--checkpoint", OPT_STRINGS, &ckpts, 0, 0, "FILE",
         "a checkpoint (float or int8) (required); repeat it for an ensemble sharing one vocabulary", NULL},
        {"--weights", OPT_STRING, &weights, 0, 0, "W1,W2,...",
         "the ensemble's weights, one per --checkpoint (normalised; default: equal)", NULL},
        {"--src", OPT_STRING, &src_path, 0, 0, "FILE", "source sentences (required)", NULL},
        {"--tgt", OPT_STRING, &tgt_path, 0, 0, "FILE", "their translations, line for line (required)", NULL},
        {"--normalize", OPT_FLAG, &normalize, 0, 0, NULL, "divide each score by its number of tokens (EOS included)",
         NULL},
        {"--batch", OPT_INT, &batch, 1, 4096, "N", "pairs scored together; the scores do not depend on it",
         OPT_CURRENT},
    };
    const OptSpec spec = {"score", USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    size_t nck = (size_t)arrlen(ckpts);
    if (!rc && (!nck || !src_path || !tgt_path)) rc = options_error(&spec, "--checkpoint, --src and --tgt are required");
    if (!rc && weights && nck < 2) rc = options_error(&spec, "--weights weighs two --checkpoint or more");
    if (rc) {
        arrfree(ckpts);
        return options_report(&spec, rc);
    }
    char *stext = NULL, **src = NULL, *ttext = NULL, **tgt = NULL;
    rc = read_lines(src_path, &stext, &src);
    if (!rc) rc = read_lines(tgt_path, &ttext, &tgt);
    if (!rc && arrlen(src) != arrlen(tgt))
        rc = err_set(NMT_ERR_INPUT, "%s has %td lines but %s has %td", src_path, arrlen(src), tgt_path, arrlen(tgt));
    Members ms;
    int loaded = 0;
    if (!rc) loaded = !(rc = members_load(&ms, ckpts, nck, weights, 0));
    size_t n = (size_t)arrlen(src);
    double *lp = xcalloc(n + 1, sizeof *lp);
    size_t *ntok = xcalloc(n + 1, sizeof *ntok);
    if (!rc) rc = score_members(&ms, src, tgt, n, (size_t)batch, src_path, tgt_path, lp, ntok);
    // All pairs are scored (and checked) before anything is printed.
    for (size_t i = 0; !rc && i < n; i++) printf("%.6f\n", normalize ? lp[i] / (double)ntok[i] : lp[i]);
    if (!rc && fflush(stdout) != 0) rc = err_set(NMT_ERR_RUNTIME, "stdout: write failed");
    free(lp);
    free(ntok);
    arrfree(src);
    arrfree(tgt);
    free(stext);
    free(ttext);
    if (loaded) members_free(&ms);
    arrfree(ckpts);
    return cli_finish(rc);
}
