// io/checkpoint.h — what a checkpoint holds and how a run is restored from one.
// Sections (see ckptfile.h for the container and README for the table):
//   config     the resolved config, JSON text
//   tokenizer  vocabularies or the BPE model
//   langid     optional: the tokenizer's language profiles of the two sides
//              (tokenizer_profiles_to_text); absent in checkpoints from before
//   tensors    the parameter table: "name rows cols offset decay" per line
//   params     every parameter, raw little-endian floats
//   one section per state buffer the optimizer names (training checkpoints):
//              adam_m, adam_v (Adam); momentum (SGD with momentum)
//   state      the trainer's state, JSON text handed in by the trainer
//              (train/state.h): step, data cursor, log accumulators, best
//              validation loss; of it the checkpoint reads only "step"
#ifndef NMT_CHECKPOINT_H
#define NMT_CHECKPOINT_H

#include "common/config.h"
#include "io/ckptfile.h"
#include "model/model.h"
#include "optim/optim.h"
#include "text/tokenizer.h"

// What a checkpoint keeps for whoever trains from it: the trainer's state, a
// JSON object handed in as text and given back as stored. Of it the
// checkpoint reads only "step" (updates done; the optimizer's state belongs
// to that step), checked as a count.
typedef struct {
    long step;
    char *json;  // malloc'ed
} CkptState;
void ckpt_state_free(CkptState *st);

// Writes atomically. opt may be NULL (weights-only checkpoint, e.g. averages);
// state_json: the trainer's state (a JSON object with "step").
int checkpoint_save(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                    const Optimizer *opt, const char *state_json);
// The same, calling check(TMP, arg) on the written temporary before it
// replaces PATH (ckpt_write_checked): a failed check leaves PATH as it was.
int checkpoint_save_checked(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                            const Optimizer *opt, const char *state_json, CkptCheck check, void *arg);

// The tokenizer is the one the config describes: its kind, and one table for
// shared vocabularies (model.shared_vocab), two otherwise (word vocabularies).
// Else NMT_ERR_INPUT "WHAT: model.shared_vocab is ...". Loading checks it.
int checkpoint_check_tokenizer(const Config *c, const Tokenizer *t, const char *what);

// Reads and verifies everything, then builds the config, tokenizer and model
// (and, if opt != NULL, the optimizer the checkpoint's config names, with its
// state, which must be present, and its step count). Without opt, a
// checkpoint with a moving average of the weights (train.ema_decay) gives the
// average as the model's weights: what decoding, averaging and quantizing use.
// A file with valid checksums is still untrusted: every length in it is
// checked without overflow, and the sections must agree (config <-> tokenizer
// kind and vocabulary sizes <-> parameter count, computed before anything is
// allocated <-> tensor table <-> params and optimizer-state bytes), with
// every parameter and optimizer value finite. The optimizer's state sections
// are checked whenever present (all or none), also when opt == NULL. The
// state must be a JSON object whose "step" is a count; the rest of it is the
// trainer's to check (train_state_from_json).
// Any failure is NMT_ERR_INPUT "PATH: ...".
// Nothing is returned half-built: on error all outputs are left empty.
int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, CkptState *st);

// A checkpoint loaded for decoding (translate, eval, score, export, serve):
// checkpoint_load without an optimizer; with int8, float weights are
// quantized at load (an int8 checkpoint is decoded so anyway).
typedef struct {
    Config c;
    Tokenizer t;
    Model m;
    long step;  // updates the weights have had
} Loaded;
int checkpoint_load_decoding(Loaded *l, const char *path, int int8);
void loaded_free(Loaded *l);

// Every value of the weights and of the optimizer state (opt may be NULL)
// finite, and the weights (and their moving average) at most
// model_weight_bound in magnitude, as checkpoint_load requires; else
// NMT_ERR_INPUT "WHAT: section 'S' holds N non-finite values ...; the first:
// tensor 'T' [i, j] is nan".
int checkpoint_check_finite(const Model *m, const Optimizer *opt, const char *what);

// What `nmt info FILE` shows (cli/info.c prints it): the container's header
// and sections, and what loading found.
typedef struct {
    char name[CKPT_NAME_MAX + 1];
    uint64_t offset, size;  // the payload's place in the file
    uint32_t crc;
} CkptSectionInfo;
typedef struct {
    int opened;                 // the container verified: version .. sections are set
    unsigned version;
    uint64_t file_size;
    int nsections;
    CkptSectionInfo *sections;  // malloc'ed
    // Set when checkpoint_describe returns NMT_OK: the checkpoint as loaded for
    // decoding, and what it says beyond that.
    Config c;
    Tokenizer t;
    Model m;
    CkptState st;
    char optimizer[32];         // the config's train.optimizer
    int has_state;              // its state sections are present
    int ema;                    // the weights given for decoding are the moving average
} CkptInfo;

// Exactly the verification checkpoint_load does (without an optimizer), and
// what it found. On error (NMT_ERR_INPUT for a corrupt or inconsistent file)
// info->opened says whether the header and sections were read; either way
// ckpt_info_free releases what is set.
int checkpoint_describe(const char *path, CkptInfo *info);
void ckpt_info_free(CkptInfo *info);

#endif
