// test_train.c — end-to-end: the copy task learns and decodes exactly;
// losses and weights are bit-identical across thread counts and across a
// stop and resume.
#include <criterion/criterion.h>
#include <omp.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"
#include "decode/search.h"
#include "common/rng.h"
#include "train/train.h"
#include "common/util.h"
#include "copy_corpus.h"

static char *make_tmpdir(void) {
    char *d = xstrdup("/tmp/nmt-test-XXXXXX");
    cr_assert(mkdtemp(d));
    return d;
}

static void write_config(const char *dir, const char *extra) {
    char path[512];
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "{\"model\": {\"d_model\": 32, \"heads\": 2, \"d_ff\": 64, \"encoder_layers\": 1, \"decoder_layers\": 1,"
            " \"dropout\": 0.1, \"attention_dropout\": 0.1, \"ffn_dropout\": 0.1},"
            " \"data\": {\"train_src\": \"%s/train.src\", \"train_tgt\": \"%s/train.tgt\"},"
            " \"train\": {\"max_steps\": 40, \"batch_tokens\": 400, \"warmup_steps\": 50, \"lr_scale\": 1,"
            " \"log_every\": 5, \"save_every\": 0, \"checkpoint_dir\": \"%s/ck\", \"clip_norm\": 1.0 %s}}\n",
            dir, dir, dir, extra);
    fclose(f);
}

static int run_train(const char *dir, const char *const *sets, int nset) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/cfg.json", dir);
    TrainArgs a = {cfg, sets, nset, NULL, 1, 0, NULL};
    err_clear();
    int rc = train_run(&a);
    cr_assert_eq(rc, 0, "training failed: %s", err_msg());
    return rc;
}

// The "loss" values of train_log.jsonl, as text (so bits are compared).
static char **log_losses(const char *ckdir) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/train_log.jsonl", ckdir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no %s", path);
    char **out = NULL;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "\"loss\": ");
        if (!p) continue;
        char *q = strchr(p + 8, ',');
        *q = 0;
        char *step = strstr(line, "\"step\": ");
        char buf[256];
        snprintf(buf, sizeof buf, "%ld:%s", strtol(step + 8, NULL, 10), p + 8);
        arrput(out, xstrdup(buf));
    }
    fclose(f);
    return out;
}

// The params section of a checkpoint (malloc'ed copy).
static void *params_of(const char *path, uint64_t *n) {
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, path), 0, "%s", err_msg());
    const void *p = ckpt_section(f, "params", n);
    void *copy = xmalloc(*n);
    memcpy(copy, p, *n);
    ckpt_close(f);
    return copy;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(train, copy_task_learns_and_decodes_exactly, .timeout = 120) {
    char *dir = make_tmpdir();
    write_copy_corpus(dir, "train", 2000, 10, 8, 11);
    write_copy_corpus(dir, "test", 50, 10, 8, 12);
    write_config(dir, "");
    const char *sets[] = {"train.max_steps=600", "model.dropout=0", "model.attention_dropout=0", "model.ffn_dropout=0",
                          "train.lr_schedule=inverse_sqrt", "train.lr=0.01", "train.warmup_steps=50"};
    run_train(dir, sets, 7);
    char ck[512], tp[512];
    snprintf(ck, sizeof ck, "%s/ck/last.ckpt", dir);
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
    cr_assert_eq(train_state_load(ck, &c, &t, &m, NULL, &st), 0, "%s", err_msg());
    cr_assert_eq(st.step, 600);
    snprintf(tp, sizeof tp, "%s/test.src", dir);
    char *text = read_file_text(tp, NULL);
    char **lines = NULL, *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) arrput(lines, l);
    int n = (int)arrlen(lines);
    int **src = xcalloc((size_t)n, sizeof *src);
    for (int i = 0; i < n; i++) cr_assert_eq(tokenizer_encode(&t, SIDE_SRC, lines[i], &src[i], "test", i + 1), 0);
    DecodeOptions o = decode_defaults();
    o.batch = 16;
    Hypothesis *out = xcalloc((size_t)n, sizeof *out), *out1 = xcalloc((size_t)n, sizeof *out1);
    translate_ids(&m, src, (size_t)n, &o, out);
    // Decoding one sentence at a time gives the same outputs as batches of 16.
    o.batch = 1;
    translate_ids(&m, src, (size_t)n, &o, out1);
    int exact = 0;
    for (int i = 0; i < n; i++) {
        char *s = tokenizer_decode(&t, out[i].ids, (size_t)arrlen(out[i].ids));
        exact += strcmp(s, lines[i]) == 0;
        cr_assert(arrlen(out[i].ids) == arrlen(out1[i].ids) &&
                      !memcmp(out[i].ids, out1[i].ids, (size_t)arrlen(out[i].ids) * sizeof(int)),
                  "sentence %d decodes differently alone and in a batch", i);
        free(s);
        arrfree(out[i].ids);
        arrfree(out1[i].ids);
        arrfree(src[i]);
    }
    cr_assert_eq(exact, n, "copy task: only %d of %d test sequences reproduced exactly", exact, n);
    free(src);
    free(out);
    free(out1);
    arrfree(lines);
    free(text);
    model_free(&m);
    tokenizer_free(&t);
    config_free(&c);
    rm_rf(dir);
    free(dir);
}

