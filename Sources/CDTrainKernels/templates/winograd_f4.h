// dtrain_winograd4_{input,input_bf16,output,output_gradient} for one instruction set (see
// dtrain_winograd.h); included by kernels_<set>.c after vector.h, last.
//
// Channels go across the lanes: a tile's 36 values of one block of channels are whole
// vectors, so the transforms are additions and multiplications by constants, lane by lane. Blocks
// of LANES channels first and, in the sixteen-lane variants, a last block of eight (the channel
// count is a multiple of 8). winograd_f4_block.h holds the one-dimensional transforms and, through
// winograd_block.h (shared with F(2×2)), the per-block code, included once per vector width;
// winograd_passes.h walks the tiles, as it does for F(2×2).
//
// The arithmetic is that of DTrainNN's WinogradKernel (the portable Swift path, which the tests
// compare these with bit for bit): the same operations in the same order, fused multiply-adds
// where it fuses them and nowhere else.
#pragma clang fp contract(off)

#include "winograd_tiles.h"

#define WINOGRAD_M 4
#define WG(name) DTRAIN_CONCAT(winograd4, name)
#define PER_WIDTH_FILE "winograd_f4_block.h"
#include "per_width.h"

#define WG_EXPORT(name) DTRAIN_CONCAT(dtrain_winograd4, name)
#include "winograd_passes.h"
