// cli/translate.c — `nmt translate` (stdin -> stdout) and `nmt eval` (files -> BLEU):
// their options, the checkpoint in, the results out.
#include "cli/cli.h"
#include "cli/options.h"
#include "common/files.h"

#include "decode/attnmap.h"
#include "decode/ensemble.h"
#include "eval/bleu.h"
#include "io/checkpoint.h"
#include "data/corpus.h"
#include "decode/translate.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TRANSLATE_USAGE[] =
    "usage: nmt translate --checkpoint FILE [--checkpoint FILE2 ...] [options] < SOURCE > TRANSLATION\n"
    "  reads sentences from stdin (UTF-8, one per line), writes one translation per line, in order;\n"
    "  several checkpoints decode as an ensemble, or --sample draws translations at random\n";

static const char EVAL_USAGE[] =
    "usage: nmt eval --checkpoint FILE [--checkpoint FILE2 ...] --src SOURCE --ref REFERENCE [options]\n"
    "  translates SOURCE and prints corpus BLEU (sacreBLEU defaults) and chrF2 against REFERENCE\n";

typedef struct {
    char **checkpoints;   // stb_ds: one, or an ensemble's
    const char *weights, *src, *ref, *output, *attention_png;
    int lowercase, attention_heads, int8, seed;
    DecodeOptions o;
} Args;

enum { MAX_OPTIONS = 20 };

// translate's sampling options.
static int sampling_options(Args *a, Option *t, int n) {
    t[n++] = (Option){"--sample", OPT_FLAG, &a->o.sample, 0, 0, NULL,
                      "draw each translation at random from the model's distribution instead of\n"
                      "searching (back-translation); with --nbest N, N draws per sentence", NULL};
    t[n++] = (Option){"--topk", OPT_INT, &a->o.topk, 0, 1000000, "K",
                      "with --sample: draw among the K most likely tokens (0: all)", OPT_CURRENT};
    t[n++] = (Option){"--topp", OPT_DOUBLE, &a->o.topp, 0, 1, "P",
                      "with --sample: then among the fewest most likely holding P of the probability", OPT_CURRENT};
    t[n++] = (Option){"--temperature", OPT_DOUBLE, &a->o.temperature, 0.01, 100, "T",
                      "with --sample: divide the scores by T (below 1: sharper, above: flatter)", OPT_CURRENT};
    t[n++] = (Option){"--seed", OPT_INT, &a->seed, 0, 2147483647, "S",
                      "with --sample: the random seed; line i's draws depend only on S, i and the\n"
                      "model, never on --batch or the threads", OPT_CURRENT};
    return n;
}

// The option table of translate, or of eval; returns its length.
static int option_table(Args *a, Option *t, int eval) {
    int n = 0;
    t[n++] = (Option){"--checkpoint", OPT_STRINGS, &a->checkpoints, 0, 0, "FILE",
                      "a checkpoint written by nmt train (required); repeat it for an ensemble, whose\n"
                      "models share one vocabulary and whose log-probabilities are averaged per step", NULL};
    t[n++] = (Option){"--weights", OPT_STRING, &a->weights, 0, 0, "W1,W2,...",
                      "the ensemble's weights, one per --checkpoint (normalised; default: equal)", NULL};
    if (eval) {
        t[n++] = (Option){"--src", OPT_STRING, &a->src, 0, 0, "FILE", "source sentences (required)", NULL};
        t[n++] = (Option){"--ref", OPT_STRING, &a->ref, 0, 0, "FILE", "their reference translations (required)", NULL};
        t[n++] = (Option){"--output", OPT_STRING, &a->output, 0, 0, "FILE", "also write the translations to FILE", NULL};
    }
    t[n++] = (Option){"--int8", OPT_FLAG, &a->int8, 0, 0, NULL,
                      "decode with int8 weights, quantized at load (as nmt quantize does; an int8\n"
                      "checkpoint is always decoded so)", NULL};
    t[n++] = (Option){"--beam", OPT_INT, &a->o.beam, 1, 256, "K", "beam size; 1 = greedy", OPT_CURRENT};
    t[n++] = (Option){"--alpha", OPT_DOUBLE, &a->o.alpha, 0, 10, "A", "length penalty ((5+len)/6)^A in beam search",
                      OPT_CURRENT};
    t[n++] = (Option){"--nbest", OPT_INT, &a->o.nbest, 1, 256, "N",
                      eval ? "as for nmt translate; eval scores the best hypothesis only"
                           : "print N hypotheses per sentence as 'index ||| text ||| score' (also for\n"
                             "N = 1); without --nbest, one plain line per sentence",
                      NULL};
    t[n++] = (Option){"--batch", OPT_INT, &a->o.batch, 1, 4096, "N",
                      "sentences decoded together; the output does not depend on it", OPT_CURRENT};
    t[n++] = (Option){"--max-len-a", OPT_DOUBLE, &a->o.max_len_a, 0, 100, "A",
                      "output length limit A * source length + B tokens; an output reaching it\n"
                      "ends there, paying its end of sentence's log-probability (as fairseq)", OPT_CURRENT};
    t[n++] = (Option){"--max-len-b", OPT_INT, &a->o.max_len_b, 0, 10000, "B", "the B of --max-len-a", OPT_CURRENT};
    if (eval) {
        t[n++] = (Option){"--lowercase", OPT_FLAG, &a->lowercase, 0, 0, NULL, "case-insensitive BLEU", NULL};
    } else {
        t[n++] = (Option){"--attention-png", OPT_STRING, &a->attention_png, 0, 0, "FILE",
                          "for one input sentence: draw the last decoder layer's cross-attention\n"
                          "(averaged over heads) as a heatmap, source along the top, output down the side",
                          NULL};
        t[n++] = (Option){"--attention-heads", OPT_FLAG, &a->attention_heads, 0, 0, NULL,
                          "with --attention-png: a grid of every head plus their average", NULL};
        n = sampling_options(a, t, n);
    }
    return n;
}

