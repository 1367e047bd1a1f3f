#ifndef DTRAIN_KERNELS_H
#define DTRAIN_KERNELS_H

// CDTrainKernels: the hot kernels with one variant per instruction set.

// The bf16 GEMM (its own variants, one of them for AVX512_BF16).
#include "dtrain_bf16.h"
// The table of every other kernel, per instruction set, and (through it) the kernels' headers:
// the small GEMM, the Winograd transforms, the BatchNorm passes, a residual block's elementwise
// passes, the direct grouped and depthwise convolution passes, the optimizers' updates.
#include "dtrain_kernel_table.h"

#endif
