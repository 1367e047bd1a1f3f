#ifndef DTRAIN_BATCH_NORM_H
#define DTRAIN_BATCH_NORM_H

#include <stddef.h>
#include <stdint.h>

// The passes of a BatchNorm over NHWC activations (DTrainNN's BatchNorm2d says what they
// compute and how the sums are combined). Each kernel set has its variant of each, in its
// `dtrain_kernel_table` (dtrain_kernel_table.h).
//
// Every variant computes the same result bit for bit: the arithmetic is per channel, in the same
// order (nothing fused), whatever the vector width. Sums are taken in float over blocks of
// DTRAIN_BN_BLOCK_ROWS rows, row by row, and each block's float sum is added into a double.

/// Rows per float block of a sum before it is added into the double sum.
#define DTRAIN_BN_BLOCK_ROWS 32

/// How a pass reads x: floats, floats rounded to bf16 as they are read (to nearest even; a NaN
/// stays a NaN), or bf16 values widened to floats.
enum { DTRAIN_BN_FLOAT32 = 0, DTRAIN_BN_ROUNDED = 1, DTRAIN_BN_BF16 = 2 };

/// The activation a BatchNorm applies to its normalised values (`relu`).
enum { DTRAIN_BN_NO_ACTIVATION = 0, DTRAIN_BN_RELU = 1, DTRAIN_BN_RELU6 = 2 };

/// Rows first_row ..< first_row + row_count of a BatchNorm's input x, `channels` values per row (x,
/// and the dy, y and dx the passes take, are indexed from row 0). `mean`, `scale` and `shift` are
/// per channel: the normalised value is (x − mean)·scale + shift. With `relu` DTRAIN_BN_RELU a
/// ReLU is fused in: the output is clamped at 0 (NaN kept) and dy counts only where the
/// normalised value is > 0; with DTRAIN_BN_RELU6 a ReLU6: clamped to [0, 6] (NaN kept), dy
/// counting only where the normalised value is > 0 and < 6. The sums ignore mean, scale and shift
/// unless they say otherwise.
///
/// Only normalize reads `addend` and `mask` (NULL: none): a residual block's add (and ReLU) fused
/// into the BatchNorm that ends its main branch. With `addend` (indexed like y), the output is the
/// normalised value plus addend, then clamped with `relu` (a ReLU); with `mask` (channels a multiple of 8),
/// bit j of mask[k] says whether output element 8k + j was > 0 (the block's ReLU for backward).
///
/// Only input_gradient reads `rounds_dx`: nonzero writes dx rounded to bf16 (to nearest even, a
/// NaN kept), the dy of a bf16 convolution before the BatchNorm that would round it anyway.
typedef struct {
    const void *x;
    intptr_t input;
    intptr_t channels, first_row, row_count;
    const float *mean, *scale, *shift;
    intptr_t relu;
    const float *addend;
    uint8_t *mask;
    intptr_t rounds_dx;
} dtrain_bn_rows;

/// sums[c] = Σ (x − pivot[c]), sums[channels + c] = Σ (x − pivot[c])² over the rows.
typedef void dtrain_bn_sums_fn(const dtrain_bn_rows *r, const float *pivot, double *sums);

/// y = the normalised value (plus `addend`, clamped with `relu`, noted in `mask`), and with `save`
/// non-NULL x's bf16 bits (the high halves of x as read; exact when x is read rounded or as bf16).
typedef void dtrain_bn_normalize_fn(const dtrain_bn_rows *r, float *y, uint16_t *save);

/// sums[c] = Σ d, sums[channels + c] = Σ d·(x − mean[c]) over the rows, d = dy masked by a fused
/// ReLU.
typedef void dtrain_bn_gradient_sums_fn(const dtrain_bn_rows *r, const float *dy, double *sums);

/// dx = d·a + (x − mean)·slope + offset per channel, d = dy masked by a fused ReLU; rounded to bf16
/// with `rounds_dx`.
typedef void dtrain_bn_input_gradient_fn(const dtrain_bn_rows *r, const float *dy, const float *a,
                                         const float *slope, const float *offset, float *dx);

#endif
