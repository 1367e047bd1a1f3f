// dtrain_bn_{sums,normalize,gradient_sums,input_gradient} for one instruction set (see
// dtrain_batch_norm.h); included by kernels_<set>.c after operand.h.
//
// Channels go across the lanes: blocks of LANES channels, then in the sixteen-lane sets a block of
// eight, then single channels. batch_norm_block.h holds the per-block code, included once per
// vector width. The arithmetic is DTrainNN's BatchNorm2d's: per channel, nothing fused, so the
// width of the block a channel falls in changes nothing.
#pragma clang fp contract(off)

_Static_assert(DTRAIN_BN_FLOAT32 == OPERAND_FLOAT && DTRAIN_BN_ROUNDED == OPERAND_ROUNDED &&
               DTRAIN_BN_BF16 == OPERAND_BF16, "dtrain_bn_rows.input is an operand source");

#define PER_WIDTH_FILE "batch_norm_block.h"
#include "per_width.h"

/// Runs `wide(ch)` on the blocks of LANES channels of c, `eight(ch)` on a block of eight after
/// them (sixteen-lane sets) and `single(ch)` on each channel left.
#if LANES > 8
#define FOR_BN_CHANNELS(c, wide, eight, single) \
    do { intptr_t ch_ = 0; \
         for (; ch_ + LANES <= (c); ch_ += LANES) { wide(ch_); } \
         for (; ch_ + 8 <= (c); ch_ += 8) { eight(ch_); } \
         for (; ch_ < (c); ch_++) { single(ch_); } } while (0)
#else
#define FOR_BN_CHANNELS(c, wide, eight, single) \
    do { intptr_t ch_ = 0; \
         for (; ch_ + LANES <= (c); ch_ += LANES) { wide(ch_); } \
         for (; ch_ < (c); ch_++) { single(ch_); } } while (0)
#endif

/// The normalised value of x in channel c.
static inline __attribute__((always_inline)) float bn_normalized(float x, const dtrain_bn_rows *r, intptr_t c) {
    return (x - r->mean[c]) * r->scale[c] + r->shift[c];
}

/// dy masked by a fused ReLU (or ReLU6), one channel.
static inline __attribute__((always_inline)) float bn_masked(float dy, float x, const dtrain_bn_rows *r, intptr_t c,
                                                             int relu) {
    if (!relu) return dy;
    const float v = bn_normalized(x, r, c);
    return v > 0 && (relu != DTRAIN_BN_RELU6 || v < 6) ? dy : 0;
}

/// max(n, 0) keeping NaN and giving +0 for −0 (as Swift's max(n, 0)), then for a ReLU6 at most 6.
static inline __attribute__((always_inline)) float bn_activation_scalar(float n, int relu) {
    if (!relu) return n;
    n = !(n > 0) && n == n ? 0 : n;
    return relu == DTRAIN_BN_RELU6 && n > 6 ? 6 : n;
}

