// The direct grouped and depthwise convolution passes (dtrain_grouped_conv.h) for one instruction
// set; included by kernels_<set>.c after vector.h.
//
// A grouped pass whose groups have as many inputs as outputs, 4, 8 or 16 of them (ResNeXt's
// narrow stages), holds LANES / width groups in one vector: lane (p, b) is output b of group p.
// The input each lane needs is element a of its own group's inputs, spread over the group's lanes
// by a shuffle of the one vector that holds those groups' inputs (for width = LANES, a broadcast).
// Other groups go one at a time, with vectors of 8 or 4 outputs. Both forms compute each output
// element with the same chain of fused multiply-adds, so the variants agree bit for bit.

// Everything below is written with explicit fused multiply-adds; nothing else may be fused.
#pragma clang fp contract(off)

typedef float grouped_vec4 __attribute__((ext_vector_type(4)));

static inline __attribute__((always_inline)) grouped_vec4 grouped_load4(const float *p) {
    grouped_vec4 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) void grouped_store4(float *p, grouped_vec4 v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) grouped_vec4 grouped_fma4(grouped_vec4 acc, grouped_vec4 a, grouped_vec4 b) {
    return __builtin_elementwise_fma(a, b, acc);
}

// Shuffle indices: lane (p, b) of the result takes lane p·width + a of the source.
#if LANES == 8
#define GROUPED_SPREAD4(a) a, a, a, a, 4 + a, 4 + a, 4 + a, 4 + a
#else
#define GROUPED_SPREAD4(a) a, a, a, a, 4 + a, 4 + a, 4 + a, 4 + a, 8 + a, 8 + a, 8 + a, 8 + a, 12 + a, 12 + a, 12 + a, 12 + a
#define GROUPED_SPREAD8(a) a, a, a, a, a, a, a, a, 8 + a, 8 + a, 8 + a, 8 + a, 8 + a, 8 + a, 8 + a, 8 + a
#endif

/// Lane (p, b) = x[p·width + a], for width 4 or (sixteen lanes) 8; width and a are constants
/// where it is inlined, so one shuffle remains.
static inline __attribute__((always_inline)) vec grouped_spread(vec x, const int width, const int a) {
    if (width == 4) {
        switch (a) {
        case 0: return __builtin_shufflevector(x, x, GROUPED_SPREAD4(0));
        case 1: return __builtin_shufflevector(x, x, GROUPED_SPREAD4(1));
        case 2: return __builtin_shufflevector(x, x, GROUPED_SPREAD4(2));
        default: return __builtin_shufflevector(x, x, GROUPED_SPREAD4(3));
        }
    }
#if LANES == 16
    switch (a) {
    case 0: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(0));
    case 1: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(1));
    case 2: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(2));
    case 3: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(3));
    case 4: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(4));
    case 5: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(5));
    case 6: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(6));
    default: return __builtin_shufflevector(x, x, GROUPED_SPREAD8(7));
    }
#else
    return x;
#endif
}

/// Whether groups of `in_width` inputs and `out_width` outputs go LANES / width to a vector.
static inline __attribute__((always_inline)) int grouped_packs(intptr_t in_width, intptr_t out_width) {
    return in_width == out_width && (in_width == 4 || in_width == 8 || in_width == 16) && in_width <= LANES;
}

/// The grouped pass over whole vectors of groups (`width` a constant where inlined); returns the
/// groups it covered.
static inline __attribute__((always_inline)) intptr_t grouped_pass_packed(
    intptr_t count, const float *in, intptr_t in_step, float *out, intptr_t out_step, intptr_t groups,
    const float *m, intptr_t m_stride, const int width) {
    const intptr_t per = LANES / width;
    intptr_t g0 = 0;
    for (; g0 + per <= groups; g0 += per) {
        vec w[16];
        for (int a = 0; a < width; a++) w[a] = load(m + a * m_stride + g0 * width);
        const float *ip = in + g0 * width;
        float *op = out + g0 * width;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) {
            vec acc;
            if (width == LANES) {
                acc = broadcast(ip[0]) * w[0];
                for (int a = 1; a < width; a++) acc = fma_lanes(acc, broadcast(ip[a]), w[a]);
            } else {
                const vec x = load(ip);
                acc = grouped_spread(x, width, 0) * w[0];
                for (int a = 1; a < width; a++) acc = fma_lanes(acc, grouped_spread(x, width, a), w[a]);
            }
            store(op, load(op) + acc);
        }
    }
    return g0;
}

