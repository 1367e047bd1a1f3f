// float ↔ bf16 conversions, shared by gemm_bf16_reference.c (scalar), templates/gemm_bf16.h
// (scalar tails and, with the same arithmetic on vectors, the packing loops) and bf16_vectors.c.

#pragma once

#include <stdint.h>
#include <string.h>

/// float bits → bf16 bits in the high half (the low half is not cleared): round to nearest even;
/// a NaN keeps its sign and high payload and gets the quiet bit. Adding 0x7FFF plus the last kept
/// bit carries into the kept half exactly when the dropped half is above the tie, or at the tie
/// with an odd kept half; a carry out of the mantissa steps the exponent (up to inf).
static inline __attribute__((always_inline)) uint32_t bf16_high_half(uint32_t bits) {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return bits | 0x00400000u;
    return bits + 0x7FFFu + ((bits >> 16) & 1u);
}

static inline __attribute__((always_inline)) uint16_t bf16_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint16_t)(bf16_high_half(bits) >> 16);
}

/// bf16 bits → float (exact: the bits become the high half).
static inline __attribute__((always_inline)) float bf16_widened(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}
