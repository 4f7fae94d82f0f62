// serve/segments.c — cutting a text into sentences and kept pieces, and back (segments.h).
#include "serve/segments.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void add(Segments *s, const char *p, size_t len, int sentence) {
    if (!len && !sentence) return;
    char *t = xmalloc(len + 1);
    memcpy(t, p, len);
    t[len] = 0;
    Segment g = {t, sentence};
    arrput(s->seg, g);
    s->n++;
    s->sentences += (size_t)sentence;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

// One line (no break in it): its spaces around kept, the rest a sentence
// when there is any.
static void add_line(Segments *s, const char *p, size_t len) {
    size_t a = 0, b = len;
    while (a < b && blank(p[a])) a++;
    while (b > a && blank(p[b - 1])) b--;
    add(s, p, a, 0);
    if (b > a) add(s, p + a, b - a, 1);
    add(s, p + b, len - b, 0);
}

// Text of several lines (or html's text between tags): line by line, the
// breaks kept.
static void add_lines(Segments *s, const char *p, size_t len) {
    size_t at = 0;
    while (at < len) {
        size_t end = at;
        while (end < len && p[end] != '\n' && p[end] != '\r') end++;
        add_line(s, p + at, end - at);
        size_t brk = end;
        if (brk < len && p[brk] == '\r') brk++;
        if (brk < len && p[brk] == '\n' && (brk == end || p[end] == '\r')) brk++;
        add(s, p + end, brk - end, 0);
        at = brk;
    }
}


// The entity at p (p[0] == '&') written to out: its length in p, 0 when it is
// not one we know (then the '&' is text).
static size_t entity(const char *p, size_t len, char *out, size_t *outlen) {
    static const struct { const char *name, *text; } named[] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&apos;", "'"},
        {"&nbsp;", "\xC2\xA0"}};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
        size_t n = strlen(named[k].name);
        if (n <= len && !strncmp(p, named[k].name, n)) {
            *outlen = strlen(named[k].text);
            memcpy(out, named[k].text, *outlen);
            return n;
        }
    }
    if (len < 4 || p[1] != '#') return 0;
    int hex = p[2] == 'x' || p[2] == 'X';
    size_t i = hex ? 3 : 2, digits = 0;
    uint32_t cp = 0;
    for (; i < len && digits < 8; i++, digits++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : hex && (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (d < 0) break;
        cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
    }
    if (!digits || i >= len || p[i] != ';' || !cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    *outlen = utf8_put(cp, out);
    return i + 1;
}

// html text between tags: entities decoded, then cut line by line.
static void add_html_text(Segments *s, const char *p, size_t len) {
    char *t = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t used = 0, outlen = 0;
        if (p[i] == '&') used = entity(p + i, len - i, t + n, &outlen);
        if (used) {
            i += used;
            n += outlen;  // an entity is never shorter than what it stands for
        } else {
            t[n++] = p[i++];
        }
    }
    add_lines(s, t, n);
    free(t);
}

// Where the markup starting at p (p[0] == '<') ends: past its '>' (past the
// closing tag of a script or style), or len.
static size_t markup_end(const char *p, size_t len) {
    if (len >= 4 && !strncmp(p, "<!--", 4)) {
        const char *e = strstr(p + 4, "-->");
        return e ? (size_t)(e - p) + 3 : len;
    }
    size_t i = 1;
    char quote = 0;
    for (; i < len && (quote || p[i] != '>'); i++)
        if (p[i] == '"' || p[i] == '\'') quote = quote == p[i] ? 0 : quote ? quote : p[i];
    size_t end = i < len ? i + 1 : len;
    static const char *const raw[] = {"script", "style"};
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(raw[k]);
        if (len <= n + 1 || strncasecmp(p + 1, raw[k], n) || (p[n + 1] != '>' && !blank(p[n + 1]) && p[n + 1] != '\n'))
            continue;
        for (size_t j = end; j + n + 2 <= len; j++)
            if (p[j] == '<' && p[j + 1] == '/' && !strncasecmp(p + j + 2, raw[k], n)) return j + markup_end(p + j, len - j);
        return len;
    }
    return end;
}

void segments_cut(Segments *s, const char *text, int html) {
    memset(s, 0, sizeof *s);
    s->html = html;
    size_t len = strlen(text);
    if (!html) {
        if (strpbrk(text, "\r\n")) add_lines(s, text, len);
        else add(s, text, len, 1);
        return;
    }
    size_t at = 0;
    while (at < len) {
        if (text[at] == '<') {
            size_t end = at + markup_end(text + at, len - at);
            add(s, text + at, end - at, 0);
            at = end;
            continue;
        }
        size_t end = at;
        while (end < len && text[end] != '<') end++;
        add_html_text(s, text + at, end - at);
        at = end;
    }
}

// t with &, < and > escaped (html) appended to the string out.
static void put(char **out, const char *t, int escape) {
    for (; *t; t++) {
        const char *e = !escape ? NULL : *t == '&' ? "&amp;" : *t == '<' ? "&lt;" : *t == '>' ? "&gt;" : NULL;
        if (e) memcpy(arraddnptr(*out, strlen(e)), e, strlen(e));
        else arrput(*out, *t);
    }
}

char *segments_join(const Segments *s, char *const *translations) {
    char *out = NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->seg[i].sentence) put(&out, translations[k++], s->html);
        else put(&out, s->seg[i].text, 0);
    }
    size_t n = (size_t)arrlen(out);
    char *text = xmalloc(n + 1);
    if (n) memcpy(text, out, n);
    text[n] = 0;
    arrfree(out);
    return text;
}

void segments_free(Segments *s) {
    for (size_t i = 0; i < s->n; i++) free(s->seg[i].text);
    arrfree(s->seg);
    memset(s, 0, sizeof *s);
}