/// The grouped pass for one group (pointers at its first input, output and weight column).
static void grouped_pass_one(intptr_t count, const float *in, intptr_t in_step, float *out, intptr_t out_step,
                             intptr_t in_width, intptr_t out_width, const float *m, intptr_t m_stride) {
    intptr_t b0 = 0;
    for (; b0 + 8 <= out_width; b0 += 8) {
        const float *ip = in;
        float *op = out + b0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) {
            vec8 acc = (vec8)ip[0] * load8(m + b0);
            for (intptr_t a = 1; a < in_width; a++) acc = fma8(acc, (vec8)ip[a], load8(m + a * m_stride + b0));
            store8(op, load8(op) + acc);
        }
    }
    for (; b0 < out_width; b0 += 4) {
        const float *ip = in;
        float *op = out + b0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) {
            grouped_vec4 acc = (grouped_vec4)ip[0] * grouped_load4(m + b0);
            for (intptr_t a = 1; a < in_width; a++)
                acc = grouped_fma4(acc, (grouped_vec4)ip[a], grouped_load4(m + a * m_stride + b0));
            grouped_store4(op, grouped_load4(op) + acc);
        }
    }
}

static void KERNEL(dtrain_grouped_conv_pass)(intptr_t count, const float *in, intptr_t in_step, float *out,
                                             intptr_t out_step, intptr_t groups, intptr_t in_width, intptr_t out_width,
                                             const float *m, intptr_t m_stride) {
    intptr_t g = 0;
    if (grouped_packs(in_width, out_width)) {
        switch (in_width) {
        case 4: g = grouped_pass_packed(count, in, in_step, out, out_step, groups, m, m_stride, 4); break;
        case 8: g = grouped_pass_packed(count, in, in_step, out, out_step, groups, m, m_stride, 8); break;
#if LANES == 16
        default: g = grouped_pass_packed(count, in, in_step, out, out_step, groups, m, m_stride, 16); break;
#endif
        }
    }
    for (; g < groups; g++)
        grouped_pass_one(count, in + g * in_width, in_step, out + g * out_width, out_step, in_width, out_width,
                         m + g * out_width, m_stride);
}

/// The weight pass over whole vectors of groups; returns the groups it covered.
static inline __attribute__((always_inline)) intptr_t grouped_weight_pass_packed(
    intptr_t count, const float *x, intptr_t x_step, const float *dy, intptr_t dy_step, intptr_t groups,
    float *partial, intptr_t partial_stride, const int width) {
    const intptr_t per = LANES / width;
    intptr_t g0 = 0;
    for (; g0 + per <= groups; g0 += per) {
        vec acc[16];
        for (int j = 0; j < width; j++) acc[j] = (vec)0.0f;
        const float *xp = x + g0 * width, *dp = dy + g0 * width;
        for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) {
            const vec xv = load(xp);
            if (width == LANES) {
                for (int j = 0; j < width; j++) acc[j] = fma_lanes(acc[j], broadcast(dp[j]), xv);
            } else {
                const vec d = load(dp);
                for (int j = 0; j < width; j++) acc[j] = fma_lanes(acc[j], grouped_spread(d, width, j), xv);
            }
        }
        for (int j = 0; j < width; j++) {
            float *q = partial + j * partial_stride + g0 * width;
            store(q, load(q) + acc[j]);
        }
    }
    return g0;
}

/// The weight pass for one group (x, dy and partial at its first input, output and column).
static void grouped_weight_pass_one(intptr_t count, const float *x, intptr_t x_step, const float *dy,
                                    intptr_t dy_step, intptr_t in_width, intptr_t out_width, float *partial,
                                    intptr_t partial_stride) {
    for (intptr_t j0 = 0; j0 < out_width; j0 += 4) {
        intptr_t i0 = 0;
        for (; i0 + 8 <= in_width; i0 += 8) {
            vec8 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const float *xp = x + i0, *dp = dy + j0;
            for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) {
                const vec8 xv = load8(xp);
                a0 = fma8(a0, (vec8)dp[0], xv);
                a1 = fma8(a1, (vec8)dp[1], xv);
                a2 = fma8(a2, (vec8)dp[2], xv);
                a3 = fma8(a3, (vec8)dp[3], xv);
            }
            float *q = partial + j0 * partial_stride + i0;
            store8(q, load8(q) + a0);
            store8(q + partial_stride, load8(q + partial_stride) + a1);
            store8(q + 2 * partial_stride, load8(q + 2 * partial_stride) + a2);
            store8(q + 3 * partial_stride, load8(q + 3 * partial_stride) + a3);
        }
        for (; i0 < in_width; i0 += 4) {
            grouped_vec4 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const float *xp = x + i0, *dp = dy + j0;
            for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) {
                const grouped_vec4 xv = grouped_load4(xp);
                a0 = grouped_fma4(a0, (grouped_vec4)dp[0], xv);
                a1 = grouped_fma4(a1, (grouped_vec4)dp[1], xv);
                a2 = grouped_fma4(a2, (grouped_vec4)dp[2], xv);
                a3 = grouped_fma4(a3, (grouped_vec4)dp[3], xv);
            }
            float *q = partial + j0 * partial_stride + i0;
            grouped_store4(q, grouped_load4(q) + a0);
            grouped_store4(q + partial_stride, grouped_load4(q + partial_stride) + a1);
            grouped_store4(q + 2 * partial_stride, grouped_load4(q + 2 * partial_stride) + a2);
            grouped_store4(q + 3 * partial_stride, grouped_load4(q + 3 * partial_stride) + a3);
        }
    }
}

