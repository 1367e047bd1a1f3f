// CDTrainKernels' templated kernels for AVX2 + FMA, eight lanes (suffix _avx2), and their table,
// dtrain_kernels_avx2 (templates/kernel_table.h): the small GEMM (templates/small_gemm.h), the
// bf16 GEMM with products emulated by fused multiply-adds (templates/gemm_bf16.h), a residual
// block's elementwise passes (templates/elementwise.h), then the kernels that read activations in
// any of their forms (templates/operand.h): the BatchNorm passes (templates/batch_norm.h) and the
// Winograd transforms (templates/winograd_f4.h, winograd_f2.h). Those come after the others: they
// switch off the contraction of multiply-adds for the rest of the file. Then the grouped
// convolution passes and the optimizers' updates, which also write out each multiply-add they fuse.
#include "dtrain_kernels.h"

#include <string.h>

#define LANES 8
#define SUFFIX avx2
#define ROWS DTRAIN_GEMM_BF16_ROWS_AVX2
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/small_gemm.h"
#include "templates/gemm_bf16.h"
#include "templates/elementwise.h"
#include "templates/operand.h"
#include "templates/batch_norm.h"
#include "templates/winograd_f4.h"
#include "templates/winograd_f2.h"
#include "templates/grouped_conv.h"
#include "templates/optimizer.h"
#include "templates/kernel_table.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif
