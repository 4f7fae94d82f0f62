// serve/request.h — what a POST /translate body asks for, read and checked: LibreTranslate's
// object {"q": "text" | ["text", ...], "source": "de" | "auto", "target": "en",
// "format": "text" | "html", "api_key": "...", "alternatives": N - 1} with nmt's
// "beam": K, "nbest": N and "attention": bool, or OpenNMT-py's array
// [{"src": "text", "id": N}, ...]. The body is one JSON value (trailing
// whitespace only) of valid UTF-8 without NUL (raw or \u0000); a form's fields
// come as such an object (serve/form.h). Every text must be a string; a
// LibreTranslate text may hold line breaks (serve/segments.h cuts it), an
// OpenNMT-py one or one asking for attention may not. All of them at most
// max_sentences texts, max_chars characters, and texts x beam x n-best at
// most max_work (counted again on the sentences the texts are cut into).
#ifndef NMT_SERVE_REQUEST_H
#define NMT_SERVE_REQUEST_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    int default_beam;         // when the request does not say
    int max_chars;            // characters of all sentences
    int max_sentences;        // sentences (an empty one counts)
    int max_work;              // sentences x beam x n-best
} AskLimits;

typedef struct {
    cJSON *root;              // the parsed body (parse_body's; ask_free deletes it)
    const char **lines;       // n pointers into the parsed JSON
    size_t n;
    int beam, nbest, attention;
    int many;                 // q was an array (or the OpenNMT-py shape): answer with arrays
    int opennmt;              // the OpenNMT-py shape
    int alternatives;         // "alternatives" was given: answer with them (LibreTranslate's)
    int html;                 // "format": "html"
    const char *source, *target, *api_key;  // as given (into root), NULL when absent
    unsigned status;          // when refused: 400, or 413 over a limit
    char err[300];            // and why
} Ask;

// The body's bytes checked (valid UTF-8, no NUL raw or escaped) and parsed
// as one JSON value into *root: 1, or 0 with err (a 400).
int parse_json_body(const char *body, size_t len, cJSON **root, char *err, size_t errlen);
// parse_json_body, then parse_ask. Returns 1 when the
// request is good, 0 with a->status and a->err when not; either way the
// caller calls ask_free(a).
int parse_body(Ask *a, const char *body, size_t len, const AskLimits *lim);
// The request in root (not taken over). Returns as parse_body.
int parse_ask(Ask *a, const cJSON *root, const AskLimits *lim);
void ask_free(Ask *a);

#endif
