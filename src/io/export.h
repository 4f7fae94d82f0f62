// io/export.h — a checkpoint's model as a safetensors file that other tools load
// (`nmt export`), and back (`nmt import`).
//
// Names and layouts are fairseq's Transformer, which PyTorch users know:
// linear weights (out, in), q/k/v split out of the fused projections
// ("encoder.layers.0.self_attn.q_proj.weight"), "fc1"/"fc2",
// "self_attn_layer_norm", "encoder_attn" for cross-attention,
// "encoder.embed_tokens.weight" (also the decoder's and the output's when
// tied or shared: written once), "decoder.output_projection.weight" when
// untied; relative position embeddings as
// "<stack>.layers.N.self_attn.relative_keys.weight" / "relative_values".
// The metadata holds "format": "pt", "nmt.config" (the resolved config,
// JSON), "nmt.tokenizer" (the vocabulary or BPE model as the checkpoint
// stores it) and "nmt.step"; when the checkpoint has them, "nmt.src_lang"
// and "nmt.tgt_lang" (the config's language codes, also in nmt.config) and
// "nmt.langid" (the language profiles, as its langid section holds them).
#ifndef NMT_EXPORT_H
#define NMT_EXPORT_H

#include "io/checkpoint.h"

// Writes the weights of checkpoint `in` (for decoding: the moving average
// when it has one) to `out`. An int8 checkpoint is refused (NMT_ERR_INPUT):
// export the float checkpoint it came from.
int export_safetensors(const char *in, const char *out);

// Reads a safetensors file written by export_safetensors into *l: the
// config and the tokenizer from its metadata, or the config from config_path
// when given (its model keys must agree with the file's tensors), the weights
// and the step the metadata names; nmt.langid's profiles, and nmt.src_lang and
// nmt.tgt_lang when the config has no languages (checked as the config's).
// Every tensor the model needs must be there with its shape, nothing else,
// every value finite; the tokenizer as the config describes it
// (checkpoint_check_tokenizer); nmt.step, when there, a count from 0 to
// 10^15 - 1 (what the checkpoint's state holds exactly).
// The round trip is exact.
// On error *l is left empty.
int import_safetensors(const char *in, const char *config_path, Loaded *l);

// Writes l as a weights-only checkpoint `out` holding the trainer's state
// state_json: a temporary beside `out`, loaded back as any checkpoint, then
// renamed over `out`. When it does not load back, `out` is left as it was
// (an existing file too) and only the temporary is removed.
int import_write(const char *out, const Loaded *l, const char *state_json);

#endif
