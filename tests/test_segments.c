// test_segments.c — a request's text cut into sentences and kept pieces and
// put back (serve/segments.h): one line as it is, paragraphs line by line,
// html's markup kept and its text's entities decoded, then escaped.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/segments.h"

// The sentences of text joined with '|', and the text put back with each
// sentence replaced by "[sentence]".
static void cut_join(const char *text, int html, char *sentences, char *joined) {
    Segments s;
    segments_cut(&s, text, html);
    char *tr[64];
    char buf[64][128];
    sentences[0] = 0;
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!s.seg[i].sentence) continue;
        if (k) strcat(sentences, "|");
        strcat(sentences, s.seg[i].text);
        snprintf(buf[k], sizeof buf[k], "[%s]", s.seg[i].text);
        tr[k] = buf[k];
        k++;
    }
    cr_assert_eq(k, s.sentences);
    char *out = segments_join(&s, tr);
    strcpy(joined, out);
    free(out);
    segments_free(&s);
}

Test(segments, one_line_is_one_sentence_as_given) {
    char s[512], j[512];
    cut_join("  Hallo Welt  ", 0, s, j);
    cr_expect_str_eq(s, "  Hallo Welt  ");
    cr_expect_str_eq(j, "[  Hallo Welt  ]");
    cut_join("", 0, s, j);  // an empty text is still one sentence (what `nmt translate` reads for it)
    cr_expect_str_eq(j, "[]");
}

Test(segments, paragraphs_line_by_line_breaks_and_spaces_kept) {
    char s[512], j[512];
    cut_join("eins zwei\n\n  drei \r\nvier\r\n", 0, s, j);
    cr_expect_str_eq(s, "eins zwei|drei|vier");
    cr_expect_str_eq(j, "[eins zwei]\n\n  [drei] \r\n[vier]\r\n");
    cut_join("a\rb\n \t\nc", 0, s, j);
    cr_expect_str_eq(s, "a|b|c");
    cr_expect_str_eq(j, "[a]\r[b]\n \t\n[c]");
}

Test(segments, html_markup_kept_entities_decoded_then_escaped) {
    char s[512], j[512];
    cut_join("<p class=\"a>b\">Tom &amp; Jerry</p>\n<br/>x &lt; y<!-- a <b> -->z", 1, s, j);
    cr_expect_str_eq(s, "Tom & Jerry|x < y|z");
    cr_expect_str_eq(j, "<p class=\"a>b\">[Tom &amp; Jerry]</p>\n<br/>[x &lt; y]<!-- a <b> -->[z]");
    cut_join("<script>if (a < b) x();</script><STYLE>p{}</style>Hallo", 1, s, j);
    cr_expect_str_eq(s, "Hallo");
    cr_expect_str_eq(j, "<script>if (a < b) x();</script><STYLE>p{}</style>[Hallo]");
    cut_join("&#72;&#x69; &nbsp;&bogus; &#0; &#xD800; &", 1, s, j);
    cr_expect_str_eq(s, "Hi \xC2\xA0&bogus; &#0; &#xD800; &");
    cut_join("<b>unclosed", 1, s, j);
    cr_expect_str_eq(s, "unclosed");
    cut_join("text <a href='x", 1, s, j);  // a tag never closed is kept as markup
    cr_expect_str_eq(s, "text");
    cr_expect_str_eq(j, "[text] <a href='x");
}
