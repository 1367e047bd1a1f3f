#ifndef DTRAIN_KERNELS_H
#define DTRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// The bf16 GEMM (its own header; included here so that a module built before it existed is rebuilt).
#include "dtrain_bf16.h"
// The Winograd F(4×4, 3×3) tile transforms.
#include "dtrain_winograd.h"
// The BatchNorm passes.
#include "dtrain_batch_norm.h"
// A residual block's elementwise passes.
#include "dtrain_elementwise.h"
// The direct grouped and depthwise convolution passes.
#include "dtrain_grouped_conv.h"
// The optimizers' update passes.
#include "dtrain_optimizer.h"

// Kernels with one variant per instruction set, named by suffix: _avx2 (eight-lane AVX2 + FMA)
// and _avx512 (sixteen-lane AVX-512 F/BW/VL). Each variant is the same source text
// (templates/), compiled with that set's function-level target attribute, so a binary holds all
// of them and the caller picks one at run time (DTrainCore's `KernelSet`). A variant may only be
// called on a CPU that has its extensions (`dtrain_cpu_has`).

/// c (m × n, ldc) = A · b (+ c when `accumulate`), where A's element (i, p) is at
/// a[i·row_step + p·depth_step] (row_step = lda, depth_step = 1 for a plain row-major A; row_step
/// = 1, depth_step = lda for Aᵀ of a k × m matrix) and b is k × n (ldb). `n` must be a multiple of
/// 8; only the first n columns of each row of c are written. Register-blocked for the thin
/// products of Winograd convolutions (blocks of 4 rows × 2 vectors).
void dtrain_small_gemm_avx2(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                            intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                            int accumulate);
void dtrain_small_gemm_avx512(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                              intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                              int accumulate);
/// The sixteen-lane source of dtrain_small_gemm_avx512 compiled for AVX2, for tests on CPUs
/// without AVX-512.
void dtrain_small_gemm_lanes16_avx2(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                                    intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                                    int accumulate);

#endif
