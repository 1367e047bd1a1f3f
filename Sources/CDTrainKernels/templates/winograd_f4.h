// dtrain_winograd4_{input,input_bf16,output,output_gradient} for one instruction set (see
// dtrain_winograd.h); included by kernels_<set>.c after vector.h, last.
//
// Channels go across the lanes: a tile's 36 values of one block of channels are whole
// vectors, so the transforms are additions and multiplications by constants, lane by lane. Blocks
// of LANES channels first and, in the sixteen-lane variants, a last block of eight (the channel
// count is a multiple of 8). winograd_f4_block.h holds the per-block code and is included once per
// vector width.
//
// The arithmetic is that of DTrainNN's WinogradKernel (the portable Swift path, which the tests
// compare these with bit for bit): the same operations in the same order, fused multiply-adds
// where it fuses them and nowhere else.
#pragma clang fp contract(off)

/// Read for the elements of a border tile outside the image: as many zeros as a block reads.
static const float winograd_zeros[DTRAIN_WINOGRAD_MAX_CHANNELS] __attribute__((aligned(64)));

/// Splits tile index t into its image, and the row and column of its top-left output pixel.
static inline __attribute__((always_inline)) void winograd_locate(const dtrain_winograd_tiles *g, intptr_t t,
                                                                   intptr_t *n, intptr_t *oy, intptr_t *ox) {
    intptr_t per_image = g->tiles_high * g->tiles_wide;
    *n = t / per_image;
    intptr_t r = t - *n * per_image;
    intptr_t ty = r / g->tiles_wide;
    *oy = 4 * ty;
    *ox = 4 * (r - ty * g->tiles_wide);
}

/// Output tile `local` of the range: the offset of its top-left pixel in an NHWC tensor of g's
/// images, and how many of its 4 rows and columns lie inside the image.
static inline __attribute__((always_inline)) intptr_t winograd_output_corner(const dtrain_winograd_tiles *g, intptr_t local,
                                                                             intptr_t *rows, intptr_t *cols) {
    intptr_t n, oy, ox;
    winograd_locate(g, g->first_tile + local, &n, &oy, &ox);
    *rows = g->height - oy < 4 ? g->height - oy : 4;
    *cols = g->width - ox < 4 ? g->width - ox : 4;
    return ((n * g->height + oy) * g->width + ox) * g->channels;
}

#define PER_WIDTH_FILE "winograd_f4_block.h"
#include "per_width.h"

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

/// The input transform of x, whose elements are `element` bytes (floats, or bf16 values for
/// OPERAND_BF16), read as `source` says (a constant where the callers inline this).
static inline __attribute__((always_inline)) void winograd_input(const void *x, intptr_t element,
                                                                 const dtrain_winograd_tiles *g, float *v, int source) {
    const intptr_t h = g->height, w = g->width, c = g->channels;
    const intptr_t plane = g->plane;
    const void *p[36];
    for (intptr_t local = 0; local < g->tile_count; local++) {
        intptr_t n, oy, ox;
        winograd_locate(g, g->first_tile + local, &n, &oy, &ox);
        const intptr_t y0 = oy - 1, x0 = ox - 1;
        const char *image = (const char *)x + n * h * w * c * element;
        float *dst = v + local * c;
        // The 36 elements of the 6×6 patch: a pointer to each one's channels, or to zeros outside
        // the image. Built once per tile; every block of channels reads through it.
        if (y0 >= 0 && y0 + 6 <= h && x0 >= 0 && x0 + 6 <= w) {
            const char *corner = image + (y0 * w + x0) * c * element;
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) p[i * 6 + j] = corner + (i * w + j) * c * element;
        } else {
            for (int i = 0; i < 6; i++) {
                const intptr_t yy = y0 + i;
                const int row_inside = yy >= 0 && yy < h;
                for (int j = 0; j < 6; j++) {
                    const intptr_t xx = x0 + j;
                    p[i * 6 + j] = row_inside && xx >= 0 && xx < w ? (const void *)(image + (yy * w + xx) * c * element)
                                                                  : (const void *)winograd_zeros;
                }
            }
        }
#define INPUT_WIDE(ch, source) winograd_block_input_wide(p, ch, dst, plane, source)
#define INPUT_EIGHT(ch, source) winograd_block_input_eight(p, ch, dst, plane, source)
        FOR_CHANNEL_BLOCKS(c, source, INPUT_WIDE, INPUT_EIGHT);
#undef INPUT_WIDE
#undef INPUT_EIGHT
    }
}

void KERNEL(dtrain_winograd4_input)(const float *x, const dtrain_winograd_tiles *g, float *v) {
    if (g->round_to_bf16) winograd_input(x, sizeof(float), g, v, OPERAND_ROUNDED);
    else winograd_input(x, sizeof(float), g, v, OPERAND_FLOAT);
}

void KERNEL(dtrain_winograd4_input_bf16)(const uint16_t *x, const dtrain_winograd_tiles *g, float *v) {
    winograd_input(x, sizeof(uint16_t), g, v, OPERAND_BF16);
}

void KERNEL(dtrain_winograd4_output)(const float *m, const dtrain_winograd_tiles *g, const float *bias, float *y) {
    const intptr_t w = g->width, o = g->channels, plane = g->plane;
    for (intptr_t local = 0; local < g->tile_count; local++) {
        intptr_t rows, cols;
        float *corner = y + winograd_output_corner(g, local, &rows, &cols);
        const float *src = m + local * o;
#define OUTPUT_WIDE(ch, unused) winograd_block_output_wide(src, plane, bias, ch, corner, w * o, o, rows, cols)
#define OUTPUT_EIGHT(ch, unused) winograd_block_output_eight(src, plane, bias, ch, corner, w * o, o, rows, cols)
        FOR_CHANNEL_BLOCKS(o, 0, OUTPUT_WIDE, OUTPUT_EIGHT);
#undef OUTPUT_WIDE
#undef OUTPUT_EIGHT
    }
}

void KERNEL(dtrain_winograd4_output_gradient)(const float *dy, const dtrain_winograd_tiles *g, float *dm) {
    const intptr_t w = g->width, o = g->channels, plane = g->plane;
    for (intptr_t local = 0; local < g->tile_count; local++) {
        intptr_t rows, cols;
        const float *corner = dy + winograd_output_corner(g, local, &rows, &cols);
        float *dst = dm + local * o;
#define GRADIENT_WIDE(ch, round) winograd_block_gradient_wide(corner, w * o, o, rows, cols, ch, dst, plane, round)
#define GRADIENT_EIGHT(ch, round) winograd_block_gradient_eight(corner, w * o, o, rows, cols, ch, dst, plane, round)
        if (g->round_to_bf16) FOR_CHANNEL_BLOCKS(o, 1, GRADIENT_WIDE, GRADIENT_EIGHT);
        else FOR_CHANNEL_BLOCKS(o, 0, GRADIENT_WIDE, GRADIENT_EIGHT);
#undef GRADIENT_WIDE
#undef GRADIENT_EIGHT
    }
}

#undef FOR_CHANNEL_BLOCKS
