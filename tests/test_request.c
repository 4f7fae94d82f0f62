// test_request.c — a /translate body read and checked (serve/request.h):
// one JSON value with only whitespace after it, no NUL raw or escaped, and
// the limits on sentences (an empty one counts) and on sentences x beam x
// n-best, each refusal with its status and a message naming the limit.
#include <criterion/criterion.h>
#include <string.h>

#include "serve/request.h"

static const AskLimits LIM = {4, 1000, 10, 200};

// parse_body on s (its strlen, or len when given); returns the status (200: accepted).
static unsigned body(const char *s, size_t len, Ask *a) {
    int ok = parse_body(a, s, len ? len : strlen(s), &LIM);
    return ok ? 200 : a->status;
}

Test(request, trailing_bytes_refused_whitespace_kept) {
    Ask a;
    cr_expect_eq(body("{\"q\":\"a\"} GARBAGE", 0, &a), 400);
    cr_expect(strstr(a.err, "more after the value (byte 10)"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\"}{\"q\":\"b\"}", 0, &a), 400);
    ask_free(&a);
    cr_expect_eq(body("[{\"src\":\"a\"}] ]", 0, &a), 400);
    ask_free(&a);
    cr_expect_eq(body("\x01{\"q\":\"a\"}", 0, &a), 400);  // cJSON alone skips control bytes before the value
    cr_expect(strstr(a.err, "malformed JSON (byte 0)"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body(" {\"q\":\"a\"} \r\n\t", 0, &a), 200);
    cr_expect_str_eq(a.lines[0], "a");
    ask_free(&a);
}

Test(request, nul_raw_or_escaped_refused) {
    Ask a;
    cr_expect_eq(body("{\"q\":\"a\\u0000b\"}", 0, &a), 400);
    cr_expect(strstr(a.err, "\\u0000"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\0b\"}", 12, &a), 400);
    cr_expect(strstr(a.err, "NUL byte in the body (byte 7)"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\"}\0", 11, &a), 400);
    ask_free(&a);
    // An escaped backslash before u0000 is text, not a NUL.
    cr_expect_eq(body("{\"q\":\"a\\\\u0000b\"}", 0, &a), 200);
    cr_expect_str_eq(a.lines[0], "a\\u0000b");
    ask_free(&a);
}

Test(request, sentences_counted_even_empty) {
    Ask a;
    cr_expect_eq(body("{\"q\":[\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"]}", 0, &a), 200);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":[\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"]}", 0, &a), 413);
    cr_expect(strstr(a.err, "11 sentences, more than this server's 10 (--max-sentences)"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("[{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},"
                      "{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"},{\"src\":\"\"}]", 0, &a), 413);
    ask_free(&a);
}

Test(request, work_is_sentences_beam_nbest) {
    Ask a;
    cr_expect_eq(body("{\"q\":[\"\",\"\"],\"beam\":10,\"nbest\":10}", 0, &a), 200);  // 2 x 10 x 10 = 200
    ask_free(&a);
    cr_expect_eq(body("{\"q\":[\"\",\"\",\"\"],\"beam\":10,\"nbest\":10}", 0, &a), 413);
    cr_expect(strstr(a.err, "3 sentences x beam 10 x n-best 10 = 300, more than this server's budget of 200 "
                            "(--max-work)"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"\",\"nbest\":15}", 0, &a), 413);  // the beam grows to the n-best: 225
    ask_free(&a);
}

Test(request, libretranslate_fields) {
    Ask a;
    cr_expect_eq(body("{\"q\":\"a\\nb\",\"source\":\"de\",\"target\":\"en\",\"format\":\"html\",\"api_key\":\"k\","
                      "\"alternatives\":2}", 0, &a), 200);
    cr_expect_str_eq(a.source, "de");
    cr_expect_str_eq(a.target, "en");
    cr_expect_str_eq(a.api_key, "k");
    cr_expect(a.html && a.alternatives);
    cr_expect_eq(a.nbest, 3);
    cr_expect_str_eq(a.lines[0], "a\nb");  // a paragraph: cut later (serve/segments.h)
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\",\"source\":null,\"format\":\"text\",\"alternatives\":0}", 0, &a), 200);
    cr_expect(!a.source && !a.target && !a.html && a.alternatives);
    cr_expect_eq(a.nbest, 1);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\",\"format\":\"pdf\"}", 0, &a), 400);
    cr_expect(strstr(a.err, "\"format\" must be \"text\" or \"html\""), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\",\"target\":5}", 0, &a), 400);
    cr_expect(strstr(a.err, "\"target\" must be a string"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("{\"q\":\"a\\nb\",\"attention\":true}", 0, &a), 400);  // a map is of one sentence
    cr_expect(strstr(a.err, "when asking for attention"), "%s", a.err);
    ask_free(&a);
    cr_expect_eq(body("[{\"src\":\"a\\r\"}]", 0, &a), 400);
    ask_free(&a);
}
