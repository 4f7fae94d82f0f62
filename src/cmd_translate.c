// cmd_translate.c — `nmt translate` (stdin -> stdout) and `nmt eval` (files -> BLEU).
#include "cmd_translate.h"
#include "attnpng.h"
#include "bleu.h"
#include "checkpoint.h"
#include "data.h"
#include "decode_state.h"
#include "translate.h"
#include "util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TRANSLATE_HELP =
    "usage: nmt translate --checkpoint FILE [options] < SOURCE > TRANSLATION\n"
    "  reads sentences from stdin (UTF-8, one per line), writes one translation per line, in order\n"
    "  --checkpoint FILE      a checkpoint written by nmt train (required)\n"
    "  --beam K               beam size; 1 = greedy (default 1)\n"
    "  --alpha A              length penalty ((5+len)/6)^A in beam search (default 0.6)\n"
    "  --nbest N              print N hypotheses per sentence as 'index ||| text ||| score' (default 1)\n"
    "  --batch N              sentences decoded together (default 32); the output does not depend on it\n"
    "  --max-len-a A          output length limit A * source length + B (default 1.5)\n"
    "  --max-len-b B          (default 10)\n"
    "  --attention-png FILE   for one input sentence: draw the last decoder layer's cross-attention\n"
    "                         (averaged over heads) as a heatmap, source along the top, output down the side\n"
    "  --attention-heads      with --attention-png: a grid of every head plus their average\n";

static const char *EVAL_HELP =
    "usage: nmt eval --checkpoint FILE --src SOURCE --ref REFERENCE [options]\n"
    "  translates SOURCE and prints corpus BLEU (sacreBLEU defaults) and chrF2 against REFERENCE\n"
    "  --checkpoint FILE      a checkpoint written by nmt train (required)\n"
    "  --src FILE, --ref FILE source sentences and their reference translations (required)\n"
    "  --output FILE          also write the translations to FILE\n"
    "  --beam K, --alpha A, --batch N, --max-len-a A, --max-len-b B   as for nmt translate\n"
    "  --lowercase            case-insensitive BLEU\n";

typedef struct {
    const char *checkpoint, *src, *ref, *output, *attention_png;
    int lowercase, attention_heads;
    DecodeOptions o;
} Args;

static int parse_num(const char *cmd, const char *opt, const char *v, double lo, double hi, int whole, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi) || (whole && d != floor(d)))
        return err_set(NMT_ERR_INPUT, "%s %s: '%s' is not a%s number in [%g, %g]", cmd, opt, v,
                       whole ? " whole" : "", lo, hi);
    *out = d;
    return NMT_OK;
}

// Options common to translate and eval; eval adds --src/--ref/--output/--lowercase.
static int parse_args(Args *a, int argc, char **argv, int eval, const char *help) {
    memset(a, 0, sizeof *a);
    a->o = decode_defaults();
    const char *cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            fputs(help, stdout);
            return -1;
        }
        if (eval && !strcmp(opt, "--lowercase")) {
            a->lowercase = 1;
            continue;
        }
        if (!eval && !strcmp(opt, "--attention-heads")) {
            a->attention_heads = 1;
            continue;
        }
        int known = !strcmp(opt, "--checkpoint") || !strcmp(opt, "--beam") || !strcmp(opt, "--alpha") ||
                    !strcmp(opt, "--nbest") || !strcmp(opt, "--batch") || !strcmp(opt, "--max-len-a") ||
                    !strcmp(opt, "--max-len-b") || (!eval && !strcmp(opt, "--attention-png")) ||
                    (eval && (!strcmp(opt, "--src") || !strcmp(opt, "--ref") || !strcmp(opt, "--output")));
        if (!known) return err_set(NMT_ERR_INPUT, "%s: unknown option '%s' (see: nmt %s --help)", cmd, opt, cmd);
        if (i + 1 >= argc) return err_set(NMT_ERR_INPUT, "%s: %s needs a value (see: nmt %s --help)", cmd, opt, cmd);
        const char *v = argv[++i];
        double d = 0;
        int rc = NMT_OK;
        if (!strcmp(opt, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(opt, "--src")) a->src = v;
        else if (!strcmp(opt, "--ref")) a->ref = v;
        else if (!strcmp(opt, "--output")) a->output = v;
        else if (!strcmp(opt, "--attention-png")) a->attention_png = v;
        else if (!strcmp(opt, "--beam") && !(rc = parse_num(cmd, opt, v, 1, 256, 1, &d))) a->o.beam = (int)d;
        else if (!strcmp(opt, "--alpha") && !(rc = parse_num(cmd, opt, v, 0, 10, 0, &d))) a->o.alpha = d;
        else if (!strcmp(opt, "--nbest") && !(rc = parse_num(cmd, opt, v, 1, 256, 1, &d))) a->o.nbest = (int)d;
        else if (!strcmp(opt, "--batch") && !(rc = parse_num(cmd, opt, v, 1, 4096, 1, &d))) a->o.batch = (int)d;
        else if (!strcmp(opt, "--max-len-a") && !(rc = parse_num(cmd, opt, v, 0, 100, 0, &d))) a->o.max_len_a = d;
        else if (!strcmp(opt, "--max-len-b") && !(rc = parse_num(cmd, opt, v, 0, 10000, 1, &d))) a->o.max_len_b = (int)d;
        if (rc) return rc;
    }
    if (!a->checkpoint) return err_set(NMT_ERR_INPUT, "%s: --checkpoint FILE is required (see: nmt %s --help)", cmd, cmd);
    if (eval && (!a->src || !a->ref))
        return err_set(NMT_ERR_INPUT, "%s: --src and --ref are required (see: nmt %s --help)", cmd, cmd);
    if (a->o.nbest > a->o.beam)
        return err_set(NMT_ERR_INPUT, "%s: --nbest (%d) cannot exceed --beam (%d)", cmd, a->o.nbest, a->o.beam);
    return NMT_OK;
}

