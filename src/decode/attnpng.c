// decode/attnpng.c — attention heatmaps: cells, labels and a colour bar rasterised
// into an RGB buffer, encoded by stb_image_write, written atomically.
#include "decode/attnpng.h"
#include "common/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The header is all static functions; we do not use every one of them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop
#include <stb/stb_image_write.h>

enum {
    S = 2,             // stb_easy_font pixels are drawn 2x2: legible, still compact
    GLYPH_H = 9,       // glyph box height at scale 1, descenders included
    LINE = 12 * S,     // height of one line of text
    TS = 3,            // a title that fits is drawn larger, apart from the head names
    PAD = 14,          // outer margin
    GAP = 8,           // between a label and what it labels
    PANEL_GAP = 36,    // between heatmaps in a grid
    BAR_W = 18,        // colour bar width
    BAR_MIN_H = 5 * ATTN_CELL,
    TITLE_MAX = 80,    // characters of title kept
    LABEL_BUF = ATTN_LABEL_MAX + 4,
    QUAD_BYTES = 64,   // 4 vertices x 16 bytes
    MAX_QUADS_PER_CHAR = 16, // the widest glyph ('@' and friends) needs 11
    MAX_SIDE = 30000,  // pixels; also keeps every int product below INT_MAX
    MAX_HEADS = 256,
};
static const long long MAX_PIXELS = 64ll << 20; // 192 MB of RGB at most

typedef struct { unsigned char r, g, b; } Rgb;
static const Rgb BG = {255, 255, 255}, INK = {20, 20, 20}, FRAME = {90, 90, 90},
                 NAN_GREY = {170, 170, 170};

// ---------------------------------------------------------------- colours

// Nine stops sampled from the viridis colour map (dark purple -> yellow):
// lightness rises monotonically, so brighter always means more attention,
// also in greyscale and for the common colour-vision deficiencies.
static const Rgb RAMP[9] = {
    {68, 1, 84},   {71, 45, 123},  {59, 82, 139},  {44, 114, 142}, {33, 145, 140},
    {40, 174, 128}, {94, 201, 98}, {173, 220, 48}, {253, 231, 37},
};

static Rgb ramp(float v) {
    if (isnan(v)) return NAN_GREY;
    float t = v < 0 ? 0 : v > 1 ? 1 : v;
    float x = t * 8;
    int i = (int)x;
    if (i >= 8) return RAMP[8];
    float f = x - (float)i;
    Rgb a = RAMP[i], b = RAMP[i + 1];
    return (Rgb){(unsigned char)lrintf(a.r + f * (b.r - a.r)),
                 (unsigned char)lrintf(a.g + f * (b.g - a.g)),
                 (unsigned char)lrintf(a.b + f * (b.b - a.b))};
}

// ---------------------------------------------------------------- labels

// Latin Extended-A (U+0100..U+017F) without accents; Œ/œ are handled apart.
static const char LATIN_EXT_A[] =
    "AaAaAa" "CcCcCcCc" "DdDd" "EeEeEeEeEe" "GgGgGgGg" "HhHh" "IiIiIiIiIi" "Ii" "Jj" "Kkk"
    "LlLlLlLlLl" "NnNnNnnNn" "OoOoOo" "Oo" "RrRrRr" "SsSsSsSs" "TtTtTt" "UuUuUuUuUuUu" "Ww"
    "YyY" "ZzZzZz" "s";
_Static_assert(sizeof LATIN_EXT_A == 0x80 + 1, "one letter per code point U+0100..U+017F");

// U+00C0..U+00FF without accents.
static const char *const LATIN1_UPPER[64] = {
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
    "D", "N", "O", "O", "O", "O", "O", "x", "O", "U", "U", "U", "U", "Y", "Th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "/", "o", "u", "u", "u", "u", "y", "th", "y",
};

