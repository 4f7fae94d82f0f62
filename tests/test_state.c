// test_state.c — the trainer's state as JSON text (train/state.h): the round
// trip is exact, and the text is what checkpoints have always held.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "train/state.h"

static void expect_equal(const TrainState *a, const TrainState *b) {
    cr_assert_eq(a->step, b->step);
    cr_assert_eq(a->epoch, b->epoch);
    cr_assert_eq(a->batch_pos, b->batch_pos);
    cr_assert(a->best_valid_loss == b->best_valid_loss, "best_valid_loss %.17g != %.17g", a->best_valid_loss,
              b->best_valid_loss);
    cr_assert(a->best_valid_bleu == b->best_valid_bleu);
    cr_assert_eq(a->bad_evals, b->bad_evals);
    cr_assert(a->log_loss == b->log_loss && a->log_nll == b->log_nll && a->log_tokens == b->log_tokens);
    cr_assert(a->elapsed == b->elapsed, "elapsed %.17g != %.17g", a->elapsed, b->elapsed);
    cr_assert_eq(a->tokens_seen, b->tokens_seen);
    cr_assert_eq(a->micro_batches, b->micro_batches);
    cr_assert_eq(a->processes, b->processes);
    cr_assert_eq(a->precision, b->precision);
    cr_assert_str_eq(a->init_from, b->init_from);
    cr_assert_eq(a->init_from_step, b->init_from_step);
    cr_assert_eq(a->init_from_crc32, b->init_from_crc32);
}

// Every field set, doubles that need 17 digits: to_json then from_json gives
// them back exactly, and writing again gives the same text.
Test(state, round_trip_is_exact) {
    TrainState a = {.step = 12345, .epoch = 3, .batch_pos = 77, .best_valid_loss = 2.9065231413728259,
                    .best_valid_bleu = 11.862629695564356, .bad_evals = 2, .log_loss = 1.0 / 3, .log_nll = 0.1,
                    .log_tokens = 4096, .elapsed = 68.5127249019996, .tokens_seen = 393799, .micro_batches = 4,
                    .processes = 2, .precision = PRECISION_BF16};
    char *j = train_state_to_json(&a);
    TrainState b;
    cr_assert_eq(train_state_from_json(&b, j, "t"), NMT_OK, "%s", err_msg());
    expect_equal(&a, &b);
    cr_assert(strstr(j, "\"precision\":\"bf16\""), "%s", j);
    char *j2 = train_state_to_json(&b);
    cr_assert_str_eq(j, j2);
    free(j);
    free(j2);
}

// A fresh run's state: best loss +inf (left out of the text, which has no
// infinity, and +inf again when read), best BLEU -1, one micro-batch of one
// process, fp32.
Test(state, fresh_state_and_its_text) {
    TrainState a, b;
    train_state_init(&a);
    cr_assert(isinf(a.best_valid_loss) && a.best_valid_loss > 0);
    cr_assert_eq(a.best_valid_bleu, -1);
    cr_assert_eq(a.micro_batches, 1);
    cr_assert_eq(a.processes, 1);
    cr_assert_eq(a.step, 0);
    cr_assert_eq(a.precision, PRECISION_FP32);
    char *j = train_state_to_json(&a);
    // The text checkpoints hold (io/checkpoint.c wrote it before the state was
    // the trainer's), then the precision, written also when it is fp32.
    cr_assert_str_eq(j, "{\"step\":0,\"epoch\":0,\"batch_pos\":0,\"best_valid_bleu\":-1,\"bad_evals\":0,"
                        "\"log_loss\":0,\"log_nll\":0,\"log_tokens\":0,\"elapsed\":0,\"tokens_seen\":0,"
                        "\"micro_batches\":1,\"processes\":1,\"precision\":\"fp32\"}");
    cr_assert_eq(train_state_from_json(&b, j, "t"), NMT_OK, "%s", err_msg());
    expect_equal(&a, &b);
    free(j);
}

