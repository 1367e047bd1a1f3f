// The passes over tiles of one Winograd transform size: dtrain_winogradM_{input,input_bf16,output,
// output_gradient} (see dtrain_winograd.h). Included by winograd_f4.h and winograd_f2.h after
// their per-width block functions, with WINOGRAD_M (the output tile side), WG(name) (the size's
// block functions: winogradM_name) and WG_EXPORT(name) (the exported names: dtrain_winogradM_name)
// defined; undefines them after.

/// The input transform of x, whose elements are `element` bytes (floats, or bf16 values for
/// OPERAND_BF16), read as `source` says (a constant where the callers inline this).
static inline __attribute__((always_inline)) void WG(input)(const void *x, intptr_t element,
                                                           const dtrain_winograd_tiles *g, float *v, int source) {
    const intptr_t c = g->channels, plane = g->plane;
    const void *p[(WINOGRAD_M + 2) * (WINOGRAD_M + 2)];
    for (intptr_t local = 0; local < g->tile_count; local++) {
        winograd_patch(x, element, g, WINOGRAD_M, local, p);
        float *dst = v + local * c;
#define INPUT_WIDE(ch, source) WG(block_input_wide)(p, ch, dst, plane, source)
#define INPUT_EIGHT(ch, source) WG(block_input_eight)(p, ch, dst, plane, source)
        FOR_CHANNEL_BLOCKS(c, source, INPUT_WIDE, INPUT_EIGHT);
#undef INPUT_WIDE
#undef INPUT_EIGHT
    }
}

static void KERNEL(WG_EXPORT(input))(const float *x, const dtrain_winograd_tiles *g, float *v) {
    if (g->round_to_bf16) WG(input)(x, sizeof(float), g, v, OPERAND_ROUNDED);
    else WG(input)(x, sizeof(float), g, v, OPERAND_FLOAT);
}

static void KERNEL(WG_EXPORT(input_bf16))(const uint16_t *x, const dtrain_winograd_tiles *g, float *v) {
    WG(input)(x, sizeof(uint16_t), g, v, OPERAND_BF16);
}

static void KERNEL(WG_EXPORT(output))(const float *m, const dtrain_winograd_tiles *g, const float *bias, float *y) {
    const intptr_t w = g->width, o = g->channels, plane = g->plane;
    for (intptr_t local = 0; local < g->tile_count; local++) {
        intptr_t rows, cols;
        float *corner = y + winograd_output_corner(g, WINOGRAD_M, local, &rows, &cols);
        const float *src = m + local * o;
#define OUTPUT_WIDE(ch, unused) WG(block_output_wide)(src, plane, bias, ch, corner, w * o, o, rows, cols)
#define OUTPUT_EIGHT(ch, unused) WG(block_output_eight)(src, plane, bias, ch, corner, w * o, o, rows, cols)
        FOR_CHANNEL_BLOCKS(o, 0, OUTPUT_WIDE, OUTPUT_EIGHT);
#undef OUTPUT_WIDE
#undef OUTPUT_EIGHT
    }
}

static void KERNEL(WG_EXPORT(output_gradient))(const float *dy, const dtrain_winograd_tiles *g, float *dm) {
    const intptr_t w = g->width, o = g->channels, plane = g->plane;
    for (intptr_t local = 0; local < g->tile_count; local++) {
        intptr_t rows, cols;
        const float *corner = dy + winograd_output_corner(g, WINOGRAD_M, local, &rows, &cols);
        float *dst = dm + local * o;
#define GRADIENT_WIDE(ch, round) WG(block_gradient_wide)(corner, w * o, o, rows, cols, ch, dst, plane, round)
#define GRADIENT_EIGHT(ch, round) WG(block_gradient_eight)(corner, w * o, o, rows, cols, ch, dst, plane, round)
        if (g->round_to_bf16) FOR_CHANNEL_BLOCKS(o, 1, GRADIENT_WIDE, GRADIENT_EIGHT);
        else FOR_CHANNEL_BLOCKS(o, 0, GRADIENT_WIDE, GRADIENT_EIGHT);
#undef GRADIENT_WIDE
#undef GRADIENT_EIGHT
    }
}

#undef WINOGRAD_M
#undef WG
#undef WG_EXPORT
