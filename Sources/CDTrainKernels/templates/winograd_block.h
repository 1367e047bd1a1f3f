// The per-block functions of one Winograd transform size, for one vector width: included at the end
// of winograd_f4_block.h and winograd_f2_block.h (so once per width, through per_width.h) with
// WINOGRAD_M (the output tile side), WG(name) (the size's names: winogradM_name) and the size's
// one-dimensional transforms defined as LINE_INPUT (Bᵀ a: M + 2 values to M + 2), LINE_OUTPUT (Aᵀ m:
// M + 2 to M) and LINE_GRADIENT (A e: M to M + 2); undefines the LINE_ macros after. Each function
// transforms one block of channels of one tile: rows, then columns, as the Swift transforms do.

#define SIDE (WINOGRAD_M + 2)

/// V = Bᵀ d B of channels ch ..< ch + VLANES: patch element (i, j) at p[SIDE·i + j], read as
/// `source` says; position ξ = SIDE·i + j to dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(WG(block_input))(const void *const p[SIDE * SIDE], intptr_t ch,
                                                                         float *dst, intptr_t plane, int source) {
    VT t[SIDE][SIDE];
    for (int j = 0; j < SIDE; j++) {
        VT d[SIDE], r[SIDE];
        for (int i = 0; i < SIDE; i++) d[i] = BLOCK(operand)(p[i * SIDE + j], ch, source);
        LINE_INPUT(d, r);
        for (int i = 0; i < SIDE; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < SIDE; i++) {
        VT r[SIDE];
        LINE_INPUT(t[i], r);
        float *at = dst + i * SIDE * plane + ch;
        for (int j = 0; j < SIDE; j++) VSTORE(at + j * plane, r[j]);
    }
}

/// Y = Aᵀ M A (+ bias) of channels ch ..< ch + VLANES: M at position ξ at src + ξ·plane + ch;
/// output (i, j) of the tile to corner + i·row_stride + j·o + ch, for i < rows and j < cols.
static inline __attribute__((always_inline)) void BLOCK(WG(block_output))(
    const float *src, intptr_t plane, const float *bias, intptr_t ch, float *corner, intptr_t row_stride,
    intptr_t o, intptr_t rows, intptr_t cols) {
    VT t[WINOGRAD_M][SIDE];
    for (int j = 0; j < SIDE; j++) {
        VT m[SIDE], r[WINOGRAD_M];
        for (int i = 0; i < SIDE; i++) m[i] = VLOAD(src + (i * SIDE + j) * plane + ch);
        LINE_OUTPUT(m, r);
        for (int i = 0; i < WINOGRAD_M; i++) t[i][j] = r[i];
    }
    const VT b = bias ? VLOAD(bias + ch) : (VT)0.0f;
    if (rows == WINOGRAD_M && cols == WINOGRAD_M) {
        for (int i = 0; i < WINOGRAD_M; i++) {
            VT r[WINOGRAD_M];
            LINE_OUTPUT(t[i], r);
            for (int j = 0; j < WINOGRAD_M; j++) VSTORE(corner + i * row_stride + j * o + ch, r[j] + b);
        }
    } else {
        for (int i = 0; i < rows; i++) {
            VT r[WINOGRAD_M];
            LINE_OUTPUT(t[i], r);
            for (int j = 0; j < cols; j++) VSTORE(corner + i * row_stride + j * o + ch, r[j] + b);
        }
    }
}

/// dM = A dY Aᵀ of channels ch ..< ch + VLANES: dY (i, j) at corner + i·row_stride + j·o + ch for
/// i < rows and j < cols (rounded to bf16 when `round`), zero beyond; position ξ to
/// dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(WG(block_gradient))(
    const float *corner, intptr_t row_stride, intptr_t o, intptr_t rows, intptr_t cols, intptr_t ch,
    float *dst, intptr_t plane, int round) {
    VT t[SIDE][WINOGRAD_M];
    const int whole = rows == WINOGRAD_M && cols == WINOGRAD_M;
    for (int j = 0; j < WINOGRAD_M; j++) {
        VT e[WINOGRAD_M], r[SIDE];
        for (int i = 0; i < WINOGRAD_M; i++)
            e[i] = whole || (i < rows && j < cols) ? BLOCK(operand)(corner + i * row_stride + j * o, ch, round)
                                                   : (VT)0.0f;
        LINE_GRADIENT(e, r);
        for (int i = 0; i < SIDE; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < SIDE; i++) {
        VT r[SIDE];
        LINE_GRADIENT(t[i], r);
        float *at = dst + i * SIDE * plane + ch;
        for (int j = 0; j < SIDE; j++) VSTORE(at + j * plane, r[j]);
    }
}

#undef SIDE
#undef LINE_INPUT
#undef LINE_OUTPUT
#undef LINE_GRADIENT
