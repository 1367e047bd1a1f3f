#ifndef DTRAIN_WINOGRAD_H
#define DTRAIN_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

// The tile transforms of Winograd F(4×4, 3×3) and F(2×2, 3×3) convolutions (DTrainNN's WinogradKernel describes
// the algorithm and the layouts), over NHWC activations, one variant per instruction set:
// _avx2 (eight lanes), _avx512 (sixteen lanes, AVX-512 F/DQ/BW/VL) and _lanes16_avx2 (the
// sixteen-lane source compiled for AVX2: only for tests, so CPUs without AVX-512 check the code
// the avx512 variant runs). A variant may only be called on a CPU that has its extensions
// (`dtrain_cpu_has`).
//
// Each computes exactly what WinogradKernel's portable Swift transforms compute (same operations,
// same order, nothing fused), so every variant's result is the same bit for bit. They read and
// write nothing outside the tiles' pixels and the transformed blocks.

/// The largest channel count the transforms take (their zero padding is a static block of this
/// many floats).
#define DTRAIN_WINOGRAD_MAX_CHANNELS 1024

/// A range of tiles of a batch of height × width images: tiles are m×m output pixels (m = 4 for
/// the dtrain_winograd4_ transforms, 2 for dtrain_winograd2_), numbered image by image, row by
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

/// V = Bᵀ d B per tile and channel, d the 6×6 patch at (4·ty − 1, 4·tx − 1) of x, zero outside
/// the image, into v.
void dtrain_winograd4_input_avx2(const float *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd4_input_avx512(const float *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd4_input_lanes16_avx2(const float *x, const dtrain_winograd_tiles *tiles, float *v);

/// The same, from bf16 values (a layer's bf16 copy of its input, each widened exactly to float);
/// `round_to_bf16` does not matter.
void dtrain_winograd4_input_bf16_avx2(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd4_input_bf16_avx512(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd4_input_bf16_lanes16_avx2(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);

/// Y = Aᵀ M A + bias (bias may be NULL: + 0) per tile and channel from m into y, writing only the
/// outputs inside the image.
void dtrain_winograd4_output_avx2(const float *m, const dtrain_winograd_tiles *tiles, const float *bias, float *y);
void dtrain_winograd4_output_avx512(const float *m, const dtrain_winograd_tiles *tiles, const float *bias, float *y);
void dtrain_winograd4_output_lanes16_avx2(const float *m, const dtrain_winograd_tiles *tiles, const float *bias,
                                          float *y);

/// dM = A dY Aᵀ per tile and channel, dY the tile's 4×4 outputs of dy (zero outside the image),
/// into dm.
void dtrain_winograd4_output_gradient_avx2(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);
void dtrain_winograd4_output_gradient_avx512(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);
void dtrain_winograd4_output_gradient_lanes16_avx2(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);

/// The F(2×2) transforms, as the F(4×4) ones above: 2×2 output tiles, 4×4 input patches at
/// (2·ty − 1, 2·tx − 1), 16 positions ξ.
void dtrain_winograd2_input_avx2(const float *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_input_avx512(const float *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_input_lanes16_avx2(const float *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_input_bf16_avx2(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_input_bf16_avx512(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_input_bf16_lanes16_avx2(const uint16_t *x, const dtrain_winograd_tiles *tiles, float *v);
void dtrain_winograd2_output_avx2(const float *m, const dtrain_winograd_tiles *tiles, const float *bias, float *y);
void dtrain_winograd2_output_avx512(const float *m, const dtrain_winograd_tiles *tiles, const float *bias, float *y);
void dtrain_winograd2_output_lanes16_avx2(const float *m, const dtrain_winograd_tiles *tiles, const float *bias,
                                          float *y);
void dtrain_winograd2_output_gradient_avx2(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);
void dtrain_winograd2_output_gradient_avx512(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);
void dtrain_winograd2_output_gradient_lanes16_avx2(const float *dy, const dtrain_winograd_tiles *tiles, float *dm);

#endif
