// This file's instruction set's dtrain_kernel_table (dtrain_kernel_table.h): dtrain_kernels_avx2,
// dtrain_kernels_avx512, dtrain_kernels_lanes16_avx2. Included by kernels_<set>.c after every
// kernel template.

const dtrain_kernel_table KERNEL(dtrain_kernels) = {
    .small_gemm = KERNEL(dtrain_small_gemm),

    .add = KERNEL(dtrain_add),
    .add_relu = KERNEL(dtrain_add_relu),
    .relu_backward = KERNEL(dtrain_relu_backward),

    .bn_sums = KERNEL(dtrain_bn_sums),
    .bn_normalize = KERNEL(dtrain_bn_normalize),
    .bn_gradient_sums = KERNEL(dtrain_bn_gradient_sums),
    .bn_input_gradient = KERNEL(dtrain_bn_input_gradient),

    .winograd4 = {
        .input = KERNEL(dtrain_winograd4_input),
        .input_bf16 = KERNEL(dtrain_winograd4_input_bf16),
        .output = KERNEL(dtrain_winograd4_output),
        .output_gradient = KERNEL(dtrain_winograd4_output_gradient),
    },
    .winograd2 = {
        .input = KERNEL(dtrain_winograd2_input),
        .input_bf16 = KERNEL(dtrain_winograd2_input_bf16),
        .output = KERNEL(dtrain_winograd2_output),
        .output_gradient = KERNEL(dtrain_winograd2_output_gradient),
    },

    .grouped_conv_pass = KERNEL(dtrain_grouped_conv_pass),
    .grouped_conv_weight_pass = KERNEL(dtrain_grouped_conv_weight_pass),
    .depthwise_conv_pass = KERNEL(dtrain_depthwise_conv_pass),
    .depthwise_conv_weight_pass = KERNEL(dtrain_depthwise_conv_weight_pass),

    .sgd_step = KERNEL(dtrain_sgd_step),
    .adamw_step = KERNEL(dtrain_adamw_step),
};
