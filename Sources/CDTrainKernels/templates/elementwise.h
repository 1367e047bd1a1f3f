// dtrain_add, dtrain_add_relu and dtrain_relu_backward for one instruction set (see
// dtrain_elementwise.h); included by kernels_<set>.c after vector.h. Whole vectors of LANES
// floats, then element by element; the arithmetic is one addition per element, so the split
// changes nothing.

typedef uint32_t elementwise_bits __attribute__((ext_vector_type(LANES)));
typedef _Bool elementwise_flags __attribute__((ext_vector_type(LANES)));

/// relu(v) on every lane: +0 where v ≤ 0 (−0 included), v elsewhere (NaN kept).
static inline __attribute__((always_inline)) vec elementwise_relu(vec v) {
    return (vec)((elementwise_bits)v & (elementwise_bits)((v > (vec)0.0f) | (v != v)));
}

static inline __attribute__((always_inline)) float elementwise_relu_scalar(float v) { return v > 0 || v != v ? v : 0; }

static void KERNEL(dtrain_add)(const float *a, const float *b, float *y, intptr_t n) {
    intptr_t i = 0;
    for (; i + LANES <= n; i += LANES) store(y + i, load(a + i) + load(b + i));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

static void KERNEL(dtrain_add_relu)(const float *a, const float *b, float *y, uint8_t *bits, intptr_t n) {
    intptr_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const vec v = load(a + i) + load(b + i);
        if (bits) {
            // One bit per lane, lane 0 lowest: the bool vector's bits are the mask bytes.
            const elementwise_flags positive = __builtin_convertvector(v > (vec)0.0f, elementwise_flags);
            memcpy(bits + i / 8, &positive, LANES / 8);
        }
        store(y + i, elementwise_relu(v));
    }
    if (bits && i < n) memset(bits + i / 8, 0, (size_t)((n - i + 7) / 8));
    for (; i < n; i++) {
        const float v = a[i] + b[i];
        if (bits && v > 0) bits[i / 8] |= (uint8_t)(1u << (i % 8));
        y[i] = elementwise_relu_scalar(v);
    }
}

static void KERNEL(dtrain_relu_backward)(const float *dy, const float *y, const uint8_t *bits, float *dx, intptr_t n) {
    intptr_t i = 0;
    if (bits) {
        // Lane l's bit of the LANES / 8 bytes at bits + i / 8.
        elementwise_bits lane;
        for (int l = 0; l < LANES; l++) lane[l] = 1u << l;
        for (; i + LANES <= n; i += LANES) {
            uint32_t word = 0;
            memcpy(&word, bits + i / 8, LANES / 8);
            const elementwise_bits passed = (elementwise_bits)(((elementwise_bits)word & lane) != 0);
            store(dx + i, (vec)((elementwise_bits)load(dy + i) & passed));
        }
        for (; i < n; i++) dx[i] = (bits[i / 8] >> (i % 8)) & 1 ? dy[i] : 0;
        return;
    }
    for (; i + LANES <= n; i += LANES)
        store(dx + i, (vec)((elementwise_bits)load(dy + i) & (elementwise_bits)(load(y + i) > (vec)0.0f)));
    for (; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}
