// average.c — checkpoint averaging (the paper averages the last 5 or 20).
// Inputs must share the model shape and the vocabulary; the output holds the
// first input's config and tokenizer, the mean weights (summed in double, in
// argument order) and no optimizer state.
#include "average.h"
#include "checkpoint.h"
#include "tokenizer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: nmt average --output OUT.ckpt IN1.ckpt IN2.ckpt ...\n"
    "  writes the element-wise mean of the inputs' weights; the inputs must have the same\n"
    "  model shape and vocabulary. The output has no optimizer state: translate with it,\n"
    "  or start a new run from it by hand.\n";

int cmd_average(int argc, char **argv) {
    const char *out = NULL;
    const char **in = xcalloc((size_t)argc, sizeof *in);
    int nin = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP, stdout);
            free(in);
            return NMT_OK;
        }
        if (!strcmp(argv[i], "--output")) {
            if (i + 1 >= argc) {
                free(in);
                return err_set(NMT_ERR_INPUT, "average: --output needs a value (see: nmt average --help)");
            }
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(in);
            return err_set(NMT_ERR_INPUT, "average: unknown option '%s' (see: nmt average --help)", argv[i]);
        } else {
            in[nin++] = argv[i];
        }
    }
    if (!out || nin < 1) {
        free(in);
        return err_set(NMT_ERR_INPUT, "average: needs --output OUT and at least one input (see: nmt average --help)");
    }
    Config c0;
    Tokenizer t0;
    Model m0;
    TrainState st0;
    int rc = checkpoint_load(in[0], &c0, &t0, &m0, NULL, &st0);
    if (rc) {
        free(in);
        return rc;
    }
    size_t tl0;
    char *tok0 = tokenizer_serialize(&t0, &tl0);
    double *sum = xcalloc(m0.nparams, sizeof *sum);
    for (size_t j = 0; j < m0.nparams; j++) sum[j] = m0.params[j];
    long step = st0.step;
    for (int i = 1; i < nin && !rc; i++) {
        Config c;
        Tokenizer t;
        Model m;
        TrainState st;
        rc = checkpoint_load(in[i], &c, &t, &m, NULL, &st);
        if (rc) break;
        char diff[512];
        size_t tl;
        char *tok = tokenizer_serialize(&t, &tl);
        if (config_diff(&c0, &c, 1, diff, sizeof diff))
            rc = err_set(NMT_ERR_INPUT, "average: %s is not compatible with %s: %s differ", in[i], in[0], diff);
        else if (tl != tl0 || memcmp(tok, tok0, tl) != 0)
            rc = err_set(NMT_ERR_INPUT, "average: %s has a different vocabulary from %s", in[i], in[0]);
        else
            for (size_t j = 0; j < m0.nparams; j++) sum[j] += m.params[j];
        if (st.step > step) step = st.step;
        free(tok);
        model_free(&m);
        tokenizer_free(&t);
        config_free(&c);
    }
    if (!rc) {
        for (size_t j = 0; j < m0.nparams; j++) m0.params[j] = (real)(sum[j] / nin);
        TrainState st = st0;
        st.step = step;
        rc = checkpoint_save(out, &c0, &t0, &m0, NULL, &st);
        if (!rc) printf("nmt: averaged %d checkpoints into %s\n", nin, out);
    }
    free(sum);
    free(tok0);
    free(in);
    model_free(&m0);
    tokenizer_free(&t0);
    config_free(&c0);
    return rc;
}