// A checkpoint from before train.precision (its state has no "precision")
// was trained in fp32; a bf16 state reads as bf16.
Test(state, precision_absent_is_fp32) {
    TrainState st;
    memset(&st, 0xff, sizeof st);
    cr_assert_eq(train_state_from_json(&st, "{\"step\":0,\"epoch\":0,\"batch_pos\":0,\"best_valid_bleu\":-1,"
                                            "\"bad_evals\":0,\"log_loss\":0,\"log_nll\":0,\"log_tokens\":0,"
                                            "\"elapsed\":0,\"tokens_seen\":0,\"micro_batches\":1,\"processes\":1}",
                                       "old.ckpt"), NMT_OK, "%s", err_msg());
    cr_assert_eq(st.precision, PRECISION_FP32);
    cr_assert_eq(train_state_from_json(&st, "{\"step\":1,\"epoch\":0,\"batch_pos\":0,\"precision\":\"bf16\"}", "b.ckpt"),
                 NMT_OK, "%s", err_msg());
    cr_assert_eq(st.precision, PRECISION_BF16);
}

// What is not a state is refused, naming the place.
Test(state, refusals) {
    TrainState st;
    err_clear();
    cr_assert_eq(train_state_from_json(&st, "[1]", "p.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "p.ckpt: state section is not a JSON object"), "%s", err_msg());
    err_clear();
    cr_assert_eq(train_state_from_json(&st, "{\"step\":1,\"epoch\":0,\"batch_pos\":0}\n]", "p.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "p.ckpt: state section: bytes after the JSON object (at byte 35 of the section)"), "%s",
              err_msg());
    err_clear();
    cr_assert_eq(train_state_from_json(&st, "{\"step\":1,\"epoch\":0}", "p.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "lacks step/epoch/batch_pos"), "%s", err_msg());
    err_clear();
    cr_assert_eq(train_state_from_json(&st, "{\"step\":1,\"epoch\":0,\"batch_pos\":-1}", "p.ckpt"), NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "batch_pos is -1, not a count"), "%s", err_msg());
    err_clear();
    cr_assert_eq(train_state_from_json(&st, "{\"step\":1,\"epoch\":0,\"batch_pos\":0,\"log_nll\":1e999}", "p.ckpt"),
                 NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "log_nll is not a finite number"), "%s", err_msg());
    // A precision nmt does not know (or not a string) is refused, naming it.
    const char *const bad[] = {"\"fp16\"", "\"\"", "1", "null", "\"BF16\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"step\":1,\"epoch\":0,\"batch_pos\":0,\"precision\":%s}", bad[i]);
        err_clear();
        cr_assert_eq(train_state_from_json(&st, json, "p.ckpt"), NMT_ERR_INPUT, "%s", json);
        cr_assert(strstr(err_msg(), "p.ckpt: state section: precision is not \"fp32\" or \"bf16\""), "%s", err_msg());
    }
}

// A fine-tuning run's origin (train.init_from): written only when set (a run
// from scratch keeps the text above), read back exactly, and refused when it
// is not a path, its step not a count or its CRC-32 beyond 32 bits.
Test(state, init_from_round_trip_and_refusals) {
    TrainState a, b;
    train_state_init(&a);
    snprintf(a.init_from, sizeof a.init_from, "%s", "runs/\"base\"/last.ckpt");
    a.init_from_step = 2300;
    a.init_from_crc32 = 0xfedcba98L;
    char *j = train_state_to_json(&a);
    cr_assert(strstr(j, ",\"init_from\":\"runs/\\\"base\\\"/last.ckpt\",\"init_from_step\":2300,"
                        "\"init_from_crc32\":4275878552}"), "%s", j);
    cr_assert_eq(train_state_from_json(&b, j, "t"), NMT_OK, "%s", err_msg());
    expect_equal(&a, &b);
    free(j);
    const char *const bad[] = {"\"init_from\":\"\"", "\"init_from\":1", "\"init_from\":\"a\",\"init_from_step\":-1",
                               "\"init_from\":\"a\",\"init_from_crc32\":4294967296"};
    const char *const why[] = {"init_from is not a path", "init_from is not a path", "init_from_step is -1, not a count",
                               "init_from_crc32 is not a CRC-32"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"step\":1,\"epoch\":0,\"batch_pos\":0,%s}", bad[i]);
        err_clear();
        cr_assert_eq(train_state_from_json(&b, json, "p.ckpt"), NMT_ERR_INPUT, "%s", json);
        cr_assert(strstr(err_msg(), why[i]), "%s: %s", json, err_msg());
    }
}
