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

#include "winograd_tiles.h"

#define PER_WIDTH_FILE "winograd_f4_block.h"
#include "per_width.h"

/// The input transform of x, whose elements are `element` bytes (floats, or bf16 values for
/// OPERAND_BF16), read as `source` says (a constant where the callers inline this).
static inline __attribute__((always_inline)) void winograd_input(const void *x, intptr_t element,
                                                                 const dtrain_winograd_tiles *g, float *v, int source) {
    const intptr_t c = g->channels, plane = g->plane;
    const void *p[36];
    for (intptr_t local = 0; local < g->tile_count; local++) {
        winograd_patch(x, element, g, 4, local, p);
        float *dst = v + local * c;
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
        float *corner = y + winograd_output_corner(g, 4, local, &rows, &cols);
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
        const float *corner = dy + winograd_output_corner(g, 4, local, &rows, &cols);
        float *dst = dm + local * o;
#define GRADIENT_WIDE(ch, round) winograd_block_gradient_wide(corner, w * o, o, rows, cols, ch, dst, plane, round)
#define GRADIENT_EIGHT(ch, round) winograd_block_gradient_eight(corner, w * o, o, rows, cols, ch, dst, plane, round)
        if (g->round_to_bf16) FOR_CHANNEL_BLOCKS(o, 1, GRADIENT_WIDE, GRADIENT_EIGHT);
        else FOR_CHANNEL_BLOCKS(o, 0, GRADIENT_WIDE, GRADIENT_EIGHT);
#undef GRADIENT_WIDE
#undef GRADIENT_EIGHT
    }
}

