// serve/segments.h — a request's text cut into the sentences the model reads
// and the pieces kept as they are, and put back together around the
// translations. LibreTranslate's clients send paragraphs (line breaks) and,
// with "format": "html", markup; the model reads one line of text at a time.
//   plain text of one line: one sentence, exactly as given (what `nmt
//     translate` reads for that line), even empty;
//   plain text of several lines: each line with something besides spaces is a
//     sentence (its spaces around kept), the line breaks and blank lines kept;
//   html: tags, comments, declarations and the contents of <script> and
//     <style> kept; the text between them cut like plain text of several
//     lines, its entities (&amp; &lt; &gt; &quot; &#39; &nbsp; &#N; &#xN;)
//     decoded for the model and &, <, > escaped in the translation.
#ifndef NMT_SERVE_SEGMENTS_H
#define NMT_SERVE_SEGMENTS_H

#include <stddef.h>

typedef struct {
    char *text;     // malloc'ed
    int sentence;   // 1: decoded (text is what the model reads); 0: kept as is
} Segment;

typedef struct {
    Segment *seg;
    size_t n, sentences;
    int html;
} Segments;

// Cuts text (valid UTF-8, no NUL).
void segments_cut(Segments *s, const char *text, int html);
// The text with the k-th sentence replaced by translations[k]; malloc'ed.
char *segments_join(const Segments *s, char *const *translations);
void segments_free(Segments *s);

#endif