// ASCII stand-in for one code point (stb_easy_font draws only 32..126).
static const char *ascii_for(unsigned cp, char one[2]) {
    if (cp >= 32 && cp < 127) {
        one[0] = (char)cp;
        one[1] = 0;
        return one;
    }
    if (cp >= 0xC0 && cp <= 0xFF) return LATIN1_UPPER[cp - 0xC0];
    if (cp == 0x152) return "OE";
    if (cp == 0x153) return "oe";
    if (cp >= 0x100 && cp <= 0x17F) {
        one[0] = LATIN_EXT_A[cp - 0x100];
        one[1] = 0;
        return one;
    }
    switch (cp) {
    case 0xA0: return " ";
    case 0xAB: case 0xBB: case 0x201C: case 0x201D: case 0x201E: case 0x201F: return "\"";
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: return "'";
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2212: return "-";
    case 0x2026: return "...";
    case 0x2581: return "_"; // the BPE word marker
    default: return "?";
    }
}

// out (cap >= max_chars + 1) gets the ASCII form of the UTF-8 string in,
// cut to max_chars characters with ".." at the end when it is longer.
static void to_ascii(char *out, int max_chars, const char *in) {
    int n = 0, cut = 0;
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t left = strlen((const char *)s);
    while (*s && !cut) {
        uint32_t cp;
        char one[2];
        // An invalid byte shows as U+FFFD and consumes one byte, so any label makes progress.
        int k = utf8_next(s, left, &cp);
        if (!k) {
            cp = 0xFFFD;
            k = 1;
        }
        s += k;
        left -= (size_t)k;
        for (const char *a = ascii_for(cp, one); *a; a++) {
            if (n == max_chars) { cut = 1; break; }
            out[n++] = *a;
        }
    }
    if (cut || *s) { // more text than room: end in ".."
        n = max_chars >= 2 ? max_chars - 2 : 0;
        out[n++] = '.';
        out[n++] = '.';
    }
    out[n] = 0;
}

// Labels as ASCII, or "1", "2", ... when the caller gave none.
static char (*make_labels(const char *const *labels, int n))[LABEL_BUF] {
    char (*out)[LABEL_BUF] = xmalloc((size_t)n * LABEL_BUF);
    for (int i = 0; i < n; i++) {
        if (labels) to_ascii(out[i], ATTN_LABEL_MAX, labels[i]);
        else snprintf(out[i], LABEL_BUF, "%d", i + 1);
    }
    return out;
}

static int text_w_at(const char *ascii, int scale) { return scale * stb_easy_font_width((char *)ascii); }
static int text_w(const char *ascii) { return text_w_at(ascii, S); }

static int max_text_w(char (*labels)[LABEL_BUF], int n) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int w = text_w(labels[i]);
        if (w > m) m = w;
    }
    return m;
}

// ---------------------------------------------------------------- canvas

typedef struct {
    unsigned char *px; // (h, w, 3)
    int w, h;
    char *quads;       // stb_easy_font vertex buffer
    int quads_bytes;
} Canvas;

static void fill(Canvas *c, int x0, int y0, int x1, int y1, Rgb col) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (int y = y0; y < y1; y++) {
        unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x0) * 3;
        for (int x = x0; x < x1; x++, p += 3) {
            p[0] = col.r;
            p[1] = col.g;
            p[2] = col.b;
        }
    }
}

// Draws ASCII text magnified `scale` times. Horizontal: (x, y) is the top-left
// corner.
// Vertical (turned 90 degrees counter-clockwise, read bottom to top): (x, y)
// is the bottom-left corner, the text rises from y.
static void draw_text_at(Canvas *c, int x, int y, const char *ascii, int vertical, int scale, Rgb col) {
    int nq = stb_easy_font_print(0, 0, (char *)ascii, NULL, c->quads, c->quads_bytes);
    for (int q = 0; q < nq; q++) {
        const float *v0 = (const float *)(c->quads + (size_t)q * QUAD_BYTES);
        const float *v2 = (const float *)(c->quads + (size_t)q * QUAD_BYTES + 32);
        // Glyph coordinates are whole pixels at scale 1: exact after scaling.
        int gx0 = scale * (int)v0[0], gy0 = scale * (int)v0[1];
        int gx1 = scale * (int)v2[0], gy1 = scale * (int)v2[1];
        if (vertical) fill(c, x + gy0, y - gx1, x + gy1, y - gx0, col);
        else fill(c, x + gx0, y + gy0, x + gx1, y + gy1, col);
    }
}

