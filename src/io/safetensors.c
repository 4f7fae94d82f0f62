// io/safetensors.c — writing and reading (untrusted) safetensors files.
#include "io/safetensors.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <stb/stb_ds.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A header larger than this is refused before it is parsed (the format's
// own readers use the same bound).
enum { ST_MAX_HEADER = 100 << 20 };

static size_t elems(const StTensor *t) { return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1]; }

int st_write(const char *path, const StTensor *t, size_t n, const StMeta *meta, size_t nmeta) {
    cJSON *h = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(h, "__metadata__");
    for (size_t i = 0; i < nmeta; i++) cJSON_AddStringToObject(m, meta[i].key, meta[i].value);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape"), *offs = cJSON_AddArrayToObject(e, "data_offsets");
        for (size_t d = 0; d < t[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        size_t bytes = elems(&t[i]) * sizeof(float);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(json), padded = (hl + 7) & ~(size_t)7;
    char *buf = xmalloc(8 + padded + off);
    uint64_t len = padded;
    for (int b = 0; b < 8; b++) buf[b] = (char)(len >> (8 * b) & 0xff);  // little-endian
    memcpy(buf + 8, json, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(json);
    char *p = buf + 8 + padded;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = elems(&t[i]) * sizeof(float);
        memcpy(p, t[i].data, bytes);
        p += bytes;
    }
    int rc = write_file_atomic(path, buf, 8 + padded + off);
    free(buf);
    return rc;
}

// A whole number in [0, max] (JSON numbers are doubles: 2^53 is exact).
static int get_size(const cJSON *v, double max, size_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != (double)(size_t)v->valuedouble)
        return 0;
    *out = (size_t)v->valuedouble;
    return 1;
}

// One tensor entry of the header, checked against the data's size.
static int read_entry(StFile *f, const cJSON *e, size_t data_size, const char *path) {
    StTensor t;
    memset(&t, 0, sizeof t);
    if (strlen(e->string) >= sizeof t.name)
        return err_set(NMT_ERR_INPUT, "%s: tensor name '%.40s...' is longer than %zu bytes", path, e->string,
                       sizeof t.name - 1);
    strcpy(t.name, e->string);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return err_set(NMT_ERR_INPUT, "%s: tensor '%s': needs dtype, shape and data_offsets", path, t.name);
    if (strcmp(dtype->valuestring, "F32") != 0)
        return err_set(NMT_ERR_INPUT, "%s: tensor '%s': dtype %s, only F32 is read", path, t.name, dtype->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd < 1 || nd > 2) return err_set(NMT_ERR_INPUT, "%s: tensor '%s': %d dimensions (1 or 2 read)", path, t.name, nd);
    t.ndim = (size_t)nd;
    size_t count = 1, b, end;
    for (int d = 0; d < nd; d++) {
        if (!get_size(cJSON_GetArrayItem(shape, d), (double)(1ull << 40), &t.shape[d]))
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s': bad shape", path, t.name);
        // Two dimensions below 2^40 can still wrap size_t ([2^32, 2^32] would
        // read as 0 values): the product and its bytes are checked.
        if (t.shape[d] && count > SIZE_MAX / sizeof(float) / t.shape[d])
            return err_set(NMT_ERR_INPUT, "%s: tensor '%s': shape [%zu, %zu] has more values than can be addressed",
                           path, t.name, t.shape[0], t.shape[1]);
        count *= t.shape[d];
    }
    if (cJSON_GetArraySize(offs) != 2 || !get_size(cJSON_GetArrayItem(offs, 0), (double)data_size, &b) ||
        !get_size(cJSON_GetArrayItem(offs, 1), (double)data_size, &end) || end < b)
        return err_set(NMT_ERR_INPUT, "%s: tensor '%s': data_offsets outside the %zu data bytes", path, t.name,
                       data_size);
    if (end - b != count * sizeof(float))
        return err_set(NMT_ERR_INPUT, "%s: tensor '%s': %zu bytes for %zu float32 values", path, t.name, end - b,
                       count);
    t.data = (const float *)(const void *)(f->bytes + b);  // offset from the data start: fixed below
    arrput(f->tensors, t);
    return NMT_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const StTensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

// The header: one JSON object, then nothing but whitespace (the format pads
// it with spaces). Offsets in messages count from the start of the file.
static int parse_header(StFile *f, size_t hl, const char *path) {
    size_t at;
    int kind = json_parse_whole(f->bytes + 8, hl, &f->header, &at);
    if (kind == JSON_TRAILING)
        return err_set(NMT_ERR_INPUT, "%s: bytes after the header's JSON (at byte %zu; only spaces may pad it)", path,
                       8 + at);
    if (kind == JSON_MALFORMED)
        return err_set(NMT_ERR_INPUT, "%s: the header is not a JSON object (malformed JSON at byte %zu)", path, 8 + at);
    if (!cJSON_IsObject(f->header)) return err_set(NMT_ERR_INPUT, "%s: the header is not a JSON object", path);
    return NMT_OK;
}

int st_read(StFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->bytes = read_file_text(path, &f->size);
    if (!f->bytes) return err_code() ? err_code() : NMT_ERR_INPUT;
    int rc = NMT_OK;
    uint64_t hl = 0;
    for (int b = 0; b < 8 && f->size >= 8; b++) hl |= (uint64_t)(unsigned char)f->bytes[b] << (8 * b);
    if (f->size < 8 || hl > ST_MAX_HEADER || hl > f->size - 8)
        rc = err_set(NMT_ERR_INPUT, "%s: not a safetensors file (header length %llu, file %zu bytes)", path,
                     (unsigned long long)hl, f->size);
    size_t data0 = 8 + (size_t)hl, data_size = f->size - (rc ? f->size : data0);
    if (!rc) rc = parse_header(f, (size_t)hl, path);
    for (const cJSON *e = rc ? NULL : f->header->child; e && !rc; e = e->next) {
        if (strcmp(e->string, "__metadata__") != 0) {
            rc = read_entry(f, e, data_size, path);
            continue;
        }
        if (f->meta || !cJSON_IsObject(e)) rc = err_set(NMT_ERR_INPUT, "%s: __metadata__ is not one object", path);
        for (const cJSON *v = rc ? NULL : e->child; v && !rc; v = v->next)
            if (!cJSON_IsString(v)) rc = err_set(NMT_ERR_INPUT, "%s: __metadata__ '%s' is not a string", path, v->string);
        f->meta = (cJSON *)e;
    }
    size_t n = (size_t)arrlen(f->tensors), at = 0;
    // (No tensors: nothing to sort, and the table is NULL, which qsort may not take.)
    if (!rc && n > 1) qsort(f->tensors, n, sizeof *f->tensors, by_name);
    for (size_t i = 1; !rc && i < n; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            rc = err_set(NMT_ERR_INPUT, "%s: tensor '%s' is named twice", path, f->tensors[i].name);
    // The tensors tile the data exactly: sorted by offset, each starts where
    // the previous ended (sizes were checked against the shapes above).
    if (!rc && n > 1) qsort(f->tensors, n, sizeof *f->tensors, by_offset);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t b = (size_t)((const char *)f->tensors[i].data - f->bytes);
        if (b != at) rc = err_set(NMT_ERR_INPUT, "%s: tensor '%s' does not start where the previous one ends", path,
                                   f->tensors[i].name);
        at = b + elems(&f->tensors[i]) * sizeof(float);
        f->tensors[i].data = (const float *)(const void *)(f->bytes + data0 + b);
    }
    if (!rc && at != data_size)
        rc = err_set(NMT_ERR_INPUT, "%s: %zu data bytes after the last tensor", path, data_size - at);
    if (rc) st_free(f);
    return rc;
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (ptrdiff_t i = 0; i < arrlen(f->tensors); i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void st_free(StFile *f) {
    free(f->bytes);
    arrfree(f->tensors);
    cJSON_Delete(f->header);
    memset(f, 0, sizeof *f);
}
