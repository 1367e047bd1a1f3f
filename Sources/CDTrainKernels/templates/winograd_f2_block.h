// One vector width's part of templates/winograd_f2.h: included with VT (the vector type),
// VLOAD/VSTORE and BLOCK(name) (the width's function names) defined. Each function transforms one
// block of channels of one tile (winograd_block.h, after the one-dimensional transforms); those are
// DTrainNN's WinogradKernel (inputRow, outputRow, gradientRow), with the same operations in the
// same order, none fused.

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

#define LINE_INPUT BLOCK(winograd2_input4)
#define LINE_OUTPUT BLOCK(winograd2_output4)
#define LINE_GRADIENT BLOCK(winograd2_gradient4)
#include "winograd_block.h"
