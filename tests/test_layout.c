// test_layout.c — the parameter layout (model/layout.h): the names, order and
// sizes a shape's tensors have, nmt's and the exported file's, written out
// here by hand so that no edit of the one description changes them unseen;
// and model_create's table follows the walk.
#include <criterion/criterion.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <string.h>

#include "model/layout.h"

typedef struct {
    char text[8192];
    size_t len, reals;
} Listing;

// One line per tensor: "nmt rows x cols : file names (T when transposed)".
static int list(void *arg, const LayoutTensor *t) {
    Listing *l = arg;
    char name[64];
    FileNames f;
    layout_name(t, name, sizeof name);
    layout_file_names(t, &f);
    cr_assert_eq(t->offset, l->reals, "%s: not right after the tensor before it", name);
    cr_assert_eq(t->offset % 16, 0);
    l->reals += t->size;
    l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s %zux%zu%s:", name, t->rows, t->cols,
                               f.transpose ? " T" : "");
    for (int p = 0; p < f.parts; p++)
        l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, " %s", f.names[p]);
    l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "\n");
    return 0;
}

static const char *WANT =
    "src_emb 11x8: encoder.embed_tokens.weight\n"
    "tgt_emb 13x8: decoder.embed_tokens.weight\n"
    "out_proj 13x8: decoder.output_projection.weight\n"
    "enc.0.self_attn.wqkv 8x24 T: encoder.layers.0.self_attn.q_proj.weight encoder.layers.0.self_attn.k_proj.weight "
    "encoder.layers.0.self_attn.v_proj.weight\n"
    "enc.0.self_attn.bqkv 1x24: encoder.layers.0.self_attn.q_proj.bias encoder.layers.0.self_attn.k_proj.bias "
    "encoder.layers.0.self_attn.v_proj.bias\n"
    "enc.0.self_attn.wo 8x8 T: encoder.layers.0.self_attn.out_proj.weight\n"
    "enc.0.self_attn.bo 1x8: encoder.layers.0.self_attn.out_proj.bias\n"
    "enc.0.self_attn.rel_k 7x4: encoder.layers.0.self_attn.relative_keys.weight\n"
    "enc.0.self_attn.rel_v 7x4: encoder.layers.0.self_attn.relative_values.weight\n"
    "enc.0.ln1.w 1x8: encoder.layers.0.self_attn_layer_norm.weight\n"
    "enc.0.ln1.b 1x8: encoder.layers.0.self_attn_layer_norm.bias\n"
    "enc.0.ffn.w1 8x5 T: encoder.layers.0.fc1.weight\n"
    "enc.0.ffn.b1 1x5: encoder.layers.0.fc1.bias\n"
    "enc.0.ffn.w2 5x8 T: encoder.layers.0.fc2.weight\n"
    "enc.0.ffn.b2 1x8: encoder.layers.0.fc2.bias\n"
    "enc.0.ln2.w 1x8: encoder.layers.0.final_layer_norm.weight\n"
    "enc.0.ln2.b 1x8: encoder.layers.0.final_layer_norm.bias\n"
    "dec.0.self_attn.wqkv 8x24 T: decoder.layers.0.self_attn.q_proj.weight decoder.layers.0.self_attn.k_proj.weight "
    "decoder.layers.0.self_attn.v_proj.weight\n"
    "dec.0.self_attn.bqkv 1x24: decoder.layers.0.self_attn.q_proj.bias decoder.layers.0.self_attn.k_proj.bias "
    "decoder.layers.0.self_attn.v_proj.bias\n"
    "dec.0.self_attn.wo 8x8 T: decoder.layers.0.self_attn.out_proj.weight\n"
    "dec.0.self_attn.bo 1x8: decoder.layers.0.self_attn.out_proj.bias\n"
    "dec.0.self_attn.rel_k 7x4: decoder.layers.0.self_attn.relative_keys.weight\n"
    "dec.0.self_attn.rel_v 7x4: decoder.layers.0.self_attn.relative_values.weight\n"
    "dec.0.ln1.w 1x8: decoder.layers.0.self_attn_layer_norm.weight\n"
    "dec.0.ln1.b 1x8: decoder.layers.0.self_attn_layer_norm.bias\n"
    "dec.0.cross_attn.wq 8x8 T: decoder.layers.0.encoder_attn.q_proj.weight\n"
    "dec.0.cross_attn.bq 1x8: decoder.layers.0.encoder_attn.q_proj.bias\n"
    "dec.0.cross_attn.wkv 8x16 T: decoder.layers.0.encoder_attn.k_proj.weight "
    "decoder.layers.0.encoder_attn.v_proj.weight\n"
    "dec.0.cross_attn.bkv 1x16: decoder.layers.0.encoder_attn.k_proj.bias decoder.layers.0.encoder_attn.v_proj.bias\n"
    "dec.0.cross_attn.wo 8x8 T: decoder.layers.0.encoder_attn.out_proj.weight\n"
    "dec.0.cross_attn.bo 1x8: decoder.layers.0.encoder_attn.out_proj.bias\n"
    "dec.0.ln2.w 1x8: decoder.layers.0.encoder_attn_layer_norm.weight\n"
    "dec.0.ln2.b 1x8: decoder.layers.0.encoder_attn_layer_norm.bias\n"
    "dec.0.ffn.w1 8x5 T: decoder.layers.0.fc1.weight\n"
    "dec.0.ffn.b1 1x5: decoder.layers.0.fc1.bias\n"
    "dec.0.ffn.w2 5x8 T: decoder.layers.0.fc2.weight\n"
    "dec.0.ffn.b2 1x8: decoder.layers.0.fc2.bias\n"
    "dec.0.ln3.w 1x8: decoder.layers.0.final_layer_norm.weight\n"
    "dec.0.ln3.b 1x8: decoder.layers.0.final_layer_norm.bias\n"
    "enc.ln_final.w 1x8: encoder.layer_norm.weight\n"
    "enc.ln_final.b 1x8: encoder.layer_norm.bias\n"
    "dec.ln_final.w 1x8: decoder.layer_norm.weight\n"
    "dec.ln_final.b 1x8: decoder.layer_norm.bias\n";

