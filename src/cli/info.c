// cli/info.c — `nmt info CHECKPOINT`: describe and verify a checkpoint.
#include "cli/cli.h"
#include "cli/options.h"

#include "io/checkpoint.h"
#include "model/quant.h"
#include "train/state.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>

static const char USAGE[] =
    "usage: nmt info CHECKPOINT\n"
    "  prints the header, sections, config, step (and, for a fine-tuned model, the\n"
    "  checkpoint its run started from), sizes and languages (data.src_lang ->\n"
    "  data.tgt_lang, or \"not recorded\"); verifies the checkpoint exactly as loading\n"
    "  it does (checksums; config, tokenizer, language profiles, tensor table, parameter\n"
    "  and optimizer-state sizes agreeing; every weight and optimizer value finite)\n"
    "  exit status 0 when valid, 2 when corrupt or inconsistent (the error names the\n"
    "  section, and for a non-finite value the tensor and element)\n";

// The container: printed as soon as it is verified, before the sections' contents are.
static void print_header(const char *path, const CkptInfo *in) {
    printf("file: %s\nformat: nmt checkpoint version %u, %llu bytes, all %d section checksums valid\n", path,
           in->version, (unsigned long long)in->file_size, in->nsections);
    printf("sections:\n");
    for (int i = 0; i < in->nsections; i++) {
        const CkptSectionInfo *s = &in->sections[i];
        printf("  %-10s offset %10llu  size %12llu  crc32 %08x\n", s->name, (unsigned long long)s->offset,
               (unsigned long long)s->size, s->crc);
    }
}

static void print_contents(const CkptInfo *in, const TrainState *st) {
    const Model *m = &in->m;
    char *cfg = config_to_json(&in->c);
    printf("step: %ld (epoch %ld, batch %ld), %ld target tokens, %.1f s of training\n", st->step, st->epoch,
           st->batch_pos, st->tokens_seen, st->elapsed);
    if (st->init_from[0])
        printf("started from: %s (step %ld; its weights' crc32 %08lx)\n", st->init_from, st->init_from_step,
               st->init_from_crc32);
    printf("micro-batches per step: %ld (%ld process%s x train.accum_steps %ld)\n", st->micro_batches, st->processes,
           st->processes > 1 ? "es" : "", st->micro_batches / (st->processes > 0 ? st->processes : 1));
    printf("training precision: %s (the train.precision of the run that saved it)\n", precision_name(st->precision));
    if (isfinite(st->best_valid_loss)) printf("best validation loss: %.6f\n", st->best_valid_loss);
    if (st->best_valid_bleu >= 0) printf("best validation BLEU: %.2f\n", st->best_valid_bleu);
    printf("parameters: %zu in %td tensors (%s)\n", m->nparams, arrlen(m->tensors), REAL_NAME);
    if (m->quant) printf("weights: int8 (%zu matrices, one scale per output; vectors %s): for decoding only\n",
                         m->quant->n, REAL_NAME);
    printf("vocabulary: source %d, target %d\n", m->s.src_vocab, m->s.tgt_vocab);
    if (in->c.src_lang[0]) printf("languages: %s -> %s\n", in->c.src_lang, in->c.tgt_lang);
    else printf("languages: not recorded\n");
    printf("language profiles: %s\n", in->t.src_profile ? "source and target (langid section)" : "none");
    if (m->s.relative) printf("positions: relative (distances clipped at %d)", m->s.max_rel);
    else printf("positions: sinusoidal");
    if (m->s.window) printf(", attention window %d\n", m->s.window);
    else printf(", full attention\n");
    printf("optimizer state: %s\n", in->has_state ? in->optimizer : "none (weights only)");
    if (in->ema) printf("weights for decoding: the moving average (train.ema_decay %g); training resumes from the weights\n",
                        in->c.ema_decay);
    printf("verified: config, tokenizer%s, tensor table, section sizes, all values finite\n",
           in->t.src_profile ? ", language profiles" : "");
    printf("config:\n%s\n", cfg);
    free(cfg);
}

// Prints header, sections, config, step and sizes, after exactly the
// verification loading does, the trainer's state included.
static int info(const char *path) {
    CkptInfo in;
    int rc = checkpoint_describe(path, &in);
    if (in.opened) print_header(path, &in);
    TrainState st;
    if (!rc) rc = train_state_from_json(&st, in.st.json, path);
    if (!rc) print_contents(&in, &st);
    ckpt_info_free(&in);
    return rc;
}

int cli_info(int argc, char **argv) {
    const char **files = NULL;  // stb_ds array
    const OptSpec spec = {"info", USAGE, NULL, 0, 1, NULL};
    int rc = options_parse(&spec, argc, argv, &files);
    if (!rc && arrlen(files) != 1) rc = options_error(&spec, "expects exactly one checkpoint file");
    if (!rc) rc = cli_finish(info(files[0]));
    else rc = options_report(&spec, rc);
    arrfree(files);
    return rc;
}
