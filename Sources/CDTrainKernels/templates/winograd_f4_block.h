// One vector width's part of templates/winograd_f4.h: included with VT (the vector type),
// VLOAD/VSTORE and BLOCK(name) (the width's function names) defined. Each function transforms one
// block of channels of one tile (winograd_block.h, after the one-dimensional transforms); those are
// DTrainNN's WinogradF4.swift (input6, output6, gradient6), with the same operations in the same
// order, the same ones fused.

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

#define LINE_INPUT BLOCK(winograd4_input6)
#define LINE_OUTPUT BLOCK(winograd4_output6)
#define LINE_GRADIENT BLOCK(winograd4_gradient6)
#include "winograd_block.h"
