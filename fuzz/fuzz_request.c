// fuzz_request.c — nmt serve's request reader (src/serve/request.c) on
// arbitrary bodies: parse_body, the server's own path from bytes to a request.
//
// Oracles: a good request's body is valid UTF-8 with no NUL byte and no
// \u0000 escape (found here another way: a backslash run of odd length
// before "u0000"), and nothing but whitespace before and after its JSON value
// (the end found by cJSON's own parse); it has a beam in 1..256, an n-best within it,
// at most MAX_SENTENCES sentences and MAX_WORK sentences x beam x n-best,
// texts that are strings of valid UTF-8 (with line breaks only in
// LibreTranslate's shape without attention) and at most MAX_CHARS characters
// in all; a refused one has status 400 or 413 and a message. Each text cut
// into sentences (serve/segments.c) and put back with every sentence as its
// own translation gives the text again (plain text), and html cutting never
// fails. Everything is freed (LeakSanitizer).
#include "fuzz.h"

#include "serve/request.h"
#include "serve/segments.h"

enum { MAX_CHARS = 1000, MAX_SENTENCES = 50, MAX_WORK = 400 };

// Whether s[0..n) holds "\u0000" as an escape: an odd run of backslashes before it.
static int has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 5 <= n; i++) {
        if (memcmp(s + i, "u0000", 5) || i == 0) continue;
        size_t run = 0;
        while (run < i && s[i - 1 - run] == '\\') run++;
        if (run % 2) return 1;
    }
    return 0;
}

static void check_body(const uint8_t *data, size_t size) {
    const char *body = (const char *)data, *end = NULL;
    FUZZ_CHECK(utf8_valid(body, size), "a body of invalid UTF-8 accepted");
    FUZZ_CHECK(!memchr(body, 0, size), "a body with a NUL byte accepted");
    FUZZ_CHECK(!has_nul_escape(body, size), "a body with \\u0000 accepted");
    cJSON *again = cJSON_ParseWithLengthOpts(body, size, &end, 0);
    FUZZ_CHECK(again != NULL, "an accepted body does not parse");
    const char *start = body;  // cJSON skips any byte up to 32 before the value; JSON only whitespace
    while (start < end && (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')) start++;
    FUZZ_CHECK((unsigned char)*start > 32, "byte %ld before the JSON accepted", (long)(start - body));
    for (const char *p = end; p < body + size; p++)
        FUZZ_CHECK(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n', "byte %ld after the JSON accepted",
                   (long)(p - body));
    cJSON_Delete(again);
}

// Plain text cut and joined with each sentence as its translation is the text
// itself; html is cut and joined without trouble.
static void check_segments(const char *text) {
    for (int html = 0; html < 2; html++) {
        Segments g;
        segments_cut(&g, text, html);
        char **same = calloc(g.sentences + 1, sizeof *same);
        size_t k = 0;
        for (size_t i = 0; i < g.n; i++)
            if (g.seg[i].sentence) same[k++] = g.seg[i].text;
        FUZZ_CHECK(k == g.sentences, "%zu sentences counted, %zu found", g.sentences, k);
        char *back = segments_join(&g, same);
        FUZZ_CHECK(html || !strcmp(back, text), "plain text not given back: '%s' -> '%s'", text, back);
        free(back);
        free(same);
        segments_free(&g);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Ask a;
    AskLimits lim = {4, MAX_CHARS, MAX_SENTENCES, MAX_WORK};
    int ok = parse_body(&a, (const char *)data, size, &lim);
    if (ok) {
        check_body(data, size);
        FUZZ_CHECK(a.beam >= 1 && a.beam <= 256 && a.nbest >= 1 && a.nbest <= a.beam, "beam %d nbest %d", a.beam,
                   a.nbest);
        FUZZ_CHECK(a.n <= MAX_SENTENCES && (double)a.n * a.beam * a.nbest <= MAX_WORK, "%zu x %d x %d accepted", a.n,
                   a.beam, a.nbest);
        size_t chars = 0;
        for (size_t i = 0; i < a.n; i++) {
            const char *s = a.lines[i];
            FUZZ_CHECK(s != NULL, "sentence %zu is NULL", i);
            FUZZ_CHECK(utf8_valid(s, strlen(s)), "sentence %zu is not valid UTF-8", i);
            FUZZ_CHECK(!(a.opennmt || a.attention) || !strpbrk(s, "\r\n"), "sentence %zu has a line break", i);
            check_segments(s);
            for (const char *p = s; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
        }
        FUZZ_CHECK(chars <= MAX_CHARS, "%zu characters accepted", chars);
        FUZZ_CHECK(a.many || a.n == 1, "one sentence expected, %zu read", a.n);
    } else {
        FUZZ_CHECK((a.status == 400 || a.status == 413) && a.err[0], "refused with status %u, '%s'", a.status, a.err);
    }
    ask_free(&a);
    return 0;
}
