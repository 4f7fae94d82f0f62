// train/import.h — `nmt import`: a safetensors file (io/export.h) as a
// checkpoint a run can start from.
#ifndef NMT_TRAIN_IMPORT_H
#define NMT_TRAIN_IMPORT_H

// Builds a weights-only checkpoint `out` from a safetensors file written by
// export_safetensors (import_safetensors says what is checked), with a fresh
// run's state at the step the file names, and verifies that it loads back.
// The round trip is exact.
int import_checkpoint(const char *in, const char *config_path, const char *out);

#endif
