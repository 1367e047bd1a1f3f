#ifndef DTRAIN_WINOGRAD_H
#define DTRAIN_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

// The tile transforms of Winograd F(4×4, 3×3) and F(2×2, 3×3) convolutions (DTrainNN's
// WinogradKernel describes the algorithm and the layouts), over NHWC activations. Each kernel set
// has its variant of each, in its `dtrain_kernel_table` (dtrain_kernel_table.h): `winograd4` and
// `winograd2`.
//
// Each computes exactly what WinogradKernel's portable Swift transforms compute (same operations,
// same order, nothing fused), so every variant's result is the same bit for bit. They read and
// write nothing outside the tiles' pixels and the transformed blocks.

/// The largest channel count the transforms take (their zero padding is a static block of this
/// many floats).
#define DTRAIN_WINOGRAD_MAX_CHANNELS 1024

/// A range of tiles of a batch of height × width images: tiles are m×m output pixels (m = 4 for
/// the table's `winograd4` transforms, 2 for `winograd2`), numbered image by image, row by
/// row (tiles_high = ceil(height / m), tiles_wide = ceil(width / m)).
/// `channels` is that of the NHWC tensor read (input) or written (output), a multiple of 8 from 8
/// to DTRAIN_WINOGRAD_MAX_CHANNELS. The transformed side is [ξ][local tile][channel]: (m + 2)²
/// positions ξ, each a tile_count × channels matrix, `plane` floats apart (at least
/// tile_count × channels). With `round_to_bf16` nonzero, the input and output-gradient transforms
/// round each value they read to bf16 first (to nearest even, as dtrain_bf16_from_float; a NaN
/// stays a NaN): a bf16 convolution's operands, rounded where they are read instead of in a pass
/// of their own. The output transform ignores it.
typedef struct {
    intptr_t height, width, tiles_high, tiles_wide, channels;
    intptr_t first_tile, tile_count, plane;
    intptr_t round_to_bf16;
} dtrain_winograd_tiles;

/// V = Bᵀ d B per tile and channel, d the (m + 2)×(m + 2) patch at (m·ty − 1, m·tx − 1) of x,
/// zero outside the image, into v.
typedef void dtrain_winograd_input_fn(const float *x, const dtrain_winograd_tiles *tiles, float *v);

/// The same, from bf16 values (a layer's bf16 copy of its input, each widened exactly to float);
/// `round_to_bf16` does not matter.
typedef void dtrain_winograd_input_bf16_fn(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);

/// Y = Aᵀ M A + bias (bias may be NULL: + 0) per tile and channel from m into y, writing only the
/// outputs inside the image.
typedef void dtrain_winograd_output_fn(const float *m, const dtrain_winograd_tiles *tiles, const float *bias,
                                       float *y);

/// dM = A dY Aᵀ per tile and channel, dY the tile's m×m outputs of dy (zero outside the image),
/// into dm.
typedef void dtrain_winograd_output_gradient_fn(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);

/// The four transforms of one tile size, in one kernel set's variant.
typedef struct {
    dtrain_winograd_input_fn *input;
    dtrain_winograd_input_bf16_fn *input_bf16;
    dtrain_winograd_output_fn *output;
    dtrain_winograd_output_gradient_fn *output_gradient;
} dtrain_winograd_transforms;

#endif