static ModelShape shape(void) {
    ModelShape s;
    memset(&s, 0, sizeof s);
    s.d_model = 8, s.heads = 2, s.d_ff = 5, s.enc_layers = 1, s.dec_layers = 1, s.pre_norm = 1;
    s.src_vocab = 11, s.tgt_vocab = 13, s.max_len = 8, s.relative = 1, s.max_rel = 3;
    return s;
}

Test(layout, names_order_and_sizes) {
    ModelShape s = shape();
    static Listing l;
    size_t n;
    cr_assert_eq(layout_walk(&s, list, &l, &n), 0);
    cr_assert_str_eq(l.text, WANT);
    cr_assert_eq(n, l.reals);
}

// Tied and shared: the one matrix is listed once, under the source embedding's name.
Test(layout, tied_and_shared_once) {
    ModelShape s = shape();
    s.tie_output = s.shared_vocab = 1;
    s.tgt_vocab = s.src_vocab;
    static Listing l;
    cr_assert_eq(layout_walk(&s, list, &l, NULL), 0);
    cr_assert(strncmp(l.text, "src_emb 11x8: encoder.embed_tokens.weight\nenc.0.self_attn.wqkv", 62) == 0, "%s",
              l.text);
    cr_assert_null(strstr(l.text, "tgt_emb"));
    cr_assert_null(strstr(l.text, "out_proj "));
}

// model_create's table is the walk: names, offsets, shapes, decay and init.
static int same_as_table(void *arg, const LayoutTensor *t) {
    const Model *m = arg;
    char name[64];
    layout_name(t, name, sizeof name);
    cr_assert_lt(t->index, (size_t)arrlen(m->tensors));
    const Tensor *x = &m->tensors[t->index];
    cr_assert_str_eq(x->name, name);
    cr_assert(x->offset == t->offset && x->rows == t->rows && x->cols == t->cols, "%s", name);
    cr_assert(x->decay == t->decay && x->init_bound == t->init_bound, "%s", name);
    return 0;
}

Test(layout, model_create_follows_it) {
    ModelShape s = shape();
    Model m;
    cr_assert_eq(model_create(&m, &s), 0);
    size_t n;
    cr_assert_eq(layout_walk(&s, same_as_table, &m, &n), 0);
    cr_assert_eq(n, m.nparams);
    model_free(&m);
}

// A visitor's status stops the walk; an overflowing size is refused.
static int stop_at_third(void *arg, const LayoutTensor *t) {
    ++*(int *)arg;
    return t->index == 2 ? 7 : 0;
}

Test(layout, stops_and_overflows) {
    ModelShape s = shape();
    int seen = 0;
    cr_assert_eq(layout_walk(&s, stop_at_third, &seen, NULL), 7);
    cr_assert_eq(seen, 3);
    s.src_vocab = s.tgt_vocab = INT32_MAX;
    s.d_model = INT32_MAX;
    size_t n = 1;
    cr_assert_neq(layout_walk(&s, NULL, NULL, &n), 0);
    cr_assert_eq(n, 0);
}
