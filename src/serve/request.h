// serve/request.h — what a POST /translate body asks for, read and checked: LibreTranslate's
// object {"q": "text" | ["text", ...], "beam": K, "nbest": N (or "alternatives":
// N - 1), "attention": bool} or OpenNMT-py's array [{"src": "text", "id": N}, ...].
// Every sentence must be a string of valid UTF-8 without line breaks; the
// characters of all of them at most max_chars.
#ifndef NMT_SERVE_REQUEST_H
#define NMT_SERVE_REQUEST_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    const char **lines;       // n pointers into the parsed JSON (free(lines) when done)
    size_t n;
    int beam, nbest, attention;
    int many;                 // q was an array (or the OpenNMT-py shape): answer with arrays
    int opennmt;              // the OpenNMT-py shape
    unsigned status;          // when refused: 400, or 413 for too many characters
    char err[300];            // and why
} Ask;

// Returns 1 when the request is good, 0 with a->status and a->err when not.
// Either way a->lines is allocated (or NULL) and the caller frees it.
int parse_ask(Ask *a, const cJSON *root, int default_beam, int max_chars);

#endif
