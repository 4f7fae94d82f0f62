// train/log.c — train_log.jsonl (its records, trimmed to the run being continued)
// and the progress lines on the terminal.
#include "train/run.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// After a crash the log may hold records from steps the checkpoint never saw:
// drop them, so the log always agrees with the run being continued.
// The "checkpoint" records kept are this run's step-N.ckpt files (its lineage).
int run_trim_log(Run *r, const char *path, long step, int quiet) {
    if (!run_file_exists(path)) return NMT_OK;
    size_t len;
    char *text = read_file_text(path, &len);
    if (!text) return err_code();
    char *out = xmalloc(len + 1), *o = out;
    long dropped = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        const char *k = strstr(p, "\"step\": ");
        long s = k && k < p + n ? strtol(k + 8, NULL, 10) : 0;
        if (s <= step) {
            memcpy(o, p, n);
            o += n;
            const char *ck = strstr(p, "\"checkpoint\": \"step-");
            if (ck && ck < p + n && !run_in_lineage(r, s)) arrput(r->lineage, s);
        } else {
            dropped++;
        }
        p += n;
    }
    int rc = NMT_OK;
    if (dropped) {
        rc = write_file_atomic(path, out, (size_t)(o - out));
        if (!rc && !quiet) printf("nmt: dropped %ld log records past step %ld (from an interrupted run)\n", dropped, step);
    }
    free(text);
    free(out);
    return rc;
}

// Writes a training record; counts it as diverged (and warns) when its loss is
// train.diverge_factor times the starting loss or more.
// cores: CPU seconds per wall second since the last record (all threads).
void run_write_log(Run *r, double lr, double gnorm, double tok_per_s, double cores) {
    double loss = r->st.log_loss / r->st.log_tokens, nll = r->st.log_nll / r->st.log_tokens;
    r->last_loss = loss;
    fprintf(r->log,
            "{\"step\": %ld, \"epoch\": %ld, \"loss\": %.9g, \"nll\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
            "\"tokens_per_s\": %.1f, \"elapsed\": %.3f, \"cpu_cores\": %.2f, \"precision\": \"%s\"}\n",
            r->st.step, r->st.epoch, loss, nll, lr, gnorm, tok_per_s, r->st.elapsed, cores,
            precision_name(r->model.precision));
    fflush(r->log);
    if (!r->quiet)
        printf(exp(nll) < 1e9 ? "%sstep %ld/%d | epoch %ld | loss %.4f | ppl %.2f | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d\n"
                              : "%sstep %ld/%d | epoch %ld | loss %.4f | ppl %.3g | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d\n",
               r->tty ? "\r\033[K" : "", r->st.step, r->cfg.max_steps, r->st.epoch + 1, loss, exp(nll), lr, gnorm,
               tok_per_s, cores, omp_get_max_threads());
    fflush(stdout);
    r->st.log_loss = r->st.log_nll = r->st.log_tokens = 0;
    if (!run_loss_diverged(r, loss)) {
        r->bad_records = 0;
        return;
    }
    r->bad_records++;
    fprintf(stderr,
            "%snmt: warning: step %ld: training loss %.4g is %.3g times where training starts (%.3g = ln of the "
            "target vocabulary)%s: the run looks diverged (%d of train.diverge_patience %d log records); no checkpoint "
            "is written while it is\n",
            r->tty && !r->quiet ? "\r\033[K" : "", r->st.step, loss, loss / run_start_loss(r), run_start_loss(r),
            isfinite(exp(nll)) ? "" : ", perplexity overflows", r->bad_records, r->cfg.diverge_patience);
}

void run_log_origin(Run *r) {
    cJSON *path = cJSON_CreateString(r->st.init_from);
    char *quoted = cJSON_PrintUnformatted(path);
    fprintf(r->log, "{\"step\": 0, \"init_from\": %s, \"init_from_step\": %ld, \"init_from_crc32\": \"%08lx\"}\n",
            quoted, r->st.init_from_step, r->st.init_from_crc32);
    fflush(r->log);
    cJSON_free(quoted);
    cJSON_Delete(path);
}

void run_format_duration(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

// The live progress line on a terminal (rewritten in place, at most 4 times a second).
// cores: CPU seconds per wall second (well below the thread count: the machine is shared).
void run_progress(Run *r, double loss, double lr, double gnorm, double tok_s, double cores, double sec_per_step) {
    char eta[32];
    run_format_duration(eta, sizeof eta, sec_per_step * (double)(r->cfg.max_steps - r->st.step));
    printf("\r\033[Kstep %ld/%d | epoch %ld | loss %.4f | lr %.3g | |g| %.3f | %.0f tok/s | cpu %.1f/%d | ETA %s",
           r->st.step, r->cfg.max_steps, r->st.epoch + 1, loss, lr, gnorm, tok_s, cores, omp_get_max_threads(), eta);
    fflush(stdout);
}