// Options common to translate and eval; eval adds --src/--ref/--output/--lowercase.
static int parse_args(Args *a, Option *opts, OptSpec *spec, int argc, char **argv, int eval) {
    memset(a, 0, sizeof *a);
    a->o = decode_defaults();
    a->o.nbest = 0;  // not given: the best hypothesis, printed plain
    *spec = (OptSpec){eval ? "eval" : "translate", eval ? EVAL_USAGE : TRANSLATE_USAGE, opts,
                      option_table(a, opts, eval), 0, NULL};
    int rc = options_parse(spec, argc, argv, NULL);
    if (rc) return rc;
    if (!arrlen(a->checkpoints)) return options_error(spec, "--checkpoint FILE is required");
    if (eval && (!a->src || !a->ref)) return options_error(spec, "--src and --ref are required");
    if (a->weights && arrlen(a->checkpoints) < 2) return options_error(spec, "--weights weighs two --checkpoint or more");
    if (a->attention_png && arrlen(a->checkpoints) > 1)
        return options_error(spec, "--attention-png draws one model's attention: give one --checkpoint");
    a->o.seed = (uint64_t)a->seed;
    if (a->o.sample) {
        if (a->o.beam != 1) return options_error(spec, "--sample draws each translation: --beam does not apply");
        return NMT_OK;
    }
    if (a->o.topk || a->o.topp != 1 || a->o.temperature != 1 || a->seed)
        return options_error(spec, "--topk, --topp, --temperature and --seed shape --sample's draws: add --sample");
    if (a->o.nbest > a->o.beam)
        return options_error(spec, "--nbest (%d) cannot exceed --beam (%d)", a->o.nbest, a->o.beam);
    return NMT_OK;
}

// The checkpoints (with --weights), refused as outputs by the caller first.
static int load_members(const Args *a, Members *s) {
    return members_load(s, a->checkpoints, (size_t)arrlen(a->checkpoints), a->weights, a->int8);
}

// The files read, as refuse_same_file takes them: each checkpoint, then extra.
static FileArg *inputs(const Args *a, const FileArg *extra, size_t nextra, size_t *n) {
    size_t nc = (size_t)arrlen(a->checkpoints);
    FileArg *in = xcalloc(nc + nextra, sizeof *in);
    for (size_t k = 0; k < nc; k++) in[k] = (FileArg){"--checkpoint", a->checkpoints[k]};
    for (size_t k = 0; k < nextra; k++) in[nc + k] = extra[k];
    *n = nc + nextra;
    return in;
}

