// One vector width's part of templates/batch_norm.h: included with VT (the vector type), VLANES,
// VLOAD/VSTORE and BLOCK(name) (the width's function names) defined, after operand_block.h for
// the same width. Each function handles the channels ch ..< ch + VLANES.

/// dy where a fused ReLU passed the normalised value of x (> 0; a ReLU6: > 0 and < 6), else 0;
/// dy without a fused activation.
static inline __attribute__((always_inline)) VT BLOCK(bn_masked)(VT dy, VT x, const dtrain_bn_rows *r, intptr_t ch,
                                                                 int relu) {
    if (!relu) return dy;
    const VT v = (x - VLOAD(r->mean + ch)) * VLOAD(r->scale + ch) + VLOAD(r->shift + ch);
    BLOCK(bits) passed = (BLOCK(bits))(v > (VT)0.0f);
    if (relu == DTRAIN_BN_RELU6) passed &= (BLOCK(bits))(v < (VT)6.0f);
    return (VT)((BLOCK(bits))dy & passed);
}

/// Adds the float sums a and b of the block's rows into the double sums s and q.
static inline __attribute__((always_inline)) void BLOCK(bn_add_sums)(VT a, VT b, intptr_t ch, double *s, double *q) {
    for (int l = 0; l < VLANES; l++) {
        s[ch + l] += (double)a[l];
        q[ch + l] += (double)b[l];
    }
}

/// Σ (x − pivot) and Σ (x − pivot)² over `rows` rows from x (row_bytes apart).
static inline __attribute__((always_inline)) void BLOCK(bn_sums)(const char *x, intptr_t row_bytes, intptr_t rows,
                                                                 int source, intptr_t ch, const float *pivot,
                                                                 double *s, double *q) {
    const VT k = VLOAD(pivot + ch);
    VT a = (VT)0.0f, b = (VT)0.0f;
    for (intptr_t i = 0; i < rows; i++) {
        const VT d = BLOCK(operand)(x + i * row_bytes, ch, source) - k;
        a = a + d;
        b = b + d * d;
    }
    BLOCK(bn_add_sums)(a, b, ch, s, q);
}

/// Σ d and Σ d·(x − mean) over `rows` rows from x (row_bytes apart) and dy (`channels` apart).
static inline __attribute__((always_inline)) void BLOCK(bn_gradient_sums)(const char *x, intptr_t row_bytes,
                                                                          const float *dy, intptr_t rows,
                                                                          const dtrain_bn_rows *r, int source,
                                                                          int relu, intptr_t ch, double *s, double *q) {
    const VT m = VLOAD(r->mean + ch);
    VT a = (VT)0.0f, b = (VT)0.0f;
    for (intptr_t i = 0; i < rows; i++) {
        const VT x_i = BLOCK(operand)(x + i * row_bytes, ch, source);
        const VT d = BLOCK(bn_masked)(VLOAD(dy + i * r->channels + ch), x_i, r, ch, relu);
        a = a + d;
        b = b + d * (x_i - m);
    }
    BLOCK(bn_add_sums)(a, b, ch, s, q);
}

/// Lanes as bits, for a mask.
typedef _Bool BLOCK(flags) __attribute__((ext_vector_type(VLANES)));

/// One row's normalised values (and x's bf16 bits into `save`, the addend, the mask: each when
/// non-NULL; `mask` points at the row's first byte).
static inline __attribute__((always_inline)) void BLOCK(bn_normalize)(const void *x, float *y, uint16_t *save,
                                                                      const float *addend, uint8_t *mask,
                                                                      const dtrain_bn_rows *r, int source, int relu,
                                                                      intptr_t ch) {
    const VT v = BLOCK(operand)(x, ch, source);
    if (save) {
        const BLOCK(halves) h = __builtin_convertvector((BLOCK(bits))v >> 16, BLOCK(halves));
        memcpy(save + ch, &h, sizeof h);
    }
    VT n = (v - VLOAD(r->mean + ch)) * VLOAD(r->scale + ch) + VLOAD(r->shift + ch);
    if (addend) n = n + VLOAD(addend + ch);
    // max(n, 0) keeping NaN, and +0 for −0: as Swift's max(n, 0); a ReLU6 then at most 6.
    if (relu) n = (VT)((BLOCK(bits))n & (BLOCK(bits))((n > (VT)0.0f) | (n != n)));
    if (relu == DTRAIN_BN_RELU6) {
        const BLOCK(bits) above = (BLOCK(bits))(n > (VT)6.0f);
        n = (VT)(((BLOCK(bits))n & ~above) | ((BLOCK(bits))(VT)6.0f & above));
    }
    if (mask) {
        // One bit per lane, lane 0 lowest: the bool vector's bits are the mask bytes (ch is a
        // multiple of 8 here).
        const BLOCK(flags) positive = __builtin_convertvector(n > (VT)0.0f, BLOCK(flags));
        memcpy(mask + ch / 8, &positive, VLANES / 8);
    }
    VSTORE(y + ch, n);
}

/// One row of dx = d·a + (x − mean)·slope + offset.
static inline __attribute__((always_inline)) void BLOCK(bn_input_gradient)(const void *x, const float *dy, float *dx,
                                                                           const dtrain_bn_rows *r, const float *a,
                                                                           const float *slope, const float *offset,
                                                                           int source, int relu, int round,
                                                                           intptr_t ch) {
    const VT v = BLOCK(operand)(x, ch, source);
    const VT d = BLOCK(bn_masked)(VLOAD(dy + ch), v, r, ch, relu);
    const VT g = d * VLOAD(a + ch) + (v - VLOAD(r->mean + ch)) * VLOAD(slope + ch) + VLOAD(offset + ch);
    VSTORE(dx + ch, round ? BLOCK(bf16)(g) : g);
}
