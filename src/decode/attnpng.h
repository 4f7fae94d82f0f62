// decode/attnpng.h — attention weights drawn as heatmap PNGs.
//
// Rows are output (target) tokens, down the left; columns are source tokens,
// written vertically along the top. Each weight is a square cell coloured with
// a viridis-like ramp (0 dark purple .. 1 yellow; NaN is drawn grey, values
// outside [0,1] are clamped), with a colour bar on the right and a title.
// Labels are drawn with stb_easy_font, which is ASCII only: accented Latin
// letters lose their accent (ä->a, é->e, ß->ss, æ->ae), U+2581 (the BPE word
// marker) becomes '_', typographic quotes and dashes become ' " -, any other
// non-ASCII character (or invalid UTF-8 byte) becomes '?'. Labels longer than
// ATTN_LABEL_MAX characters are cut and end in "..". Labels may be NULL (rows
// and columns are then numbered); so may the title.
// Errors are recorded with err_set() ("PATH: ...") and returned:
// NMT_ERR_INPUT for zero sizes, missing weights, more than 256 heads or an
// image that would be too large; NMT_ERR_RUNTIME when the file cannot be written.
#ifndef NMT_ATTNPNG_H
#define NMT_ATTNPNG_H

enum { ATTN_CELL = 24, ATTN_LABEL_MAX = 20 };

// weights (rows, cols) row-major.
int attention_png(const char *path, const float *weights, int rows, int cols,
                  const char *const *row_labels, const char *const *col_labels,
                  const char *title);

// weights (heads, rows, cols): one heatmap per head plus their average, laid
// out left to right, top to bottom in a near-square grid, one colour bar.
int attention_grid_png(const char *path, const float *weights, int heads, int rows, int cols,
                       const char *const *row_labels, const char *const *col_labels,
                       const char *title);

// Where things land in the image (for callers placing it, and for tests).
typedef struct {
    int width, height;  // image size in pixels
    int grid_x, grid_y; // top-left pixel of cell (0,0) of the first heatmap;
                        // cell (i,j) covers ATTN_CELL x ATTN_CELL pixels from
                        // (grid_x + j*ATTN_CELL, grid_y + i*ATTN_CELL)
    int panels;         // heatmaps drawn: 1, or heads + 1 (the last is the average)
    int per_row;        // heatmaps per row of the grid
    int step_x, step_y; // pixel offset from one heatmap to the next across / down
} AttnLayout;

// heads == 0: the layout attention_png() uses; heads >= 1: attention_grid_png().
int attention_png_layout(AttnLayout *out, int heads, int rows, int cols,
                         const char *const *row_labels, const char *const *col_labels,
                         const char *title);

#endif
