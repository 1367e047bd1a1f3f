// How kernels read activations (DTrainNN's BatchNormKernels.Input): floats as they are, floats rounded to
// bf16 as they are read (a bf16 operand rounded where it is read instead of in a pass of its own),
// or bf16 values widened to floats (exact). Included by kernels_<set>.c after vector.h: it defines
// the loads for vectors of LANES floats (operand_wide), of eight floats in the sixteen-lane sets
// (operand_eight, for a last block of eight channels), and of one float (operand_scalar).
#include "bf16_round.h"

/// How a kernel reads its operand; a constant where the callers inline the loads, so each form
/// compiles to a loop of its own.
enum { OPERAND_FLOAT = 0, OPERAND_ROUNDED = 1, OPERAND_BF16 = 2 };

/// Bytes per element of an operand read as `source` says.
static inline __attribute__((always_inline)) intptr_t operand_size(int source) {
    return source == OPERAND_BF16 ? (intptr_t)sizeof(uint16_t) : (intptr_t)sizeof(float);
}

#define PER_WIDTH_FILE "operand_block.h"
#include "per_width.h"

/// Element i at p, read as `source` says.
static inline __attribute__((always_inline)) float operand_scalar(const void *p, intptr_t i, int source) {
    if (source == OPERAND_BF16) return bf16_widened(((const uint16_t *)p)[i]);
    const float x = ((const float *)p)[i];
    if (source != OPERAND_ROUNDED) return x;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = bf16_high_half(bits) & 0xFFFF0000u;
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}
