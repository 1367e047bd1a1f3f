// One vector width's part of templates/winograd_f2.h: included with VT (the vector type),
// VLOAD/VSTORE and BLOCK(name) (the width's function names) defined. Each function transforms one
// block of channels of one tile; the one-dimensional transforms are DTrainNN's WinogradKernel
// (inputRow, outputRow, gradientRow), with the same operations in the same order, none fused.

/// Bᵀ a: Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
static inline __attribute__((always_inline)) void BLOCK(winograd2_input4)(const VT a[4], VT r[4]) {
    r[0] = a[0] - a[2];
    r[1] = a[1] + a[2];
    r[2] = a[2] - a[1];
    r[3] = a[1] - a[3];
}

/// Aᵀ m: Aᵀ = [1 1 1 0; 0 1 −1 −1].
static inline __attribute__((always_inline)) void BLOCK(winograd2_output4)(const VT m[4], VT r[2]) {
    r[0] = m[0] + m[1] + m[2];
    r[1] = m[1] - m[2] - m[3];
}

/// A e: A = [1 0; 1 1; 1 −1; 0 −1]. The last row is 0 − e1, as Swift's SIMD negation computes
/// it: +0 for e1 = +0.
static inline __attribute__((always_inline)) void BLOCK(winograd2_gradient4)(const VT e[2], VT r[4]) {
    r[0] = e[0];
    r[1] = e[0] + e[1];
    r[2] = e[0] - e[1];
    r[3] = (VT)0.0f - e[1];
}

/// V = Bᵀ d B of channels ch ..< ch + VLANES: patch element (i, j) at p[4i + j], read as `source`
/// says; position ξ = 4i + j to dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(winograd2_block_input)(const void *const p[16], intptr_t ch,
                                                                               float *dst, intptr_t plane, int source) {
    VT t[4][4];
    for (int j = 0; j < 4; j++) {
        VT d[4], r[4];
        for (int i = 0; i < 4; i++) d[i] = BLOCK(operand)(p[i * 4 + j], ch, source);
        BLOCK(winograd2_input4)(d, r);
        for (int i = 0; i < 4; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 4; i++) {
        VT r[4];
        BLOCK(winograd2_input4)(t[i], r);
        float *at = dst + i * 4 * plane + ch;
        for (int j = 0; j < 4; j++) VSTORE(at + j * plane, r[j]);
    }
}

/// Y = Aᵀ M A (+ bias) of channels ch ..< ch + VLANES: M at position ξ at src + ξ·plane + ch;
/// output (i, j) of the tile to corner + i·row_stride + j·o + ch, for i < rows and j < cols.
static inline __attribute__((always_inline)) void BLOCK(winograd2_block_output)(
    const float *src, intptr_t plane, const float *bias, intptr_t ch, float *corner, intptr_t row_stride,
    intptr_t o, intptr_t rows, intptr_t cols) {
    VT t[2][4];
    for (int j = 0; j < 4; j++) {
        VT m[4], r[2];
        for (int i = 0; i < 4; i++) m[i] = VLOAD(src + (i * 4 + j) * plane + ch);
        BLOCK(winograd2_output4)(m, r);
        for (int i = 0; i < 2; i++) t[i][j] = r[i];
    }
    const VT b = bias ? VLOAD(bias + ch) : (VT)0.0f;
    for (int i = 0; i < 2; i++) {
        if (i >= rows) break;
        VT r[2];
        BLOCK(winograd2_output4)(t[i], r);
        VSTORE(corner + i * row_stride + ch, r[0] + b);
        if (cols > 1) VSTORE(corner + i * row_stride + o + ch, r[1] + b);
    }
}

/// dM = A dY Aᵀ of channels ch ..< ch + VLANES: dY (i, j) at corner + i·row_stride + j·o + ch for
/// i < rows and j < cols (rounded to bf16 when `round`), zero beyond; position ξ to
/// dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(winograd2_block_gradient)(
    const float *corner, intptr_t row_stride, intptr_t o, intptr_t rows, intptr_t cols, intptr_t ch,
    float *dst, intptr_t plane, int round) {
    VT t[4][2];
    for (int j = 0; j < 2; j++) {
        VT e[2], r[4];
        for (int i = 0; i < 2; i++)
            e[i] = i < rows && j < cols ? BLOCK(operand)(corner + i * row_stride + j * o, ch, round) : (VT)0.0f;
        BLOCK(winograd2_gradient4)(e, r);
        for (int i = 0; i < 4; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 4; i++) {
        VT r[4];
        BLOCK(winograd2_gradient4)(t[i], r);
        float *at = dst + i * 4 * plane + ch;
        for (int j = 0; j < 4; j++) VSTORE(at + j * plane, r[j]);
    }
}