static void KERNEL(dtrain_grouped_conv_weight_pass)(intptr_t count, const float *x, intptr_t x_step, const float *dy,
                                                    intptr_t dy_step, intptr_t groups, intptr_t in_width,
                                                    intptr_t out_width, float *partial, intptr_t partial_stride) {
    intptr_t g = 0;
    if (grouped_packs(in_width, out_width)) {
        switch (in_width) {
        case 4: g = grouped_weight_pass_packed(count, x, x_step, dy, dy_step, groups, partial, partial_stride, 4); break;
        case 8: g = grouped_weight_pass_packed(count, x, x_step, dy, dy_step, groups, partial, partial_stride, 8); break;
#if LANES == 16
        default: g = grouped_weight_pass_packed(count, x, x_step, dy, dy_step, groups, partial, partial_stride, 16); break;
#endif
        }
    }
    for (; g < groups; g++)
        grouped_weight_pass_one(count, x + g * in_width, x_step, dy + g * out_width, dy_step, in_width, out_width,
                                partial + g * in_width, partial_stride);
}

static void KERNEL(dtrain_depthwise_conv_pass)(intptr_t count, const float *in, intptr_t in_step, float *out,
                                               intptr_t out_step, const float *w, intptr_t channels) {
    intptr_t c0 = 0;
    for (; c0 + 2 * LANES <= channels; c0 += 2 * LANES) {
        const vec w0 = load(w + c0), w1 = load(w + c0 + LANES);
        const float *ip = in + c0;
        float *op = out + c0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) {
            store(op, fma_lanes(load(op), load(ip), w0));
            store(op + LANES, fma_lanes(load(op + LANES), load(ip + LANES), w1));
        }
    }
    for (; c0 + LANES <= channels; c0 += LANES) {
        const vec w0 = load(w + c0);
        const float *ip = in + c0;
        float *op = out + c0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) store(op, fma_lanes(load(op), load(ip), w0));
    }
    for (; c0 + 4 <= channels; c0 += 4) {
        const grouped_vec4 w0 = grouped_load4(w + c0);
        const float *ip = in + c0;
        float *op = out + c0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step)
            grouped_store4(op, grouped_fma4(grouped_load4(op), grouped_load4(ip), w0));
    }
    for (; c0 < channels; c0++) {
        const float w0 = w[c0];
        const float *ip = in + c0;
        float *op = out + c0;
        for (intptr_t p = 0; p < count; p++, ip += in_step, op += out_step) *op = __builtin_fmaf(*ip, w0, *op);
    }
}

static void KERNEL(dtrain_depthwise_conv_weight_pass)(intptr_t count, const float *x, intptr_t x_step, const float *dy,
                                                      intptr_t dy_step, float *partial, intptr_t channels) {
    intptr_t c0 = 0;
    for (; c0 + 2 * LANES <= channels; c0 += 2 * LANES) {
        vec a0 = (vec)0.0f, a1 = (vec)0.0f;
        const float *xp = x + c0, *dp = dy + c0;
        for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) {
            a0 = fma_lanes(a0, load(xp), load(dp));
            a1 = fma_lanes(a1, load(xp + LANES), load(dp + LANES));
        }
        store(partial + c0, load(partial + c0) + a0);
        store(partial + c0 + LANES, load(partial + c0 + LANES) + a1);
    }
    for (; c0 + LANES <= channels; c0 += LANES) {
        vec a0 = (vec)0.0f;
        const float *xp = x + c0, *dp = dy + c0;
        for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) a0 = fma_lanes(a0, load(xp), load(dp));
        store(partial + c0, load(partial + c0) + a0);
    }
    for (; c0 + 4 <= channels; c0 += 4) {
        grouped_vec4 a0 = 0;
        const float *xp = x + c0, *dp = dy + c0;
        for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step)
            a0 = grouped_fma4(a0, grouped_load4(xp), grouped_load4(dp));
        grouped_store4(partial + c0, grouped_load4(partial + c0) + a0);
    }
    for (; c0 < channels; c0++) {
        float a0 = 0;
        const float *xp = x + c0, *dp = dy + c0;
        for (intptr_t p = 0; p < count; p++, xp += x_step, dp += dy_step) a0 = __builtin_fmaf(*xp, *dp, a0);
        partial[c0] += a0;
    }
}

#undef GROUPED_SPREAD4
#undef GROUPED_SPREAD8
