// common/json.h — one JSON value and nothing after it (cJSON stops at the end
// of the value and ignores what follows).
#ifndef NMT_JSON_H
#define NMT_JSON_H

#include <stddef.h>

struct cJSON;

enum { JSON_WHOLE = 0, JSON_MALFORMED, JSON_TRAILING };

// Parses text[0, len) (NUL bytes included: they are not whitespace) as one
// JSON value with nothing but JSON's whitespace (space, tab, CR, LF) before
// or after it.
// Returns JSON_WHOLE with *out the value, or JSON_MALFORMED / JSON_TRAILING
// with *out NULL and *at the byte offset of the trouble: where parsing
// failed, or the first byte after the value that is not whitespace.
int json_parse_whole(const char *text, size_t len, struct cJSON **out, size_t *at);

// A checkpoint's state section (text, NUL-terminated) as one JSON object:
// NMT_OK with *out the object, or NMT_ERR_INPUT naming path and the offset of
// bytes after it, or saying it is not a JSON object.
int json_parse_state(const char *text, const char *path, struct cJSON **out);

#endif
