// io/safetensors.h — the safetensors file format (Hugging Face's): an 8-byte
// little-endian header length N, N bytes of JSON ({"__metadata__": {string:
// string}, "NAME": {"dtype", "shape", "data_offsets": [begin, end]}, ...},
// padded with spaces to a multiple of 8), then the tensors' bytes back to
// back, offsets relative to the end of the header. Only float32 ("F32")
// tensors are written and read here.
#ifndef NMT_SAFETENSORS_H
#define NMT_SAFETENSORS_H

#include <stddef.h>

typedef struct {
    char name[128];
    size_t shape[2], ndim;     // 1 or 2 dimensions
    const float *data;         // writing: the values; reading: into the file's bytes
} StTensor;

typedef struct {
    const char *key, *value;
} StMeta;

// Writes n tensors (in this order) and the metadata pairs to path, atomically.
int st_write(const char *path, const StTensor *t, size_t n, const StMeta *meta, size_t nmeta);

// A file read and checked: every entry a float32 tensor of one or two
// dimensions whose bytes lie inside the data, without overlaps or gaps (as
// the format requires); metadata values strings. Errors are NMT_ERR_INPUT
// "PATH: ..." naming the entry.
typedef struct {
    char *bytes;               // the whole file
    size_t size;
    StTensor *tensors;         // stb_ds array; data point into bytes (may be unaligned: copy with memcpy)
    struct cJSON *meta;        // the __metadata__ object, or NULL
    struct cJSON *header;
} StFile;
int st_read(StFile *f, const char *path);
// The tensor named name, or NULL.
const StTensor *st_find(const StFile *f, const char *name);
// The metadata string under key, or NULL.
const char *st_meta(const StFile *f, const char *key);
void st_free(StFile *f);

#endif
