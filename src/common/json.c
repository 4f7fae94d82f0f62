// common/json.c — a JSON text parsed whole (json.h).
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <string.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int json_parse_whole(const char *text, size_t len, cJSON **out, size_t *at) {
    const char *end = NULL;
    *out = NULL;
    *at = 0;
    // cJSON skips every byte up to 32 before the value; JSON allows only whitespace.
    for (size_t p = 0; p < len && (unsigned char)text[p] <= 32; p++)
        if (!is_space(text[p])) {
            *at = p;
            return JSON_MALFORMED;
        }
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        // (cJSON's end is where it stopped; clamp it into the text.)
        *at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return JSON_MALFORMED;
    }
    size_t p = (size_t)(end - text);
    while (p < len && is_space(text[p])) p++;
    if (p < len) {
        cJSON_Delete(v);
        *at = p;
        return JSON_TRAILING;
    }
    *out = v;
    return JSON_WHOLE;
}

int json_parse_state(const char *text, const char *path, cJSON **out) {
    size_t at;
    if (json_parse_whole(text, strlen(text), out, &at) == JSON_TRAILING)
        return err_set(NMT_ERR_INPUT, "%s: state section: bytes after the JSON object (at byte %zu of the section)",
                       path, at);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_set(NMT_ERR_INPUT, "%s: state section is not a JSON object", path);
    }
    return NMT_OK;
}