/// The forward sums (`gradient` 0: of x − pivot) or the gradient sums (`gradient` 1: of d and
/// d·(x − mean), d from dy) over r's rows, block by block; `gradient` is a constant.
static inline __attribute__((always_inline)) void bn_block_sums(const dtrain_bn_rows *r, const float *pivot,
                                                                const float *dy, double *sums, int source, int relu,
                                                                int gradient) {
    const intptr_t c = r->channels, row_bytes = c * operand_size(source);
    double *s = sums, *q = sums + c;
    for (intptr_t i = 0; i < 2 * c; i++) sums[i] = 0;
    for (intptr_t start = 0; start < r->row_count; start += DTRAIN_BN_BLOCK_ROWS) {
        const intptr_t rows = r->row_count - start < DTRAIN_BN_BLOCK_ROWS ? r->row_count - start : DTRAIN_BN_BLOCK_ROWS;
        const char *x = (const char *)r->x + (r->first_row + start) * row_bytes;
        if (!gradient) {
#define SUMS_WIDE(ch) bn_sums_wide(x, row_bytes, rows, source, ch, pivot, s, q)
#define SUMS_EIGHT(ch) bn_sums_eight(x, row_bytes, rows, source, ch, pivot, s, q)
#define SUMS_SINGLE(ch) do { \
                float a = 0, b = 0; \
                for (intptr_t i = 0; i < rows; i++) { \
                    const float d = operand_scalar(x + i * row_bytes, ch, source) - pivot[ch]; \
                    a = a + d; \
                    b = b + d * d; \
                } \
                s[ch] += (double)a; \
                q[ch] += (double)b; } while (0)
            FOR_BN_CHANNELS(c, SUMS_WIDE, SUMS_EIGHT, SUMS_SINGLE);
#undef SUMS_WIDE
#undef SUMS_EIGHT
#undef SUMS_SINGLE
            continue;
        }
        const float *g = dy + (r->first_row + start) * c;
#define GRADIENT_WIDE(ch) bn_gradient_sums_wide(x, row_bytes, g, rows, r, source, relu, ch, s, q)
#define GRADIENT_EIGHT(ch) bn_gradient_sums_eight(x, row_bytes, g, rows, r, source, relu, ch, s, q)
#define GRADIENT_SINGLE(ch) do { \
            float a = 0, b = 0; \
            for (intptr_t i = 0; i < rows; i++) { \
                const float x_i = operand_scalar(x + i * row_bytes, ch, source); \
                const float d = bn_masked(g[i * c + ch], x_i, r, ch, relu); \
                a = a + d; \
                b = b + d * (x_i - r->mean[ch]); \
            } \
            s[ch] += (double)a; \
            q[ch] += (double)b; } while (0)
        FOR_BN_CHANNELS(c, GRADIENT_WIDE, GRADIENT_EIGHT, GRADIENT_SINGLE);
#undef GRADIENT_WIDE
#undef GRADIENT_EIGHT
#undef GRADIENT_SINGLE
    }
}

/// `residual` (a constant): whether r->addend is set.
static inline __attribute__((always_inline)) void bn_normalize(const dtrain_bn_rows *r, float *y, uint16_t *save,
                                                               int source, int relu, int residual) {
    const intptr_t c = r->channels, element = operand_size(source);
    for (intptr_t row = r->first_row; row < r->first_row + r->row_count; row++) {
        const char *x = (const char *)r->x + row * c * element;
        float *y_row = y + row * c;
        uint16_t *save_row = save ? save + row * c : NULL;
        const float *addend = residual ? r->addend + row * c : NULL;
        uint8_t *mask = r->mask ? r->mask + row * c / 8 : NULL;
#define NORMALIZE_WIDE(ch) bn_normalize_wide(x, y_row, save_row, addend, mask, r, source, relu, ch)
#define NORMALIZE_EIGHT(ch) bn_normalize_eight(x, y_row, save_row, addend, mask, r, source, relu, ch)
#define NORMALIZE_SINGLE(ch) do { \
            const float v = operand_scalar(x, ch, source); \
            if (save_row) { \
                uint32_t bits; \
                memcpy(&bits, &v, sizeof bits); \
                save_row[ch] = (uint16_t)(bits >> 16); \
            } \
            float n = bn_normalized(v, r, ch); \
            if (addend) n = n + addend[ch]; \
            y_row[ch] = bn_activation_scalar(n, relu); } while (0)
        FOR_BN_CHANNELS(c, NORMALIZE_WIDE, NORMALIZE_EIGHT, NORMALIZE_SINGLE);
#undef NORMALIZE_WIDE
#undef NORMALIZE_EIGHT
#undef NORMALIZE_SINGLE
    }
}

