// train/validate.c — validation: loss, greedy BLEU, best.ckpt, early stopping.
#include "train/run.h"
#include "common/util.h"
#include "decode/translate.h"
#include "eval/bleu.h"
#include "train/state.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

// Mean losses over the validation set, in a fixed batch order, with the
// products of the training passes (train.precision).
static void validate(Run *r, double *loss, double *nll) {
    double ls = 0, nl = 0, tok = 0;
    batcher_set_cursor(&r->vb, 0, 0);
    for (size_t i = 0; i < r->vb.nbatches; i++) {
        Batch b;
        batcher_next(&r->vb, &r->valid, &b);
        double n;
        ls += model_forward(&r->model, r->acts, &b, (real)r->cfg.label_smoothing, 0, 0, &n);
        nl += n;
        tok += (double)b.ntok;
    }
    *loss = ls / tok;
    *nll = nl / tok;
}

// Greedy BLEU of the first valid_bleu_lines validation sentences (0 = all).
static int validation_bleu(Run *r, double *bleu) {
    size_t n = (size_t)arrlen(r->vsrc);
    if (r->cfg.valid_bleu_lines > 0 && (size_t)r->cfg.valid_bleu_lines < n) n = (size_t)r->cfg.valid_bleu_lines;
    char **hyp = xcalloc(n + 1, sizeof *hyp);
    DecodeOptions o = decode_defaults();
    // Decoded as `nmt translate` decodes the saved checkpoint: with float
    // products, whatever train.precision the passes use.
    Precision trained = r->model.precision;
    r->model.precision = PRECISION_FP32;
    int rc = translate_lines(&r->model, &r->tok, r->cfg.max_src_len, r->vsrc, n, &o, r->cfg.valid_src, hyp, NULL, NULL);
    r->model.precision = trained;
    BleuStats bs;
    bleu_stats_init(&bs, 0);
    for (size_t i = 0; !rc && i < n; i++) rc = bleu_add(&bs, hyp[i], r->vref[i]);
    for (size_t i = 0; i < n; i++) free(hyp[i]);
    free(hyp);
    if (!rc) *bleu = bleu_result(&bs).score;
    return rc;
}

// Validates, logs, keeps best.ckpt; sets *stop when patience runs out.
int run_validation(Run *r, int *stop) {
    if (!r->have_valid) return NMT_OK;
    double loss, nll, bleu = -1;
    // With train.ema_decay the moving average is what gets validated (and
    // what a checkpoint gives for decoding).
    real *weights = r->model.params;
    if (r->opt.ema >= 0) r->model.params = r->opt.state[r->opt.ema];
    validate(r, &loss, &nll);
    int rc = r->cfg.valid_bleu_lines >= 0 ? validation_bleu(r, &bleu) : NMT_OK;
    r->model.params = weights;
    if (rc) return rc;
    r->last_bleu = bleu;
    int best = r->cfg.best_metric == BEST_BLEU ? bleu > r->st.best_valid_bleu : loss < r->st.best_valid_loss;
    if (loss < r->st.best_valid_loss) r->st.best_valid_loss = loss;
    if (bleu > r->st.best_valid_bleu) r->st.best_valid_bleu = bleu;
    r->st.bad_evals = best ? 0 : r->st.bad_evals + 1;
    // JSON has no inf: a perplexity that overflows is written as null.
    char ppl[32] = "null";
    if (isfinite(exp(nll))) snprintf(ppl, sizeof ppl, "%.9g", exp(nll));
    fprintf(r->log, "{\"step\": %ld, \"valid_loss\": %.9g, \"valid_nll\": %.9g, \"valid_ppl\": %s", r->st.step,
            loss, nll, ppl);
    if (bleu >= 0) fprintf(r->log, ", \"valid_bleu\": %.4f", bleu);
    fprintf(r->log, ", \"elapsed\": %.3f, \"wall\": %.3f}\n", r->st.elapsed, now_seconds() - r->wall0);
    fflush(r->log);
    if (!r->quiet) {
        printf("%sstep %ld | valid loss %.4f | valid ppl %.3f", r->tty ? "\r\033[K" : "", r->st.step, loss, exp(nll));
        if (bleu >= 0) printf(" | valid BLEU %.2f", bleu);
        printf("%s\n", best ? " | best" : "");
        fflush(stdout);
    }
    if (best && run_diverged_now(r)) {
        run_warn_not_saving(r, "best.ckpt");
    } else if (best && !(rc = run_check_finite(r))) {
        char path[4200];
        run_path(path, sizeof path, r->cfg.checkpoint_dir, "best.ckpt");
        rc = train_state_save(path, &r->cfg, &r->tok, &r->model, &r->opt, &r->st);
    }
    if (r->cfg.patience > 0 && r->st.bad_evals >= r->cfg.patience) *stop = 1;
    return rc;
}

// The validation pairs, their batches, and their text for BLEU.
int run_load_validation(Run *r) {
    const Config *c = &r->cfg;
    int rc = corpus_load(&r->valid, &r->tok, c->valid_src, c->valid_tgt, c->max_src_len, c->max_tgt_len);
    if (rc) return rc;
    r->have_valid = 1;
    batcher_init(&r->vb, &r->valid, (size_t)c->batch_tokens, 0, 0);
    rc = read_lines(c->valid_src, &r->vsrc_text, &r->vsrc);
    if (!rc) rc = read_lines(c->valid_tgt, &r->vref_text, &r->vref);
    return rc;
}