static void draw_text(Canvas *c, int x, int y, const char *ascii, int vertical, Rgb col) {
    draw_text_at(c, x, y, ascii, vertical, S, col);
}

// ---------------------------------------------------------------- layout

typedef struct {
    AttnLayout pub;
    int rowband, colband, sub_h, title_h; // label column, label band, subtitle, title
    int title_scale;
    int bar_x, bar_y, bar_h;
} Layout;

static const char *const BAR_TICKS[3] = {"1.0", "0.5", "0.0"};

// Computes everything from the label widths; NMT_ERR_INPUT when too large.
static int layout(Layout *L, const char *path, int panels, int rows, int cols,
                  char (*rl)[LABEL_BUF], char (*cl)[LABEL_BUF], const char *title_ascii) {
    memset(L, 0, sizeof *L);
    if (rows > MAX_SIDE / ATTN_CELL || cols > MAX_SIDE / ATTN_CELL)
        return err_set(NMT_ERR_INPUT, "%s: %d x %d attention weights: too many to draw (at most %d per side)",
                       path, rows, cols, MAX_SIDE / ATTN_CELL);
    long long grid_w = (long long)cols * ATTN_CELL, grid_h = (long long)rows * ATTN_CELL;
    L->rowband = max_text_w(rl, rows) + GAP;
    L->colband = max_text_w(cl, cols) + GAP;
    L->sub_h = panels > 1 ? LINE : 0;

    int per_row = 1;
    while ((long long)per_row * per_row < panels) per_row++; // near-square grid
    int prow = (panels + per_row - 1) / per_row;
    long long panel_w = L->rowband + grid_w, panel_h = L->sub_h + L->colband + grid_h;
    long long content_w = per_row * panel_w + (long long)(per_row - 1) * PANEL_GAP;
    long long content_h = prow * panel_h + (long long)(prow - 1) * PANEL_GAP;

    int tick_w = 0;
    for (int i = 0; i < 3; i++)
        if (text_w(BAR_TICKS[i]) > tick_w) tick_w = text_w(BAR_TICKS[i]);
    long long bar_h = grid_h > BAR_MIN_H ? grid_h : BAR_MIN_H;
    long long w = PAD + content_w + 2 * GAP + BAR_W + GAP + tick_w + PAD;
    // A long title is not worth a wide blank picture: it then stays small.
    L->title_scale = 2LL * PAD + text_w_at(title_ascii, TS) <= w ? TS : S;
    long long tw = 2LL * PAD + text_w_at(title_ascii, L->title_scale);
    if (tw > w) w = tw;
    L->title_h = title_ascii[0] ? 12 * L->title_scale + GAP : 0;
    long long top = PAD + L->title_h;
    long long body_h = content_h;
    if (L->sub_h + L->colband + bar_h > body_h) body_h = L->sub_h + L->colband + bar_h;
    long long h = top + body_h + PAD;
    if (w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS)
        return err_set(NMT_ERR_INPUT, "%s: the picture would be %lld x %lld pixels: too large (%d heads of %d x %d)",
                       path, w, h, panels, rows, cols);

    L->pub.width = (int)w;
    L->pub.height = (int)h;
    L->pub.grid_x = PAD + L->rowband;
    L->pub.grid_y = (int)top + L->sub_h + L->colband;
    L->pub.panels = panels;
    L->pub.per_row = per_row;
    L->pub.step_x = (int)panel_w + PANEL_GAP;
    L->pub.step_y = (int)panel_h + PANEL_GAP;
    L->bar_x = PAD + (int)content_w + 2 * GAP;
    L->bar_y = L->pub.grid_y;
    L->bar_h = (int)bar_h;
    return NMT_OK;
}

// ---------------------------------------------------------------- drawing

