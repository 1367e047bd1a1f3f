// What the Winograd F(2×2) and F(4×4) transforms (templates/winograd_f2.h, winograd_f4.h) share:
// locating a tile of side `tile` (2 or 4, a constant where inlined), the pointers to its input
// patch, and the walk over channel blocks. Included by both, once per translation unit.
#ifndef WINOGRAD_TILES_INCLUDED
#define WINOGRAD_TILES_INCLUDED

/// Read for the elements of a border tile outside the image: as many zeros as a block reads.
static const float winograd_zeros[DTRAIN_WINOGRAD_MAX_CHANNELS] __attribute__((aligned(64)));

/// Splits tile index t into its image, and the row and column of its top-left output pixel.
static inline __attribute__((always_inline)) void winograd_locate(const dtrain_winograd_tiles *g, const int tile,
                                                                   intptr_t t, intptr_t *n, intptr_t *oy, intptr_t *ox) {
    intptr_t per_image = g->tiles_high * g->tiles_wide;
    *n = t / per_image;
    intptr_t r = t - *n * per_image;
    intptr_t ty = r / g->tiles_wide;
    *oy = tile * ty;
    *ox = tile * (r - ty * g->tiles_wide);
}

/// Output tile `local` of the range: the offset of its top-left pixel in an NHWC tensor of g's
/// images, and how many of its `tile` rows and columns lie inside the image.
static inline __attribute__((always_inline)) intptr_t winograd_output_corner(const dtrain_winograd_tiles *g, const int tile,
                                                                             intptr_t local, intptr_t *rows, intptr_t *cols) {
    intptr_t n, oy, ox;
    winograd_locate(g, tile, g->first_tile + local, &n, &oy, &ox);
    *rows = g->height - oy < tile ? g->height - oy : tile;
    *cols = g->width - ox < tile ? g->width - ox : tile;
    return ((n * g->height + oy) * g->width + ox) * g->channels;
}

/// The (tile + 2)² elements of tile `local`'s input patch, at (tile·ty − 1, tile·tx − 1) of x
/// (elements of `element` bytes): p[i·(tile + 2) + j] points at element (i, j)'s channels, or at
/// zeros outside the image. Built once per tile; every block of channels reads through it.
static inline __attribute__((always_inline)) void winograd_patch(const void *x, intptr_t element,
                                                                  const dtrain_winograd_tiles *g, const int tile,
                                                                  intptr_t local, const void **p) {
    const intptr_t h = g->height, w = g->width, c = g->channels, side = tile + 2;
    intptr_t n, oy, ox;
    winograd_locate(g, tile, g->first_tile + local, &n, &oy, &ox);
    const intptr_t y0 = oy - 1, x0 = ox - 1;
    const char *image = (const char *)x + n * h * w * c * element;
    if (y0 >= 0 && y0 + side <= h && x0 >= 0 && x0 + side <= w) {
        const char *corner = image + (y0 * w + x0) * c * element;
        for (int i = 0; i < side; i++)
            for (int j = 0; j < side; j++) p[i * side + j] = corner + (i * w + j) * c * element;
    } else {
        for (int i = 0; i < side; i++) {
            const intptr_t yy = y0 + i;
            const int row_inside = yy >= 0 && yy < h;
            for (int j = 0; j < side; j++) {
                const intptr_t xx = x0 + j;
                p[i * side + j] = row_inside && xx >= 0 && xx < w ? (const void *)(image + (yy * w + xx) * c * element)
                                                                 : (const void *)winograd_zeros;
            }
        }
    }
}

/// Calls `wide_step(ch, round)` and then `eight_step(ch, round)` for the channel blocks of `c` (a
/// multiple of 8): LANES at a time, then eight. `round` is passed through as written, so a literal
/// 0 or 1 gives each block function one inlined copy per value.
#if LANES > 8
#define FOR_CHANNEL_BLOCKS(c, round, wide_step, eight_step) \
    do { intptr_t ch_ = 0; \
         for (; ch_ + LANES <= (c); ch_ += LANES) { wide_step(ch_, round); } \
         for (; ch_ < (c); ch_ += 8) { eight_step(ch_, round); } } while (0)
#else
#define FOR_CHANNEL_BLOCKS(c, round, wide_step, eight_step) \
    do { for (intptr_t ch_ = 0; ch_ < (c); ch_ += LANES) { wide_step(ch_, round); } } while (0)
#endif

#endif
