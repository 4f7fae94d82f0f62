// train/job.c — under mpirun, every process must run the same job: fingerprints of
// what they share, and the note when a resume changes the step's layout.
#include "train/run.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

// Fingerprints of what every process must share: [0] the training data as
// token ids, [1] the starting point (weights, optimizer state, data cursor).
static void job_fingerprints(const Run *r, uint64_t fp[2]) {
    const Corpus *t = &r->train;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, &t->n, sizeof t->n);
    h = fnv1a(h, t->ids, arrlenu(t->ids) * sizeof *t->ids);
    h = fnv1a(h, t->src_len, t->n * sizeof *t->src_len);
    fp[0] = fnv1a(h, t->tgt_len, t->n * sizeof *t->tgt_len);
    h = fnv1a(0xcbf29ce484222325ULL, r->model.params, r->model.nparams * sizeof(real));
    for (int i = 0; i < r->opt.nstate; i++) h = fnv1a(h, r->opt.state[i], r->opt.n * sizeof(real));
    long cursor[3] = {r->st.step, r->st.epoch, r->st.batch_pos};
    fp[1] = fnv1a(h, cursor, sizeof cursor);
}

// Under mpirun, every process must run rank 0's job: the same resolved config,
// training data and starting point. Refused at the start (exit 2), naming
// each rank that differs and what; rank 0 reports for all.
int run_check_same_job(Run *r) {
    const Comm *cm = r->comm;
    if (cm->size == 1) return NMT_OK;
    char *json = config_to_json(&r->cfg);
    size_t len = strlen(json);
    uint64_t fp[2], fp0[2];
    job_fingerprints(r, fp);
    char *root = xmalloc(len + 2 * sizeof fp + 1);
    memcpy(root, fp, sizeof fp);
    memcpy(root + sizeof fp, json, len + 1);
    size_t rlen = len + sizeof fp;
    comm_bcast_bytes(cm, &root, &rlen);
    memcpy(fp0, root, sizeof fp0);
    char msg[1024] = "";
    Config theirs;
    if (cm->rank != 0 && config_parse(&theirs, root + sizeof fp, "rank 0's config", NULL, 0) == NMT_OK) {
        char diff[900];
        if (config_diff(&r->cfg, &theirs, 0, diff, sizeof diff))
            snprintf(msg, sizeof msg, "rank %d: its config differs from rank 0's: %s (another config file or --set?)",
                     cm->rank, diff);
        config_free(&theirs);
    }
    if (!msg[0] && fp[0] != fp0[0])
        snprintf(msg, sizeof msg, "rank %d: its training data differs from rank 0's (%s, %s: other files on its "
                 "machine?)", cm->rank, r->cfg.train_src, r->cfg.train_tgt);
    if (!msg[0] && fp[1] != fp0[1])
        snprintf(msg, sizeof msg, "rank %d: it starts from other weights than rank 0 (another %s/last.ckpt on its "
                 "machine? train.checkpoint_dir must be one shared directory)", cm->rank, r->cfg.checkpoint_dir);
    free(json);
    free(root);
    char **all = comm_gather_text(cm, msg);
    int bad = comm_or(cm, msg[0] != 0);
    int rc = NMT_OK;
    if (bad && cm->rank == 0) {
        char out[4096] = "not every process runs the same job:";
        for (int k = 0; k < cm->size; k++)
            if (all[k][0]) snprintf(out + strlen(out), sizeof out - strlen(out), " %s;", all[k]);
        out[strlen(out) - 1] = 0;
        rc = err_set(NMT_ERR_INPUT, "%s", out);
    } else if (bad) {
        err_clear();  // rank 0 says it
        rc = NMT_ERR_INPUT;
    }
    for (int k = 0; all && k < cm->size; k++) free(all[k]);
    free(all);
    return rc;
}

// A resumed run's step of micro-batches may differ from its checkpoint's
// (other process count or train.accum_steps): say what that means.
void run_note_layout(Run *r, const char *from) {
    long procs = r->comm->size, g = procs * r->cfg.accum_steps;
    long was = r->st.micro_batches > 0 ? r->st.micro_batches : 1, was_procs = r->st.processes > 0 ? r->st.processes : 1;
    // The sum over micro-batches adds left to right when each process has
    // one micro-batch or there is one process; otherwise in groups.
    int same_order = was == g && ((was_procs == 1 || was_procs == was) ? (procs == 1 || procs == g) : was_procs == procs);
    if (from && r->lead && was != g)
        printf("nmt: note: %ld micro-batches per step now (%ld process%s x train.accum_steps %d), %ld in the "
               "checkpoint's run: the global batch changed; the data order continues where it stopped, but the run "
               "no longer matches an uninterrupted one bit for bit\n", g, procs, procs > 1 ? "es" : "",
               r->cfg.accum_steps, was);
    else if (from && r->lead && !same_order)
        printf("nmt: note: %ld micro-batches per step as before, now from %ld process%s x train.accum_steps %d: their "
               "gradients add in another order, so the run matches an uninterrupted one within float rounding, "
               "not bit for bit\n", g, procs, procs > 1 ? "es" : "", r->cfg.accum_steps);
    r->st.micro_batches = g;
    r->st.processes = procs;
}