typedef struct {
    Config c;
    Tokenizer t;
    Model m;
} Loaded;

static int load(Loaded *l, const char *path) {
    TrainState st;
    return checkpoint_load(path, &l->c, &l->t, &l->m, NULL, &st);
}

static void unload(Loaded *l) {
    model_free(&l->m);
    tokenizer_free(&l->t);
    config_free(&l->c);
}

// Force-decodes the chosen output of one sentence and draws the last decoder
// layer's cross-attention at every output position.
static int draw_attention(Loaded *l, const Args *a, const char *line) {
    int *src = NULL, *out = NULL;
    int rc = tokenizer_encode(&l->t, SIDE_SRC, line, &src, "stdin", 1);
    if (rc) return rc;
    if (arrlen(src) > l->c.max_src_len) arrsetlen(src, l->c.max_src_len);
    Hypothesis h = {NULL, 0, 0};
    DecodeOptions o = a->o;
    o.nbest = 1;
    translate_ids(&l->m, &src, 1, &o, &h);
    size_t S = (size_t)arrlen(src) + 1, T = (size_t)arrlen(h.ids) + 1, H = (size_t)l->m.s.heads;
    for (size_t i = 0; i + 1 < S; i++) arrput(out, src[i]);
    arrput(out, TOK_EOS);
    int slen = (int)S;
    DecodeState *d = decode_state_create(&l->m, 1, 1, S, T + 1);
    model_decode_begin(&l->m, d, out, &slen, 1, S);
    float *w = xcalloc(H * T * S, sizeof *w);  // (heads, T, S)
    int tok = TOK_BOS;
    for (size_t t = 0; t < T; t++) {
        model_decode_step(&l->m, d, &tok, t);
        const real *p = model_decode_cross_attention(d);
        for (size_t hh = 0; hh < H; hh++)
            for (size_t j = 0; j < S; j++) w[(hh * T + t) * S + j] = (float)p[hh * S + j];
        if (t + 1 < T) tok = h.ids[t];
    }
    const char **rows = xcalloc(T, sizeof *rows), **cols = xcalloc(S, sizeof *cols);
    for (size_t t = 0; t < T; t++) rows[t] = t + 1 < T ? tokenizer_token(&l->t, SIDE_TGT, h.ids[t]) : "</s>";
    for (size_t j = 0; j < S; j++) cols[j] = j + 1 < S ? tokenizer_token(&l->t, SIDE_SRC, src[j]) : "</s>";
    char title[160];
    snprintf(title, sizeof title, "cross-attention, decoder layer %d", l->m.s.dec_layers);
    if (a->attention_heads) {
        rc = attention_grid_png(a->attention_png, w, (int)H, (int)T, (int)S, rows, cols, title);
    } else {
        float *avg = xcalloc(T * S, sizeof *avg);
        for (size_t i = 0; i < T * S; i++) {
            double sum = 0;
            for (size_t hh = 0; hh < H; hh++) sum += w[hh * T * S + i];
            avg[i] = (float)(sum / (double)H);
        }
        snprintf(title, sizeof title, "cross-attention, decoder layer %d, mean of %zu heads", l->m.s.dec_layers, H);
        rc = attention_png(a->attention_png, avg, (int)T, (int)S, rows, cols, title);
        free(avg);
    }
    free(rows);
    free(cols);
    free(w);
    decode_state_free(d);
    arrfree(h.ids);
    arrfree(src);
    arrfree(out);
    return rc;
}

