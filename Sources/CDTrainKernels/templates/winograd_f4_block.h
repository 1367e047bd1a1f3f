// One vector width's part of templates/winograd_f4.h: included with VT (the vector type),
// VLOAD/VSTORE and BLOCK(name) (the width's function names) defined. Each function transforms one
// block of channels of one tile; the one-dimensional transforms are DTrainNN's WinogradF4.swift
// (input6, output6, gradient6), with the same operations in the same order, the same ones fused.

/// x + a·y, fused (one rounding), with the constant a.
#define FMA_C(a, y, x) __builtin_elementwise_fma((VT)(a), (y), (x))

/// Bᵀ d: rows [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
static inline __attribute__((always_inline)) void BLOCK(winograd4_input6)(const VT d[6], VT r[6]) {
    VT a = FMA_C(-4.0f, d[2], d[4]), b = FMA_C(-4.0f, d[1], d[3]);
    VT e = d[4] - d[2], f = 2.0f * (d[3] - d[1]);
    r[0] = FMA_C(4.0f, d[0], FMA_C(-5.0f, d[2], d[4]));
    r[1] = a + b;
    r[2] = a - b;
    r[3] = e + f;
    r[4] = e - f;
    r[5] = FMA_C(4.0f, d[1], FMA_C(-5.0f, d[3], d[5]));
}

/// Aᵀ m: rows [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
static inline __attribute__((always_inline)) void BLOCK(winograd4_output6)(const VT m[6], VT r[4]) {
    VT s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    r[0] = m[0] + s12 + s34;
    r[1] = FMA_C(2.0f, d34, d12);
    r[2] = FMA_C(4.0f, s34, s12);
    r[3] = FMA_C(8.0f, d34, d12) + m[5];
}

/// A e: A = (Aᵀ)ᵀ, 6×4.
static inline __attribute__((always_inline)) void BLOCK(winograd4_gradient6)(const VT e[4], VT r[6]) {
    VT s02 = e[0] + e[2], s13 = e[1] + e[3], t02 = FMA_C(4.0f, e[2], e[0]), t13 = FMA_C(8.0f, e[3], 2.0f * e[1]);
    r[0] = e[0];
    r[1] = s02 + s13;
    r[2] = s02 - s13;
    r[3] = t02 + t13;
    r[4] = t02 - t13;
    r[5] = e[3];
}

/// V = Bᵀ d B of channels ch ..< ch + VLANES: patch element (i, j) at p[6i + j], read as `source`
/// says; position ξ = 6i + j to dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(winograd4_block_input)(const void *const p[36], intptr_t ch,
                                                                              float *dst, intptr_t plane, int source) {
    VT t[6][6];
    for (int j = 0; j < 6; j++) {
        VT d[6], r[6];
        for (int i = 0; i < 6; i++) d[i] = BLOCK(operand)(p[i * 6 + j], ch, source);
        BLOCK(winograd4_input6)(d, r);
        for (int i = 0; i < 6; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 6; i++) {
        VT r[6];
        BLOCK(winograd4_input6)(t[i], r);
        float *at = dst + i * 6 * plane + ch;
        for (int j = 0; j < 6; j++) VSTORE(at + j * plane, r[j]);
    }
}

/// Y = Aᵀ M A (+ bias) of channels ch ..< ch + VLANES: M at position ξ at src + ξ·plane + ch;
/// output (i, j) of the tile to corner + i·row_stride + j·o + ch, for i < rows and j < cols.
static inline __attribute__((always_inline)) void BLOCK(winograd4_block_output)(
    const float *src, intptr_t plane, const float *bias, intptr_t ch, float *corner, intptr_t row_stride,
    intptr_t o, intptr_t rows, intptr_t cols) {
    VT t[4][6];
    for (int j = 0; j < 6; j++) {
        VT m[6], r[4];
        for (int i = 0; i < 6; i++) m[i] = VLOAD(src + (i * 6 + j) * plane + ch);
        BLOCK(winograd4_output6)(m, r);
        for (int i = 0; i < 4; i++) t[i][j] = r[i];
    }
    const VT b = bias ? VLOAD(bias + ch) : (VT)0.0f;
    if (rows == 4 && cols == 4) {
        for (int i = 0; i < 4; i++) {
            VT r[4];
            BLOCK(winograd4_output6)(t[i], r);
            for (int j = 0; j < 4; j++) VSTORE(corner + i * row_stride + j * o + ch, r[j] + b);
        }
    } else {
        for (int i = 0; i < 4; i++) {
            if (i >= rows) break;
            VT r[4];
            BLOCK(winograd4_output6)(t[i], r);
            for (int j = 0; j < 4; j++)
                if (j < cols) VSTORE(corner + i * row_stride + j * o + ch, r[j] + b);
        }
    }
}

/// dM = A dY Aᵀ of channels ch ..< ch + VLANES: dY (i, j) at corner + i·row_stride + j·o + ch for
/// i < rows and j < cols (rounded to bf16 when `round`), zero beyond; position ξ to
/// dst + ξ·plane + ch.
static inline __attribute__((always_inline)) void BLOCK(winograd4_block_gradient)(
    const float *corner, intptr_t row_stride, intptr_t o, intptr_t rows, intptr_t cols, intptr_t ch,
    float *dst, intptr_t plane, int round) {
    VT t[6][4];
    if (rows == 4 && cols == 4) {
        for (int j = 0; j < 4; j++) {
            VT e[4], r[6];
            for (int i = 0; i < 4; i++) e[i] = BLOCK(operand)(corner + i * row_stride + j * o, ch, round);
            BLOCK(winograd4_gradient6)(e, r);
            for (int i = 0; i < 6; i++) t[i][j] = r[i];
        }
    } else {
        for (int j = 0; j < 4; j++) {
            VT e[4], r[6];
            for (int i = 0; i < 4; i++)
                e[i] = i < rows && j < cols ? BLOCK(operand)(corner + i * row_stride + j * o, ch, round)
                                            : (VT)0.0f;
            BLOCK(winograd4_gradient6)(e, r);
            for (int i = 0; i < 6; i++) t[i][j] = r[i];
        }
    }
    for (int i = 0; i < 6; i++) {
        VT r[6];
        BLOCK(winograd4_gradient6)(t[i], r);
        float *at = dst + i * 6 * plane + ch;
        for (int j = 0; j < 6; j++) VSTORE(at + j * plane, r[j]);
    }
}
