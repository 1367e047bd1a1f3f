// dtrain_winograd2_{input,input_bf16,output,output_gradient} for one instruction set (see
// dtrain_winograd.h); included by kernels_<set>.c after vector.h and operand.h. As
// templates/winograd_f4.h, for 2×2 output tiles from 4×4 input patches (16 positions);
// winograd_f2_block.h holds the one-dimensional transforms and, through winograd_block.h, the
// per-block code, included once per vector width, and
// winograd_passes.h the walk over tiles that both sizes share.
//
// The arithmetic is that of DTrainNN's WinogradKernel F(2×2) transforms (the portable Swift path,
// which the tests compare these with bit for bit): the same operations in the same order, none
// fused.
#pragma clang fp contract(off)

#include "winograd_tiles.h"

#define WINOGRAD_M 2
#define WG(name) DTRAIN_CONCAT(winograd2, name)
#define PER_WIDTH_FILE "winograd_f2_block.h"
#include "per_width.h"

#define WG_EXPORT(name) DTRAIN_CONCAT(dtrain_winograd2, name)
#include "winograd_passes.h"
