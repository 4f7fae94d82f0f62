// test_decode_select.c — model_decode_select (model/decode_state.h): after rows
// are selected (a permutation, duplicates that fork a history, rows
// dropped, rows of other sources), each row's next logits are those of a
// fresh decode of one row fed that row's history directly, bit for bit;
// over several selects in a row, with absolute and relative positions.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "model/decode_state.h"
#include "common/util.h"

enum { V = 25, MAXT = 8, ROWS = 6 };

static void random_model(Model *m, int relative) {
    ModelShape s = {.d_model = 24, .heads = 3, .d_ff = 40, .enc_layers = 2, .dec_layers = 2, .pre_norm = relative,
                    .tie_output = 1, .src_vocab = 30, .tgt_vocab = V, .max_len = 64, .relative = relative,
                    .max_rel = 3};
    model_create(m, &s);
    model_init_params(m, 31 + (uint64_t)relative);
}

// Two sources (lengths 5 and 3 with EOS, padded to 5), three rows each.
static const int SRC[2 * 5] = {7, 12, 9, 20, TOK_EOS, 15, 4, TOK_EOS, TOK_PAD, TOK_PAD};
static const int SRC_LEN[2] = {5, 3};
enum { GROUP = 3 };

typedef struct {
    int src;            // which source
    int hist[MAXT];     // tokens fed so far (hist[0] = BOS)
    size_t len;
} Row;

// The logits after feeding row r's history and then `tok`, by a decode of that row alone.
static real *fresh_logits(Model *m, const Row *r, int tok) {
    int len = SRC_LEN[r->src];
    DecodeState *d = decode_state_create(m, 1, 1, (size_t)len, MAXT);
    model_decode_begin(m, d, SRC + r->src * 5, &len, 1, (size_t)len);
    const real *x = NULL;
    for (size_t t = 0; t <= r->len; t++) x = model_decode_step(m, d, t < r->len ? &r->hist[t] : &tok, t);
    real *out = xmalloc(V * sizeof *out);
    memcpy(out, x, V * sizeof *out);
    decode_state_free(d);
    return out;
}

// Selects rows `from` (of the current `rows`), feeds each tokens[r], and
// checks each row's logits against a fresh decode; rows follow.
static void select_and_check(Model *m, DecodeState *d, Row *rows, size_t *nrows, const int *from, size_t n,
                             const int *tokens) {
    size_t len = rows[0].len;  // every row has fed as many tokens
    Row next[ROWS];
    for (size_t r = 0; r < n; r++) next[r] = rows[from[r]];
    model_decode_select(d, from, n, len);
    const real *x = model_decode_step(m, d, tokens, len);
    for (size_t r = 0; r < n; r++) {
        real *want = fresh_logits(m, &next[r], tokens[r]);
        cr_assert(!memcmp(x + r * V, want, V * sizeof *want), "position %zu, row %zu (from %d): logits differ", len,
                  r, from[r]);
        free(want);
        next[r].hist[len] = tokens[r];
        next[r].len = len + 1;
    }
    memcpy(rows, next, n * sizeof *rows);
    *nrows = n;
}

static void selects_match_fresh_decodes(int relative) {
    Model m;
    random_model(&m, relative);
    DecodeState *d = decode_state_create(&m, 2, GROUP, 5, MAXT);
    model_decode_begin(&m, d, SRC, SRC_LEN, 2, 5);
    // Position 0: every row feeds BOS; position 1: each its own token.
    Row rows[ROWS];
    size_t n = ROWS;
    int bos[ROWS] = {TOK_BOS, TOK_BOS, TOK_BOS, TOK_BOS, TOK_BOS, TOK_BOS};
    for (size_t r = 0; r < ROWS; r++) rows[r] = (Row){(int)r / GROUP, {TOK_BOS}, 0};
    select_and_check(&m, d, rows, &n, (int[]){0, 1, 2, 3, 4, 5}, ROWS, bos);
    select_and_check(&m, d, rows, &n, (int[]){0, 1, 2, 3, 4, 5}, ROWS, (int[]){5, 6, 7, 8, 9, 10});
    // A permutation across sources.
    select_and_check(&m, d, rows, &n, (int[]){5, 3, 0, 4, 2, 1}, ROWS, (int[]){11, 12, 13, 14, 15, 16});
    // Duplicates (forks) and dropped rows.
    select_and_check(&m, d, rows, &n, (int[]){4, 4, 1, 0, 4}, 5, (int[]){17, 18, 19, 20, 21});
    // Fewer rows, one of them forked three ways; then one row left.
    select_and_check(&m, d, rows, &n, (int[]){2, 0, 2, 2}, 4, (int[]){22, 23, 24, 5});
    select_and_check(&m, d, rows, &n, (int[]){3}, 1, (int[]){6});
    // One row forked back into all the slots.
    select_and_check(&m, d, rows, &n, (int[]){0, 0, 0, 0, 0, 0}, ROWS, (int[]){7, 8, 9, 10, 11, 12});
    decode_state_free(d);
    model_free(&m);
}

Test(decode_select, rows_continue_their_histories_bit_for_bit) { selects_match_fresh_decodes(0); }
Test(decode_select, rows_continue_their_histories_relative_positions) { selects_match_fresh_decodes(1); }