// One heatmap whose cell (0,0) is at (gx, gy). w (rows, cols).
static void draw_panel(Canvas *c, int gx, int gy, const float *w, int rows, int cols,
                       char (*rl)[LABEL_BUF], char (*cl)[LABEL_BUF], const char *subtitle,
                       const Layout *L) {
    // Text sits a little below the cell's top so capitals look centred.
    const int inset = (ATTN_CELL - GLYPH_H * S) / 2 + 1;
    for (int i = 0; i < rows; i++) {
        int y = gy + i * ATTN_CELL;
        for (int j = 0; j < cols; j++) {
            int x = gx + j * ATTN_CELL;
            fill(c, x, y, x + ATTN_CELL, y + ATTN_CELL, ramp(w[(size_t)i * (size_t)cols + (size_t)j]));
        }
        draw_text(c, gx - GAP - text_w(rl[i]), y + inset, rl[i], 0, INK); // right-aligned
    }
    for (int j = 0; j < cols; j++)
        draw_text(c, gx + j * ATTN_CELL + inset, gy - GAP, cl[j], 1, INK);
    // A thin frame keeps dark cells from merging into the labels' white.
    int gw = cols * ATTN_CELL, gh = rows * ATTN_CELL;
    fill(c, gx - 1, gy - 1, gx + gw + 1, gy, FRAME);
    fill(c, gx - 1, gy + gh, gx + gw + 1, gy + gh + 1, FRAME);
    fill(c, gx - 1, gy, gx, gy + gh, FRAME);
    fill(c, gx + gw, gy, gx + gw + 1, gy + gh, FRAME);
    if (subtitle) draw_text(c, gx - L->rowband, gy - L->colband - L->sub_h, subtitle, 0, INK);
}

static void draw_bar(Canvas *c, const Layout *L) {
    int x = L->bar_x, y = L->bar_y, h = L->bar_h;
    for (int k = 0; k < h; k++)
        fill(c, x, y + k, x + BAR_W, y + k + 1, ramp(1.0f - (float)k / (float)(h - 1)));
    fill(c, x - 1, y - 1, x + BAR_W + 1, y, FRAME);
    fill(c, x - 1, y + h, x + BAR_W + 1, y + h + 1, FRAME);
    fill(c, x - 1, y, x, y + h, FRAME);
    fill(c, x + BAR_W, y, x + BAR_W + 1, y + h, FRAME);
    const int cap = 7 * S; // capital height: centre tick labels on their level
    int ys[3] = {y, y + h / 2 - cap / 2, y + h - cap};
    for (int i = 0; i < 3; i++) {
        fill(c, x + BAR_W, ys[i] + cap / 2, x + BAR_W + 4, ys[i] + cap / 2 + 2, FRAME);
        draw_text(c, x + BAR_W + GAP, ys[i], BAR_TICKS[i], 0, INK);
    }
}

// ---------------------------------------------------------------- PNG out

typedef struct { unsigned char *data; size_t len, cap; } Bytes;

