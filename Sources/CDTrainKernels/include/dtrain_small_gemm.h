#ifndef DTRAIN_SMALL_GEMM_H
#define DTRAIN_SMALL_GEMM_H

#include <stddef.h>
#include <stdint.h>

/// c (m × n, ldc) = A · b (+ c when `accumulate`), where A's element (i, p) is at
/// a[i·row_step + p·depth_step] (row_step = lda, depth_step = 1 for a plain row-major A; row_step
/// = 1, depth_step = lda for Aᵀ of a k × m matrix) and b is k × n (ldb). `n` must be a multiple of
/// 8; only the first n columns of each row of c are written. Register-blocked for the thin
/// products of Winograd convolutions (blocks of 4 or 8 rows × 2 vectors). Each kernel set has its
/// variant, in its `dtrain_kernel_table` (dtrain_kernel_table.h).
typedef void dtrain_small_gemm_fn(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                                  intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                                  int accumulate);

#endif