// precision: the value of train.precision.
static void same_bits_with_threads(const char *precision) {
    char *dir = make_tmpdir();
    write_copy_corpus(dir, "train", 400, 12, 10, 21);
    write_config(dir, "");
    char d1[512], d2[512], prec[64];
    snprintf(d1, sizeof d1, "train.checkpoint_dir=%s/t1", dir);
    snprintf(d2, sizeof d2, "train.checkpoint_dir=%s/t2", dir);
    snprintf(prec, sizeof prec, "train.precision=%s", precision);
    const char *s1[] = {d1, prec};
    omp_set_num_threads(1);
    run_train(dir, s1, 2);
    s1[0] = d2;
    omp_set_num_threads(2);
    run_train(dir, s1, 2);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/t1", dir);
    snprintf(p2, sizeof p2, "%s/t2", dir);
    char **l1 = log_losses(p1), **l2 = log_losses(p2);
    cr_assert_eq(arrlen(l1), 8);
    cr_assert_eq(arrlen(l1), arrlen(l2));
    for (int i = 0; i < (int)arrlen(l1); i++) cr_assert_str_eq(l1[i], l2[i], "loss differs between 1 and 2 threads");
    uint64_t n1, n2;
    snprintf(p1, sizeof p1, "%s/t1/last.ckpt", dir);
    snprintf(p2, sizeof p2, "%s/t2/last.ckpt", dir);
    void *w1 = params_of(p1, &n1), *w2 = params_of(p2, &n2);
    cr_assert(n1 == n2 && memcmp(w1, w2, n1) == 0, "weights differ between 1 and 2 threads");
    free(w1);
    free(w2);
    for (int i = 0; i < (int)arrlen(l1); i++) free(l1[i]), free(l2[i]);
    arrfree(l1);
    arrfree(l2);
    rm_rf(dir);
    free(dir);
}

Test(train, same_bits_with_one_and_two_threads, .timeout = 120) { same_bits_with_threads("fp32"); }
Test(train, bf16_same_bits_with_one_and_two_threads, .timeout = 120) { same_bits_with_threads("bf16"); }

static void resume_bit_exactly(const char *precision) {
    char *dir = make_tmpdir();
    write_copy_corpus(dir, "train", 300, 12, 10, 31);
    write_config(dir, "");  // dropout on: the resumed run must regenerate the same masks
    char a[512], b[512], prec[64];
    snprintf(a, sizeof a, "train.checkpoint_dir=%s/full", dir);
    snprintf(b, sizeof b, "train.checkpoint_dir=%s/split", dir);
    snprintf(prec, sizeof prec, "train.precision=%s", precision);
    const char *full[] = {a, "train.max_steps=40", prec};
    run_train(dir, full, 3);
    // Stop at 17 (not a multiple of log_every: the log accumulators must survive), then resume.
    const char *first[] = {b, "train.max_steps=17", prec}, *second[] = {b, "train.max_steps=40", prec};
    run_train(dir, first, 3);
    run_train(dir, second, 3);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/full", dir);
    snprintf(p2, sizeof p2, "%s/split", dir);
    char **l1 = log_losses(p1), **l2 = log_losses(p2);
    cr_assert_eq(arrlen(l1), 8);
    cr_assert_eq(arrlen(l2), 8);
    for (int i = 0; i < 8; i++) cr_assert_str_eq(l1[i], l2[i], "loss differs after resume");
    uint64_t n1, n2;
    snprintf(p1, sizeof p1, "%s/full/last.ckpt", dir);
    snprintf(p2, sizeof p2, "%s/split/last.ckpt", dir);
    void *w1 = params_of(p1, &n1), *w2 = params_of(p2, &n2);
    cr_assert(n1 == n2 && memcmp(w1, w2, n1) == 0, "weights differ after resume");
    free(w1);
    free(w2);
    for (int i = 0; i < 8; i++) free(l1[i]), free(l2[i]);
    arrfree(l1);
    arrfree(l2);
    rm_rf(dir);
    free(dir);
}

Test(train, resume_continues_bit_exactly, .timeout = 120) { resume_bit_exactly("fp32"); }
Test(train, bf16_resume_continues_bit_exactly, .timeout = 120) { resume_bit_exactly("bf16"); }
