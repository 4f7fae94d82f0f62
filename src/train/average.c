// train/average.c — checkpoint averaging (the paper averages the last 5 or 20).
// Inputs must share the model shape and the vocabulary; the output holds the
// first input's config and tokenizer, the mean weights (summed in double, in
// argument order) and no optimizer state.
#include "train/average.h"
#include "io/checkpoint.h"
#include "train/state.h"
#include "text/tokenizer.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

// Loads a float checkpoint: averaging int8 values would average their rounding.
static int load_float(const char *path, Config *c, Tokenizer *t, Model *m, TrainState *st) {
    int rc = train_state_load(path, c, t, m, NULL, st);
    if (rc || !m->quant) return rc;
    model_free(m);
    tokenizer_free(t);
    config_free(c);
    return err_set(NMT_ERR_INPUT, "average: %s is an int8 checkpoint (made by nmt quantize): average the float "
                   "checkpoints, then quantize the average", path);
}

int checkpoint_average(const char *out, const char *const *in, int nin) {
    Config c0;
    Tokenizer t0;
    Model m0;
    TrainState st0;
    int rc = load_float(in[0], &c0, &t0, &m0, &st0);
    if (rc) return rc;
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
        rc = load_float(in[i], &c, &t, &m, &st);
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
        rc = train_state_save(out, &c0, &t0, &m0, NULL, &st);
    }
    free(sum);
    free(tok0);
    model_free(&m0);
    tokenizer_free(&t0);
    config_free(&c0);
    return rc;
}
