// train/diverge.c — never lose good work: a run that diverged or made a value
// non-finite is stopped before it saves, with a message that names the last good checkpoint.
#include "train/run.h"
#include "common/util.h"
#include "io/checkpoint.h"

#include <math.h>
#include <stdio.h>

void run_describe_good(const Run *r, char *buf, size_t n) {
    if (r->good_step < 0) snprintf(buf, n, "no checkpoint of this run was written");
    else snprintf(buf, n, "the last good checkpoint is %s (step %ld)", r->good_path, r->good_step);
}

// Before anything is saved: every weight and every optimizer state value must
// be finite. (Per step, the loop (train.c) checks the loss and the gradient norm,
// which are computed anyway: with a finite gradient Adam's update is finite;
// this scan, at save time only, catches whatever else made a value non-finite,
// e.g. an SGD update that overflowed.)
int run_check_finite(Run *r) {
    if (!checkpoint_check_finite(&r->model, &r->opt, "the model in memory")) return NMT_OK;
    char what[512], good[4400];
    snprintf(what, sizeof what, "%s", err_msg());
    err_clear();
    run_describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: values are not finite after the update (%s); not saved, and no checkpoint was pruned: "
                   "%s. Likely cause: the optimizer's update overflowed (learning rate too high for these gradients): "
                   "lower train.lr or train.lr_scale, set train.clip_norm, or lengthen train.warmup_steps, then resume",
                   r->st.step, what, good);
}

// Where a fresh model's loss starts: a uniform guess over the target vocabulary.
double run_start_loss(const Run *r) { return log((double)r->model.s.tgt_vocab); }

// A mean loss per token that says the run diverged (NaN included).
int run_loss_diverged(const Run *r, double loss) {
    return r->cfg.diverge_factor > 0 && !(loss <= r->cfg.diverge_factor * run_start_loss(r));
}

// Is the run diverged now: its last log record, or the steps since then?
int run_diverged_now(const Run *r) {
    if (r->bad_records > 0) return 1;
    return r->st.log_tokens > 0 && run_loss_diverged(r, r->st.log_loss / r->st.log_tokens);
}

void run_warn_not_saving(const Run *r, const char *what) {
    fprintf(stderr, "%snmt: warning: step %ld: not writing %s: the run looks diverged (see above)\n",
            r->tty && !r->quiet ? "\r\033[K" : "", r->st.step, what);
}

int run_diverged_error(const Run *r, const char *when) {
    char good[4400];
    run_describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: training diverged (%s; last logged loss %.4g, above train.diverge_factor %g x the "
                   "starting loss %.3g); stopped without saving, and no checkpoint was pruned: %s. Lower train.lr or "
                   "train.lr_scale, set train.clip_norm or lengthen train.warmup_steps, then resume",
                   r->st.step, when, r->last_loss, r->cfg.diverge_factor, run_start_loss(r), good);
}

// The error for a step whose loss or gradient norm is not finite.
int run_nonfinite_step_error(Run *r, double loss, double gnorm) {
    char good[4400];
    run_describe_good(r, good, sizeof good);
    return err_set(NMT_ERR_RUNTIME,
                   "step %ld: %s is not finite (%g), so this step's update made weights non-finite; nothing "
                   "from it was saved and no checkpoint was pruned: %s. Likely cause: the learning rate is too "
                   "high or the gradients exploded: lower train.lr or train.lr_scale, set train.clip_norm, or "
                   "lengthen train.warmup_steps, then resume",
                   r->st.step, isfinite(loss) ? "the gradient norm" : "the loss", isfinite(loss) ? gnorm : loss, good);
}
