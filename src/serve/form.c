// serve/form.c — a form body's fields as a JSON object (form.h), read by
// libmicrohttpd's post processor.
#include "serve/form.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char **keys, **values;   // the fields in order, values NUL-terminated
    size_t *lens;
    size_t n, cap;
    const char *error;       // the first problem met
} Fields;

static int type_is(const char *type, const char *what) {
    if (!type) return 0;
    while (*type == ' ') type++;
    size_t n = strlen(what);
    return !strncasecmp(type, what, n) && strchr(" ;", type[n]);
}

int form_type(const char *type) {
    return type_is(type, "application/x-www-form-urlencoded") || type_is(type, "multipart/form-data");
}

// Appends a piece of a field's value; a new field when off is 0.
static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding;
    Fields *f = cls;
    if (filename) {
        f->error = "a file in the form; send the text as a field (q)";
        return MHD_NO;
    }
    if (size && memchr(data, 0, size)) {
        f->error = "a NUL byte in a field";
        return MHD_NO;
    }
    if (off == 0 || !f->n || strcmp(f->keys[f->n - 1], key)) {
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 8;
            f->keys = xrealloc(f->keys, f->cap * sizeof *f->keys);
            f->values = xrealloc(f->values, f->cap * sizeof *f->values);
            f->lens = xrealloc(f->lens, f->cap * sizeof *f->lens);
        }
        f->keys[f->n] = xstrdup(key);
        f->values[f->n] = xcalloc(1, 1);
        f->lens[f->n++] = 0;
    }
    size_t i = f->n - 1;
    f->values[i] = xrealloc(f->values[i], f->lens[i] + size + 1);
    memcpy(f->values[i] + f->lens[i], data, size);
    f->lens[i] += size;
    f->values[i][f->lens[i]] = 0;
    return MHD_YES;
}

// A field's value as JSON: numbers and booleans where a JSON body has them.
static cJSON *value_json(const char *key, const char *v) {
    if (!strcmp(key, "beam") || !strcmp(key, "nbest") || !strcmp(key, "alternatives")) {
        char *end;
        long x = strtol(v, &end, 10);
        if (*v && !*end && x >= 0 && x <= 1000000) return cJSON_CreateNumber((double)x);
    }
    if (!strcmp(key, "attention") && (!strcmp(v, "true") || !strcmp(v, "false"))) return cJSON_CreateBool(!strcmp(v, "true"));
    return cJSON_CreateString(v);
}

static cJSON *fields_json(const Fields *f) {
    cJSON *obj = cJSON_CreateObject();
    size_t nq = 0;
    for (size_t i = 0; i < f->n; i++) nq += !strcmp(f->keys[i], "q");
    if (nq > 1) cJSON_AddArrayToObject(obj, "q");
    for (size_t i = 0; i < f->n; i++) {
        if (nq > 1 && !strcmp(f->keys[i], "q"))
            cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(obj, "q"), cJSON_CreateString(f->values[i]));
        else if (!cJSON_GetObjectItemCaseSensitive(obj, f->keys[i]))  // the first of a repeated field
            cJSON_AddItemToObject(obj, f->keys[i], value_json(f->keys[i], f->values[i]));
    }
    return obj;
}

static void fields_free(Fields *f) {
    for (size_t i = 0; i < f->n; i++) {
        free(f->keys[i]);
        free(f->values[i]);
    }
    free(f->keys);
    free(f->values);
    free(f->lens);
}

cJSON *form_fields(struct MHD_Connection *con, const char *body, size_t len, char *err, size_t errlen) {
    Fields f = {0};
    cJSON *obj = NULL;
    struct MHD_PostProcessor *pp = MHD_create_post_processor(con, 4096, on_field, &f);
    if (!pp) {
        snprintf(err, errlen, "a form without its boundary, or of a kind not read here");
        return NULL;
    }
    enum MHD_Result ok = len ? MHD_post_process(pp, body, len) : MHD_YES;
    if (MHD_destroy_post_processor(pp) != MHD_YES && ok == MHD_YES && !f.error) ok = MHD_NO;
    for (size_t i = 0; ok == MHD_YES && !f.error && i < f.n; i++)
        if (utf8_check(f.keys[i], strlen(f.keys[i])) >= 0 || utf8_check(f.values[i], f.lens[i]) >= 0)
            f.error = "a field is not valid UTF-8";
    if (ok != MHD_YES || f.error) snprintf(err, errlen, "malformed form: %s", f.error ? f.error : "cannot be read");
    else obj = fields_json(&f);
    fields_free(&f);
    return obj;
}