int cmd_translate(int argc, char **argv) {
    Args a;
    int rc = parse_args(&a, argc, argv, 0, TRANSLATE_HELP);
    if (rc) return rc < 0 ? NMT_OK : rc;
    Loaded l;
    rc = load(&l, a.checkpoint);
    if (rc) return rc;
    // All of stdin is read (and checked) before anything is written.
    char *text = NULL, **lines = NULL;
    rc = read_lines("/dev/stdin", &text, &lines);
    size_t n = (size_t)arrlen(lines), nb = (size_t)a.o.nbest;
    char **out = xcalloc(n * nb + 1, sizeof *out);
    double *scores = xcalloc(n * nb + 1, sizeof *scores);
    if (!rc && a.attention_png && n != 1)
        rc = err_set(NMT_ERR_INPUT, "translate: --attention-png needs exactly one input sentence (got %zu)", n);
    if (!rc) rc = translate_lines(&l.m, &l.t, l.c.max_src_len, lines, n, &a.o, "stdin", out, scores, NULL);
    if (!rc && a.attention_png) rc = draw_attention(&l, &a, lines[0]);
    if (!rc) {
        for (size_t i = 0; i < n * nb; i++) {
            if (nb > 1) printf("%zu ||| %s ||| %.6f\n", i / nb, out[i], scores[i]);
            else puts(out[i]);
        }
        if (fflush(stdout) != 0) rc = err_set(NMT_ERR_RUNTIME, "stdout: write failed");
    }
    for (size_t i = 0; i < n * nb; i++) free(out[i]);
    free(out);
    free(scores);
    arrfree(lines);
    free(text);
    unload(&l);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    Args a;
    int rc = parse_args(&a, argc, argv, 1, EVAL_HELP);
    if (rc) return rc < 0 ? NMT_OK : rc;
    a.o.nbest = 1;
    char *stext = NULL, **src = NULL, *rtext = NULL, **ref = NULL;
    rc = read_lines(a.src, &stext, &src);
    if (!rc) rc = read_lines(a.ref, &rtext, &ref);
    if (!rc && arrlen(src) != arrlen(ref))
        rc = err_set(NMT_ERR_INPUT, "%s has %td lines but %s has %td", a.src, arrlen(src), a.ref, arrlen(ref));
    Loaded l;
    int loaded = 0;
    if (!rc) {
        rc = load(&l, a.checkpoint);
        loaded = !rc;
    }
    size_t n = (size_t)arrlen(src);
    char **hyp = xcalloc(n + 1, sizeof *hyp);
    TranslateStats ts = {0, 0, 0};
    if (!rc) rc = translate_lines(&l.m, &l.t, l.c.max_src_len, src, n, &a.o, a.src, hyp, NULL, &ts);
    BleuStats bs;
    ChrfStats cs;
    bleu_stats_init(&bs, a.lowercase);
    chrf_stats_init(&cs, a.lowercase);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = bleu_add(&bs, hyp[i], ref[i]);
        if (!rc) rc = chrf_add(&cs, hyp[i], ref[i]);
    }
    if (!rc && a.output) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++) len += strlen(hyp[i]) + 1;
        char *buf = xmalloc(len + 1), *p = buf;
        for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\n", hyp[i]);
        rc = write_file_atomic(a.output, buf, len);
        free(buf);
    }
    if (!rc) {
        char line[512];
        BleuResult br = bleu_result(&bs);
        bleu_format(&br, line, sizeof line);
        printf("%s\n", line);
        ChrfResult cr = chrf_result(&cs);
        chrf_format(&cr, line, sizeof line);
        printf("%s\n", line);
        printf("%zu sentences in %.2f s (%.1f sentences/s, %.0f target tokens/s), beam %d\n", ts.sentences,
               ts.seconds, (double)ts.sentences / ts.seconds, (double)ts.tokens / ts.seconds, a.o.beam);
    }
    for (size_t i = 0; i < n; i++) free(hyp[i]);
    free(hyp);
    arrfree(src);
    arrfree(ref);
    free(stext);
    free(rtext);
    if (loaded) unload(&l);
    return rc;
}
