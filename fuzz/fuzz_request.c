// fuzz_request.c — nmt serve's request reader (src/serve/request.c) on
// arbitrary bodies: the JSON parsed as the server parses it, then parse_ask.
//
// Oracles: a good request has a beam in 1..256, an n-best within it, n
// sentences that are strings of valid UTF-8 without line breaks and at most
// max_chars characters in all; a refused one has status 400 or 413 and a
// message. Everything is freed (LeakSanitizer).
#include "fuzz.h"

#include "serve/request.h"

enum { MAX_CHARS = 1000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return 0;
    Ask a;
    int ok = parse_ask(&a, root, 4, MAX_CHARS);
    if (ok) {
        FUZZ_CHECK(a.beam >= 1 && a.beam <= 256 && a.nbest >= 1 && a.nbest <= a.beam, "beam %d nbest %d", a.beam,
                   a.nbest);
        size_t chars = 0;
        for (size_t i = 0; i < a.n; i++) {
            const char *s = a.lines[i];
            FUZZ_CHECK(s != NULL, "sentence %zu is NULL", i);
            FUZZ_CHECK(utf8_valid(s, strlen(s)), "sentence %zu is not valid UTF-8", i);
            FUZZ_CHECK(!strpbrk(s, "\r\n"), "sentence %zu has a line break", i);
            for (const char *p = s; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
        }
        FUZZ_CHECK(chars <= MAX_CHARS, "%zu characters accepted", chars);
        FUZZ_CHECK(a.many || a.n == 1, "one sentence expected, %zu read", a.n);
    } else {
        FUZZ_CHECK((a.status == 400 || a.status == 413) && a.err[0], "refused with status %u, '%s'", a.status, a.err);
    }
    free(a.lines);
    cJSON_Delete(root);
    return 0;
}