static inline __attribute__((always_inline)) void bn_input_gradient(const dtrain_bn_rows *r, const float *dy,
                                                                    const float *a, const float *slope,
                                                                    const float *offset, float *dx, int source,
                                                                    int relu, int round) {
    const intptr_t c = r->channels, element = operand_size(source);
    for (intptr_t row = r->first_row; row < r->first_row + r->row_count; row++) {
        const char *x = (const char *)r->x + row * c * element;
        const float *dy_row = dy + row * c;
        float *dx_row = dx + row * c;
#define DX_WIDE(ch) bn_input_gradient_wide(x, dy_row, dx_row, r, a, slope, offset, source, relu, round, ch)
#define DX_EIGHT(ch) bn_input_gradient_eight(x, dy_row, dx_row, r, a, slope, offset, source, relu, round, ch)
#define DX_SINGLE(ch) do { \
            const float v = operand_scalar(x, ch, source); \
            const float d = bn_masked(dy_row[ch], v, r, ch, relu); \
            const float g = d * a[ch] + (v - r->mean[ch]) * slope[ch] + offset[ch]; \
            dx_row[ch] = round ? operand_scalar(&g, 0, OPERAND_ROUNDED) : g; } while (0)
        FOR_BN_CHANNELS(c, DX_WIDE, DX_EIGHT, DX_SINGLE);
#undef DX_WIDE
#undef DX_EIGHT
#undef DX_SINGLE
    }
}

/// Calls body(source, relu) with both as constants, so that each pair compiles to its own loops.
#define BN_SOURCES(r, body, relu) \
    do { \
        switch ((r)->input) { \
        case DTRAIN_BN_BF16: body(OPERAND_BF16, relu); break; \
        case DTRAIN_BN_ROUNDED: body(OPERAND_ROUNDED, relu); break; \
        default: body(OPERAND_FLOAT, relu); break; \
        } \
    } while (0)
#define BN_VARIANTS(r, body) \
    do { \
        switch ((r)->relu) { \
        case DTRAIN_BN_RELU: BN_SOURCES(r, body, DTRAIN_BN_RELU); break; \
        case DTRAIN_BN_RELU6: BN_SOURCES(r, body, DTRAIN_BN_RELU6); break; \
        default: BN_SOURCES(r, body, DTRAIN_BN_NO_ACTIVATION); break; \
        } \
    } while (0)

static void KERNEL(dtrain_bn_sums)(const dtrain_bn_rows *r, const float *pivot, double *sums) {
    // The sums of x alone: no ReLU to mask by.
    switch (r->input) {
    case DTRAIN_BN_BF16: bn_block_sums(r, pivot, NULL, sums, OPERAND_BF16, 0, 0); break;
    case DTRAIN_BN_ROUNDED: bn_block_sums(r, pivot, NULL, sums, OPERAND_ROUNDED, 0, 0); break;
    default: bn_block_sums(r, pivot, NULL, sums, OPERAND_FLOAT, 0, 0); break;
    }
}

static void KERNEL(dtrain_bn_normalize)(const dtrain_bn_rows *r, float *y, uint16_t *save) {
#define BODY(source, relu) bn_normalize(r, y, save, source, relu, 0)
#define RESIDUAL_BODY(source, relu) bn_normalize(r, y, save, source, relu, 1)
    if (r->addend) BN_VARIANTS(r, RESIDUAL_BODY);
    else BN_VARIANTS(r, BODY);
#undef RESIDUAL_BODY
#undef BODY
}

static void KERNEL(dtrain_bn_gradient_sums)(const dtrain_bn_rows *r, const float *dy, double *sums) {
#define BODY(source, relu) bn_block_sums(r, NULL, dy, sums, source, relu, 1)
    BN_VARIANTS(r, BODY);
#undef BODY
}

static void KERNEL(dtrain_bn_input_gradient)(const dtrain_bn_rows *r, const float *dy, const float *a,
                                             const float *slope, const float *offset, float *dx) {
#define BODY(source, relu) bn_input_gradient(r, dy, a, slope, offset, dx, source, relu, 0)
#define ROUNDED_BODY(source, relu) bn_input_gradient(r, dy, a, slope, offset, dx, source, relu, 1)
    if (r->rounds_dx) BN_VARIANTS(r, ROUNDED_BODY);
    else BN_VARIANTS(r, BODY);
#undef ROUNDED_BODY
#undef BODY
}

#undef BN_VARIANTS
#undef BN_SOURCES
#undef FOR_BN_CHANNELS