static int translate(const Args *a) {
    size_t nin;
    FileArg *in = inputs(a, &(FileArg){"standard input", "/dev/stdin"}, 1, &nin);
    int rc = refuse_same_file(&(FileArg){"--attention-png", a->attention_png}, in, (int)nin);
    free(in);
    if (rc) return rc;
    Members ms;
    rc = load_members(a, &ms);
    if (rc) return rc;
    Loaded *l = &ms.l[0];  // its tokenizer and config serve every member
    // All of stdin is read (and checked) before anything is written.
    char *text = NULL, **lines = NULL;
    rc = read_lines("/dev/stdin", &text, &lines);
    int moses = a->o.nbest > 0;  // --nbest given: 'index ||| text ||| score' lines
    size_t n = (size_t)arrlen(lines), nb = moses ? (size_t)a->o.nbest : 1;
    char **out = xcalloc(n * nb + 1, sizeof *out);
    double *scores = xcalloc(n * nb + 1, sizeof *scores);
    if (!rc && a->attention_png && n != 1)
        rc = err_set(NMT_ERR_INPUT, "translate: --attention-png needs exactly one input sentence (got %zu)", n);
    if (!rc)
        rc = translate_lines_keep(&ms.e, &l->t, l->c.max_src_len, lines, n, &a->o, "stdin", out, scores, NULL, NULL,
                                  NULL);
    if (!rc && a->attention_png)
        rc = attention_map_png(a->attention_png, &l->m, &l->t, l->c.max_src_len, lines[0], &a->o, a->attention_heads);
    if (!rc) {
        for (size_t i = 0; i < n * nb; i++) {
            if (moses && scores[i] == -INFINITY) continue;  // fewer hypotheses found than --nbest: only those
            if (moses) printf("%zu ||| %s ||| %.6f\n", i / nb, out[i], scores[i]);
            else puts(out[i]);
        }
        if (fflush(stdout) != 0) rc = err_set(NMT_ERR_RUNTIME, "stdout: write failed");
    }
    for (size_t i = 0; i < n * nb; i++) free(out[i]);
    free(out);
    free(scores);
    arrfree(lines);
    free(text);
    members_free(&ms);
    return rc;
}

static int write_lines(const char *path, char *const *lines, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(lines[i]) + 1;
    char *buf = xmalloc(len + 1), *p = buf;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\n", lines[i]);
    int rc = write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

static int eval(Args *a) {
    a->o.nbest = 1;
    size_t nin;
    FileArg *in = inputs(a, (const FileArg[]){{"--src", a->src}, {"--ref", a->ref}}, 2, &nin);
    int rc = refuse_same_file(&(FileArg){"--output", a->output}, in, (int)nin);
    free(in);
    if (rc) return rc;
    char *stext = NULL, **src = NULL, *rtext = NULL, **ref = NULL;
    rc = read_lines(a->src, &stext, &src);
    if (!rc) rc = read_lines(a->ref, &rtext, &ref);
    if (!rc && arrlen(src) != arrlen(ref))
        rc = err_set(NMT_ERR_INPUT, "%s has %td lines but %s has %td", a->src, arrlen(src), a->ref, arrlen(ref));
    Members ms;
    int loaded = 0;
    if (!rc) loaded = !(rc = load_members(a, &ms));
    size_t n = (size_t)arrlen(src);
    char **hyp = xcalloc(n + 1, sizeof *hyp);
    TranslateStats ts = {0, 0, 0};
    if (!rc)
        rc = translate_lines_keep(&ms.e, &ms.l[0].t, ms.l[0].c.max_src_len, src, n, &a->o, a->src, hyp, NULL, &ts,
                                  NULL, NULL);
    BleuResult br;
    ChrfResult cr;
    if (!rc)
        rc = bleu_score_segments((const char *const *)hyp, (const char *const *)ref, n, a->lowercase, &br, &cr);
    if (!rc && a->output) rc = write_lines(a->output, hyp, n);
    if (!rc) {
        char line[512];
        bleu_format(&br, line, sizeof line);
        printf("%s\n", line);
        chrf_format(&cr, line, sizeof line);
        printf("%s\n", line);
        printf("%zu sentences in %.2f s (%.1f sentences/s, %.0f target tokens/s), beam %d\n", ts.sentences,
               ts.seconds, (double)ts.sentences / ts.seconds, (double)ts.tokens / ts.seconds, a->o.beam);
    }
    for (size_t i = 0; i < n; i++) free(hyp[i]);
    free(hyp);
    arrfree(src);
    arrfree(ref);
    free(stext);
    free(rtext);
    if (loaded) members_free(&ms);
    return rc;
}

// `nmt translate` (is_eval 0) or `nmt eval` (1): the options both share, then the command.
static int run(int argc, char **argv, int is_eval) {
    Args a;
    Option opts[MAX_OPTIONS];
    OptSpec spec;
    int rc = parse_args(&a, opts, &spec, argc, argv, is_eval);
    if (rc) rc = options_report(&spec, rc);
    else rc = cli_finish(is_eval ? eval(&a) : translate(&a));
    arrfree(a.checkpoints);
    return rc;
}

int cli_translate(int argc, char **argv) { return run(argc, argv, 0); }

int cli_eval(int argc, char **argv) { return run(argc, argv, 1); }