static void append_bytes(void *ctx, void *data, int size) {
    Bytes *b = ctx;
    if (size <= 0) return;
    if (b->len + (size_t)size > b->cap) {
        b->cap = 2 * (b->len + (size_t)size);
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += (size_t)size;
}

static int save_png(const char *path, const Canvas *c) {
    Bytes b = {0};
    int ok = stbi_write_png_to_func(append_bytes, &b, c->w, c->h, 3, c->px, c->w * 3);
    int rc = ok ? write_file_atomic(path, b.data, b.len)
                : err_set(NMT_ERR_RUNTIME, "%s: PNG encoding failed", path);
    free(b.data);
    return rc;
}

// ---------------------------------------------------------------- entry points

static int check_args(const char *path, const float *weights, int heads, int rows, int cols) {
    if (!path || !path[0]) return err_set(NMT_ERR_INPUT, "attention picture: no output path");
    if (!weights) return err_set(NMT_ERR_INPUT, "%s: no attention weights", path);
    if (heads <= 0 || rows <= 0 || cols <= 0)
        return err_set(NMT_ERR_INPUT, "%s: attention weights of size %d heads x %d x %d: nothing to draw",
                       path, heads, rows, cols);
    return NMT_OK;
}

// heads == 0: one heatmap without subtitle; otherwise heads panels plus their mean.
static int render(const char *path, const float *weights, int heads, int rows, int cols,
                  const char *const *row_labels, const char *const *col_labels,
                  const char *title, AttnLayout *layout_only) {
    int rc = check_args(path, weights, heads ? heads : 1, rows, cols);
    if (rc) return rc;
    if (rows > MAX_SIDE || cols > MAX_SIDE) // before allocating label tables
        return err_set(NMT_ERR_INPUT, "%s: %d x %d attention weights: too many to draw", path, rows, cols);
    if (heads > MAX_HEADS)
        return err_set(NMT_ERR_INPUT, "%s: %d attention heads: too many to draw (at most %d)", path, heads, MAX_HEADS);
    int panels = heads ? heads + 1 : 1;
    char (*rl)[LABEL_BUF] = make_labels(row_labels, rows);
    char (*cl)[LABEL_BUF] = make_labels(col_labels, cols);
    char title_ascii[TITLE_MAX + 1];
    to_ascii(title_ascii, TITLE_MAX, title);
    Layout L;
    rc = layout(&L, path, panels, rows, cols, rl, cl, title_ascii);
    if (rc || layout_only) {
        if (!rc) *layout_only = L.pub;
        free(rl);
        free(cl);
        return rc;
    }

    Canvas c = {.w = L.pub.width, .h = L.pub.height};
    c.px = xmalloc((size_t)c.w * (size_t)c.h * 3);
    int maxc = TITLE_MAX > LABEL_BUF ? TITLE_MAX : LABEL_BUF;
    c.quads_bytes = maxc * MAX_QUADS_PER_CHAR * QUAD_BYTES;
    c.quads = xmalloc((size_t)c.quads_bytes);
    fill(&c, 0, 0, c.w, c.h, BG);
    if (title_ascii[0]) draw_text_at(&c, PAD, PAD, title_ascii, 0, L.title_scale, INK);

    size_t plane = (size_t)rows * (size_t)cols;
    float *mean = NULL;
    if (heads) { // summed in double: no rounding drift however many heads
        mean = xmalloc(plane * sizeof *mean);
        for (size_t k = 0; k < plane; k++) {
            double s = 0;
            for (int h = 0; h < heads; h++) s += weights[(size_t)h * plane + k];
            mean[k] = (float)(s / heads);
        }
    }
    for (int p = 0; p < panels; p++) {
        int gx = L.pub.grid_x + (p % L.pub.per_row) * L.pub.step_x;
        int gy = L.pub.grid_y + (p / L.pub.per_row) * L.pub.step_y;
        char sub[48];
        const float *w = weights;
        const char *subtitle = NULL;
        if (heads && p < heads) {
            snprintf(sub, sizeof sub, "head %d", p + 1);
            w = weights + (size_t)p * plane;
            subtitle = sub;
        } else if (heads) {
            snprintf(sub, sizeof sub, "average of %d heads", heads);
            w = mean;
            subtitle = sub;
        }
        draw_panel(&c, gx, gy, w, rows, cols, rl, cl, subtitle, &L);
    }
    draw_bar(&c, &L);
    rc = save_png(path, &c);
    free(mean);
    free(c.quads);
    free(c.px);
    free(rl);
    free(cl);
    return rc;
}

int attention_png(const char *path, const float *weights, int rows, int cols,
                  const char *const *row_labels, const char *const *col_labels,
                  const char *title) {
    return render(path, weights, 0, rows, cols, row_labels, col_labels, title, NULL);
}

int attention_grid_png(const char *path, const float *weights, int heads, int rows, int cols,
                       const char *const *row_labels, const char *const *col_labels,
                       const char *title) {
    if (heads <= 0) return check_args(path, weights, heads, rows, cols);
    return render(path, weights, heads, rows, cols, row_labels, col_labels, title, NULL);
}

int attention_png_layout(AttnLayout *out, int heads, int rows, int cols,
                         const char *const *row_labels, const char *const *col_labels,
                         const char *title) {
    static const float dummy = 0; // check_args wants weights; the layout needs none
    if (!out || heads < 0) return err_set(NMT_ERR_INPUT, "attention layout: bad arguments");
    return render("(layout)", &dummy, heads, rows, cols, row_labels, col_labels, title, out);
}
