// serve/request.c — a /translate request's JSON, checked (request.h).
#include "serve/request.h"
#include "common/util.h"
#include "common/json.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int bad(Ask *a, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(Ask *a, unsigned status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
    a->status = status;
    return 0;
}

// A small whole number field in [lo, hi], or def when absent.
static int int_field(Ask *a, const cJSON *obj, const char *key, int lo, int hi, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *out = def;
        return 1;
    }
    // The range first: converting a double outside int's range is undefined.
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return bad(a, 400, "\"%s\" must be a whole number from %d to %d", key, lo, hi);
    *out = (int)v->valuedouble;
    return 1;
}

// Text i: a string of valid UTF-8 (without line breaks where they cannot be
// cut); counts its characters.
static int take_sentence(Ask *a, const cJSON *v, size_t i, const char *what, size_t *chars) {
    if (!cJSON_IsString(v)) return bad(a, 400, "%s[%zu] must be a string", what, i);
    const char *s = v->valuestring;
    size_t len = strlen(s);
    long at = utf8_check(s, len);
    if (at >= 0) return bad(a, 400, "%s[%zu]: invalid UTF-8 at byte %ld", what, i, at);
    if ((a->opennmt || a->attention) && strpbrk(s, "\r\n"))
        return bad(a, 400, "%s[%zu]: a line break; send one sentence per string%s", what, i,
                   a->attention ? " when asking for attention" : "");
    for (size_t k = 0; k < len; k++) *chars += ((unsigned char)s[k] & 0xC0) != 0x80;
    a->lines[i] = s;
    return 1;
}

// The sentence count and the work they ask for, against the server's limits (413).
static int within_limits(Ask *a, const AskLimits *lim) {
    if (a->n > (size_t)lim->max_sentences)
        return bad(a, 413, "%zu sentences, more than this server's %d (--max-sentences)", a->n, lim->max_sentences);
    double work = (double)a->n * a->beam * a->nbest;
    if (work > (double)lim->max_work)
        return bad(a, 413, "%zu sentences x beam %d x n-best %d = %.0f, more than this server's budget of %d (--max-work)",
                   a->n, a->beam, a->nbest, work, lim->max_work);
    return 1;
}

// A string field or NULL when absent (or JSON null, as some clients send).
static int str_field(Ask *a, const cJSON *obj, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsString(v) || utf8_check(v->valuestring, strlen(v->valuestring)) >= 0)
        return bad(a, 400, "\"%s\" must be a string", key);
    *out = v->valuestring;
    return 1;
}

// LibreTranslate's source, target, format and api_key.
static int libre_fields(Ask *a, const cJSON *root) {
    const char *format = NULL;
    if (!str_field(a, root, "source", &a->source) || !str_field(a, root, "target", &a->target) ||
        !str_field(a, root, "api_key", &a->api_key) || !str_field(a, root, "format", &format))
        return 0;
    if (format && strcmp(format, "text") && strcmp(format, "html"))
        return bad(a, 400, "Invalid request: \"format\" must be \"text\" or \"html\"");
    a->html = format && !strcmp(format, "html");
    return 1;
}

int parse_ask(Ask *a, const cJSON *root, const AskLimits *lim) {
    cJSON *keep = a->root;
    memset(a, 0, sizeof *a);
    a->root = keep;
    const cJSON *q = NULL;
    const char *what = "q";
    a->nbest = 1;
    a->beam = lim->default_beam;
    if (cJSON_IsArray(root)) {  // OpenNMT-py: [{"src": "...", "id": N}, ...]
        a->opennmt = a->many = 1;
        q = root;
        what = "request";
    } else if (cJSON_IsObject(root)) {
        q = cJSON_GetObjectItemCaseSensitive(root, "q");
        if (!q) return bad(a, 400, "Invalid request: missing q parameter");
        if (!cJSON_IsString(q) && !cJSON_IsArray(q))
            return bad(a, 400, "\"q\" must be a string or an array of strings");
        a->many = cJSON_IsArray(q);
        int alternatives = 0;
        if (!int_field(a, root, "beam", 1, 256, lim->default_beam, &a->beam)) return 0;
        if (!int_field(a, root, "alternatives", 0, 255, 0, &alternatives)) return 0;
        if (!int_field(a, root, "nbest", 1, 256, alternatives + 1, &a->nbest)) return 0;
        if (a->nbest > a->beam) a->beam = a->nbest;  // n hypotheses need a beam of n
        a->alternatives = cJSON_GetObjectItemCaseSensitive(root, "alternatives") != NULL;
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attention");
        if (att && !cJSON_IsBool(att)) return bad(a, 400, "\"attention\" must be true or false");
        a->attention = cJSON_IsTrue(att);
        if (!libre_fields(a, root)) return 0;
    } else {
        return bad(a, 400, "the body must be a JSON object ({\"q\": ...}) or array ([{\"src\": ...}])");
    }
    a->n = a->many ? (size_t)cJSON_GetArraySize(q) : 1;
    if (!within_limits(a, lim)) return 0;
    a->lines = xcalloc(a->n + 1, sizeof *a->lines);
    size_t chars = 0, i = 0;
    if (!a->many && !take_sentence(a, q, 0, "q", &chars)) return 0;
    for (const cJSON *v = a->many ? q->child : NULL; v; v = v->next, i++) {
        const cJSON *src = v;
        if (a->opennmt) {
            src = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "src") : NULL;
            if (!src) return bad(a, 400, "request[%zu] must be an object with \"src\"", i);
        }
        if (!take_sentence(a, src, i, what, &chars)) return 0;
    }
    if (chars > (size_t)lim->max_chars)
        return bad(a, 413, "%zu characters, more than this server's %d (--max-chars)", chars, lim->max_chars);
    return 1;
}

// Where the body holds a \u0000 escape (cJSON would cut the string there), or -1.
static long nul_escape(const char *s, size_t len) {
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') in_string = !in_string;
        if (!in_string || s[i] != '\\' || i + 1 >= len) continue;
        if (s[i + 1] == 'u' && i + 6 <= len && !memcmp(s + i + 2, "0000", 4)) return (long)i;
        i++;  // the escaped character (a quote among them)
    }
    return -1;
}

int parse_json_body(const char *body, size_t len, cJSON **root, char *err, size_t errlen) {
    *root = NULL;
    if (!body) body = "";
    long at = utf8_check(body, len);
    const char *nul = memchr(body, 0, len);
    size_t where;
    if (at >= 0) snprintf(err, errlen, "the body is not valid UTF-8 (byte %ld)", at);
    else if (nul) snprintf(err, errlen, "a NUL byte in the body (byte %ld)", (long)(nul - body));
    else if ((at = nul_escape(body, len)) >= 0) snprintf(err, errlen, "a NUL character (\\u0000) in the body (byte %ld)", at);
    else {
        int kind = json_parse_whole(body, len, root, &where);
        if (kind == JSON_WHOLE) return 1;
        snprintf(err, errlen, kind == JSON_MALFORMED ? "malformed JSON (byte %zu)" : "malformed JSON: more after the value (byte %zu)", where);
    }
    return 0;
}

int parse_body(Ask *a, const char *body, size_t len, const AskLimits *lim) {
    memset(a, 0, sizeof *a);
    if (!parse_json_body(body, len, &a->root, a->err, sizeof a->err)) {
        a->status = 400;
        return 0;
    }
    return parse_ask(a, a->root, lim);
}

void ask_free(Ask *a) {
    free(a->lines);
    cJSON_Delete(a->root);
    a->lines = NULL;
    a->root = NULL;
}
