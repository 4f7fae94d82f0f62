// io/checkpoint.h — what a checkpoint holds and how a run is restored from one.
// Sections (see ckptfile.h for the container and README for the table):
//   config     the resolved config, JSON text
//   tokenizer  vocabularies or the BPE model
//   tensors    the parameter table: "name rows cols offset decay" per line
//   params     every parameter, raw little-endian floats
//   one section per state buffer the optimizer names (training checkpoints):
//              adam_m, adam_v (Adam); momentum (SGD with momentum)
//   state      JSON: step, data cursor, log accumulators, best validation loss
#ifndef NMT_CHECKPOINT_H
#define NMT_CHECKPOINT_H

#include "common/config.h"
#include "model/model.h"
#include "optim/optim.h"
#include "text/tokenizer.h"
#include "train/step.h"

// Writes atomically. opt may be NULL (weights-only checkpoint, e.g. averages).
int checkpoint_save(const char *path, const Config *c, const Tokenizer *t, const Model *m,
                    const Optimizer *opt, const TrainState *st);

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
// are checked whenever present (all or none), also when opt == NULL.
// Any failure is NMT_ERR_INPUT "PATH: ...".
// Nothing is returned half-built: on error all outputs are left empty.
int checkpoint_load(const char *path, Config *c, Tokenizer *t, Model *m, Optimizer *opt, TrainState *st);

// A checkpoint loaded for decoding (translate, eval, score, export, serve):
// checkpoint_load without an optimizer; with int8, float weights are
// quantized at load (an int8 checkpoint is decoded so anyway).
typedef struct {
    Config c;
    Tokenizer t;
    Model m;
    TrainState st;
} Loaded;
int checkpoint_load_decoding(Loaded *l, const char *path, int int8);
void loaded_free(Loaded *l);

// Every value of the weights and of the optimizer state (opt may be NULL)
// finite, as checkpoint_load requires; else NMT_ERR_INPUT "WHAT: section 'S'
// holds N non-finite values ...; the first: tensor 'T' [i, j] is nan".
int checkpoint_check_finite(const Model *m, const Optimizer *opt, const char *what);

// `nmt info FILE`: prints header, sections, config, step and sizes, after
// exactly the verification checkpoint_load does (its status: NMT_ERR_INPUT
// for a corrupt or inconsistent file, non-finite values included).
int checkpoint_info(const char *path);

#endif
