// One vector width's operand loads, for the kernels that read activations as floats, as floats
// rounded to bf16, or as bf16 values: included by operand.h with VT (the vector type), VLANES,
// VLOAD and BLOCK(name) (the width's function names: name_wide, name_eight) defined.

/// Lanes as unsigned integers, for the bf16 rounding.
typedef uint32_t BLOCK(bits) __attribute__((ext_vector_type(VLANES)));

/// x rounded to bf16 on every lane: to nearest even; a NaN keeps its sign and high payload and
/// gets the quiet bit (DTrainCore's roundedToBFloat16, bf16_round.h's bf16_high_half).
static inline __attribute__((always_inline)) VT BLOCK(bf16)(VT x) {
    const BLOCK(bits) bits = (BLOCK(bits))x;
    const BLOCK(bits) nan = (BLOCK(bits))((bits & 0x7FFFFFFFu) > 0x7F800000u);
    const BLOCK(bits) rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
    return (VT)(((rounded & ~nan) | ((bits | 0x00400000u) & nan)) & 0xFFFF0000u);
}

/// bf16 lanes, as stored.
typedef uint16_t BLOCK(halves) __attribute__((ext_vector_type(VLANES)));

/// The vector of channels ch ..< ch + VLANES at p (floats, or bf16 values for OPERAND_BF16), read
/// as `source` says.
static inline __attribute__((always_inline)) VT BLOCK(operand)(const void *p, intptr_t ch, int source) {
    if (source == OPERAND_BF16) {
        BLOCK(halves) h;
        memcpy(&h, (const uint16_t *)p + ch, sizeof h);
        return (VT)(__builtin_convertvector(h, BLOCK(bits)) << 16);
    }
    const VT x = VLOAD((const float *)p + ch);
    return source == OPERAND_ROUNDED ? BLOCK(bf16)(x) : x;
}
