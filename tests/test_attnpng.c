// test_attnpng.c — heatmap PNGs: header and size, cell colours, label
// fallbacks, the per-head grid, and errors.
#include <criterion/criterion.h>
#include <stb/stb_image.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode/attnpng.h"
#include "common/util.h"

static char dir[64];

static void make_dir(void) {
    err_clear();
    snprintf(dir, sizeof dir, "/tmp/nmt-attnpng-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(attnpng, .init = make_dir, .fini = remove_dir);

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static unsigned be32(const unsigned char *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

typedef struct { unsigned char *px; int w, h; } Img;

static Img load(const char *path) {
    Img im;
    int n;
    im.px = stbi_load(path, &im.w, &im.h, &n, 3);
    cr_assert_not_null(im.px, "%s: cannot decode", path);
    return im;
}

static const unsigned char *pixel(const Img *im, int x, int y) {
    cr_assert(x >= 0 && x < im->w && y >= 0 && y < im->h, "pixel (%d,%d) outside %dx%d", x, y, im->w, im->h);
    return im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
}

// Colour at the centre of cell (i, j) of heatmap p.
static const unsigned char *cell(const Img *im, const AttnLayout *L, int p, int i, int j) {
    int x = L->grid_x + (p % L->per_row) * L->step_x + j * ATTN_CELL + ATTN_CELL / 2;
    int y = L->grid_y + (p / L->per_row) * L->step_y + i * ATTN_CELL + ATTN_CELL / 2;
    return pixel(im, x, y);
}

static double luminance(const unsigned char *c) { return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; }

static int same_rgb(const unsigned char *a, const unsigned char *b) { return memcmp(a, b, 3) == 0; }

static const char *const ROWS[] = {"▁The", "▁dog", "</s>"};
static const char *const COLS[] = {"▁Der", "▁Hund", "▁läuft", "."};
// (3, 4): weight 1 at (0,0), 0 at (0,1), 0.5 at (1,1).
static const float W[12] = {1.0f, 0.0f, 0.0f, 0.0f, 0.25f, 0.5f, 0.25f, 0.0f, 0.1f, 0.2f, 0.3f, 0.4f};

Test(attnpng, png_header_matches_layout) {
    char path[128];
    path_in_dir(path, sizeof path, "a.png");
    AttnLayout L;
    cr_assert_eq(attention_png_layout(&L, 0, 3, 4, ROWS, COLS, "t"), NMT_OK, "%s", err_msg());
    cr_assert_eq(attention_png(path, W, 3, 4, ROWS, COLS, "t"), NMT_OK, "%s", err_msg());

    unsigned char head[24];
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    cr_assert_arr_eq(head, sig, 8, "not a PNG signature");
    cr_assert_eq(be32(head + 8), 13u, "IHDR length");
    cr_assert_arr_eq(head + 12, "IHDR", 4);
    cr_assert_eq(be32(head + 16), (unsigned)L.width);
    cr_assert_eq(be32(head + 20), (unsigned)L.height);
    // The grid itself fits inside the picture.
    cr_assert(L.grid_x > 0 && L.grid_x + 4 * ATTN_CELL < L.width);
    cr_assert(L.grid_y > 0 && L.grid_y + 3 * ATTN_CELL < L.height);
    cr_assert_eq(L.panels, 1);
}

Test(attnpng, layout_grows_one_cell_per_token) {
    // One more source token with a one-letter label: exactly one cell wider;
    // one more output token: one cell taller (the colour bar is shorter still).
    static const char *const r7[] = {"a", "b", "c", "d", "e", "f", "g"};
    static const char *const c4[] = {"a", "b", "c", "d"};
    AttnLayout a, b, c;
    cr_assert_eq(attention_png_layout(&a, 0, 6, 3, r7, c4, NULL), NMT_OK);
    cr_assert_eq(attention_png_layout(&b, 0, 6, 4, r7, c4, NULL), NMT_OK);
    cr_assert_eq(attention_png_layout(&c, 0, 7, 3, r7, c4, NULL), NMT_OK);
    cr_assert_eq(b.width - a.width, ATTN_CELL);
    cr_assert_eq(b.height, a.height);
    cr_assert_eq(c.height - a.height, ATTN_CELL);
    cr_assert_eq(c.width, a.width);
    cr_assert_eq(a.grid_x, b.grid_x);
    cr_assert_eq(a.grid_y, c.grid_y);
}

Test(attnpng, weights_get_ordered_colours) {
    char path[128];
    path_in_dir(path, sizeof path, "c.png");
    AttnLayout L;
    cr_assert_eq(attention_png_layout(&L, 0, 3, 4, ROWS, COLS, "colours"), NMT_OK);
    cr_assert_eq(attention_png(path, W, 3, 4, ROWS, COLS, "colours"), NMT_OK, "%s", err_msg());
    Img im = load(path);
    cr_assert_eq(im.w, L.width);
    cr_assert_eq(im.h, L.height);
    const unsigned char *one = cell(&im, &L, 0, 0, 0), *zero = cell(&im, &L, 0, 0, 1),
                        *half = cell(&im, &L, 0, 1, 1);
    cr_assert(!same_rgb(one, zero), "weight 1 and weight 0 drew the same colour");
    // A perceptual ramp: brightness rises with the weight.
    cr_assert_gt(luminance(one), luminance(half) + 40);
    cr_assert_gt(luminance(half), luminance(zero) + 40);
    // Equal weights, equal colours; and the cell is uniform to its corners.
    cr_assert(same_rgb(zero, cell(&im, &L, 0, 0, 2)));
    cr_assert(same_rgb(zero, pixel(&im, L.grid_x + ATTN_CELL, L.grid_y)));
    cr_assert(same_rgb(one, pixel(&im, L.grid_x, L.grid_y)));
    cr_assert(same_rgb(one, pixel(&im, L.grid_x + ATTN_CELL - 1, L.grid_y + ATTN_CELL - 1)));
    // Just outside the grid (past its frame) is white background.
    static const unsigned char white[3] = {255, 255, 255};
    cr_assert(same_rgb(white, pixel(&im, L.grid_x - 3, L.grid_y + ATTN_CELL / 2)));
    cr_assert(same_rgb(white, pixel(&im, L.grid_x + 4 * ATTN_CELL + 3, L.grid_y + ATTN_CELL / 2)));
    stbi_image_free(im.px);
}

// Draws a 1x1 heatmap whose only label is `label` and returns the pixels.
static Img draw_label(const char *name, const char *label) {
    char path[128];
    path_in_dir(path, sizeof path, name);
    const char *rows[1] = {label}, *cols[1] = {"x"};
    float w = 0.5f;
    cr_assert_eq(attention_png(path, &w, 1, 1, rows, cols, NULL), NMT_OK, "%s", err_msg());
    return load(path);
}

static void assert_same_picture(const char *a, const char *b) {
    Img x = draw_label("x.png", a), y = draw_label("y.png", b);
    cr_assert(x.w == y.w && x.h == y.h && memcmp(x.px, y.px, (size_t)x.w * (size_t)x.h * 3) == 0,
              "label \"%s\" was not drawn as \"%s\"", a, b);
    stbi_image_free(x.px);
    stbi_image_free(y.px);
}

Test(attnpng, non_ascii_labels_fall_back) {
    assert_same_picture("fährt", "fahrt");
    assert_same_picture("Straße", "Strasse");
    assert_same_picture("été", "ete");
    assert_same_picture("Łódź", "Lodz");
    assert_same_picture("▁Hund", "_Hund");
    assert_same_picture("日本", "??");
    assert_same_picture("a\xff\xc3", "a??");          // invalid UTF-8: one '?' per bad byte
    assert_same_picture("abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqr.."); // cut to 20
    // ... and the fallback is not a no-op: different labels, different pictures.
    Img x = draw_label("x.png", "fahrt"), y = draw_label("y.png", "fuhrt");
    cr_assert(x.w == y.w && x.h == y.h);
    cr_assert_neq(memcmp(x.px, y.px, (size_t)x.w * (size_t)x.h * 3), 0);
    stbi_image_free(x.px);
    stbi_image_free(y.px);
}

Test(attnpng, grid_has_every_head_and_their_average) {
    enum { H = 3, R = 2, C = 3 };
    // cell (0,0) per head: 1, 0, 0.5 -> average 0.5; cell (1,2): 0, 0, 0 -> 0.
    float w[H * R * C] = {1, 0, 0, 0, 1, 0, /**/ 0, 1, 0, 1, 0, 0, /**/ 0.5f, 0.5f, 0, 0, 1, 0};
    char path[128], ref[128];
    path_in_dir(path, sizeof path, "grid.png");
    path_in_dir(ref, sizeof ref, "ref.png");
    AttnLayout L;
    cr_assert_eq(attention_png_layout(&L, H, R, C, NULL, NULL, "grid"), NMT_OK);
    cr_assert_eq(L.panels, H + 1);
    cr_assert_eq(L.per_row, 2);
    cr_assert_eq(attention_grid_png(path, w, H, R, C, NULL, NULL, "grid"), NMT_OK, "%s", err_msg());
    Img im = load(path);
    cr_assert_eq(im.w, L.width);
    cr_assert_eq(im.h, L.height);

    // Reference colours from a single heatmap of 1, 0.5, 0.
    float refw[3] = {1, 0.5f, 0};
    AttnLayout RL;
    cr_assert_eq(attention_png_layout(&RL, 0, 1, 3, NULL, NULL, NULL), NMT_OK);
    cr_assert_eq(attention_png(ref, refw, 1, 3, NULL, NULL, NULL), NMT_OK);
    Img rim = load(ref);
    const unsigned char *c1 = cell(&rim, &RL, 0, 0, 0), *c05 = cell(&rim, &RL, 0, 0, 1),
                        *c0 = cell(&rim, &RL, 0, 0, 2);
    cr_assert(same_rgb(cell(&im, &L, 0, 0, 0), c1));
    cr_assert(same_rgb(cell(&im, &L, 1, 0, 0), c0));
    cr_assert(same_rgb(cell(&im, &L, 2, 0, 0), c05));
    cr_assert(same_rgb(cell(&im, &L, 3, 0, 0), c05), "the average of 1, 0, 0.5 is not drawn as 0.5");
    cr_assert(same_rgb(cell(&im, &L, 3, 1, 2), c0));
    cr_assert(same_rgb(cell(&im, &L, 1, 1, 0), c1)); // second head, second row
    stbi_image_free(rim.px);
    stbi_image_free(im.px);
}

Test(attnpng, unwritable_path_is_an_error) {
    char path[160];
    path_in_dir(path, sizeof path, "no/such/dir/a.png");
    int rc = attention_png(path, W, 3, 4, ROWS, COLS, "t");
    cr_assert_eq(rc, NMT_ERR_RUNTIME);
    cr_assert_eq(err_code(), NMT_ERR_RUNTIME);
    cr_assert_not_null(strstr(err_msg(), path), "message does not name the file: %s", err_msg());
    err_clear();
    // A directory where the file should go.
    cr_assert_neq(attention_grid_png(dir, W, 1, 3, 4, ROWS, COLS, "t"), NMT_OK);
    cr_assert_neq(err_code(), NMT_OK);
}

Test(attnpng, zero_sizes_and_missing_weights_are_input_errors) {
    char path[128];
    path_in_dir(path, sizeof path, "z.png");
    cr_assert_eq(attention_png(path, W, 0, 4, NULL, NULL, NULL), NMT_ERR_INPUT);
    cr_assert_not_null(strstr(err_msg(), path), "%s", err_msg());
    err_clear();
    cr_assert_eq(attention_png(path, W, 3, 0, NULL, NULL, NULL), NMT_ERR_INPUT);
    err_clear();
    cr_assert_eq(attention_png(path, W, -1, 4, NULL, NULL, NULL), NMT_ERR_INPUT);
    err_clear();
    cr_assert_eq(attention_png(path, NULL, 3, 4, NULL, NULL, NULL), NMT_ERR_INPUT);
    err_clear();
    cr_assert_eq(attention_grid_png(path, W, 0, 3, 4, NULL, NULL, NULL), NMT_ERR_INPUT);
    err_clear();
    cr_assert_eq(attention_png(NULL, W, 3, 4, NULL, NULL, NULL), NMT_ERR_INPUT);
    err_clear();
    // Too large to draw: refused before anything is allocated.
    cr_assert_eq(attention_png(path, W, 100000, 100000, NULL, NULL, NULL), NMT_ERR_INPUT);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "a file was written after an error");
}
