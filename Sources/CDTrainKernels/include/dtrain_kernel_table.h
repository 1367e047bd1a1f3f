#ifndef DTRAIN_KERNEL_TABLE_H
#define DTRAIN_KERNEL_TABLE_H

#include "dtrain_batch_norm.h"
#include "dtrain_elementwise.h"
#include "dtrain_grouped_conv.h"
#include "dtrain_optimizer.h"
#include "dtrain_small_gemm.h"
#include "dtrain_winograd.h"

// Every kernel that has one variant per instruction set, as a table per set.
//
// Each variant is the same source text (templates/), compiled with its set's function-level target
// attribute (kernels_<set>.c), so one binary holds all of them. The caller picks a table at run
// time (DTrainCore's `KernelSet.table`) and calls through it: the choice of set is made once, in
// one place, instead of at every call. A table's kernels may only be called on a CPU that has its
// set's extensions (`dtrain_cpu_has`). The functions each field points to are documented where
// their types are declared (dtrain_<kernel>.h).

/// One instruction set's variant of every kernel.
typedef struct {
    dtrain_small_gemm_fn *small_gemm;

    dtrain_add_fn *add;
    dtrain_add_relu_fn *add_relu;
    dtrain_relu_backward_fn *relu_backward;

    dtrain_bn_sums_fn *bn_sums;
    dtrain_bn_normalize_fn *bn_normalize;
    dtrain_bn_gradient_sums_fn *bn_gradient_sums;
    dtrain_bn_input_gradient_fn *bn_input_gradient;

    /// F(4×4, 3×3) and F(2×2, 3×3).
    dtrain_winograd_transforms winograd4, winograd2;

    dtrain_grouped_conv_pass_fn *grouped_conv_pass;
    dtrain_grouped_conv_weight_pass_fn *grouped_conv_weight_pass;
    dtrain_depthwise_conv_pass_fn *depthwise_conv_pass;
    dtrain_depthwise_conv_weight_pass_fn *depthwise_conv_weight_pass;

    dtrain_sgd_step_fn *sgd_step;
    dtrain_adamw_step_fn *adamw_step;
} dtrain_kernel_table;

/// Eight lanes, AVX2 + FMA.
extern const dtrain_kernel_table dtrain_kernels_avx2;
/// Sixteen lanes, AVX-512 F/DQ/BW/VL.
extern const dtrain_kernel_table dtrain_kernels_avx512;
/// The sixteen-lane source of dtrain_kernels_avx512 compiled for AVX2, each vector a pair of
/// registers: only for tests, so CPUs without AVX-512 check the blocking, packing and edges that
/// the avx512 table runs.
extern const dtrain_kernel_table dtrain_kernels_lanes16_avx2;

#endif
