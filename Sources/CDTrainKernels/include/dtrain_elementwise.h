#ifndef DTRAIN_ELEMENTWISE_H
#define DTRAIN_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

// The elementwise passes of a residual block. Each kernel set has its variant of each, in its
// `dtrain_kernel_table` (dtrain_kernel_table.h). Every variant computes the same values bit for
// bit. A ReLU keeps NaN and gives +0 for −0, as max(v, 0) in Swift and torch.relu.

/// y[i] = a[i] + b[i] for i < n (y may be a or b).
typedef void dtrain_add_fn(const float *a, const float *b, float *y, intptr_t n);

/// y[i] = relu(a[i] + b[i]) for i < n; with `bits` non-NULL, bit j of bits[k] set where element
/// 8k + j of the sum was > 0 (a residual block's ReLU mask, 1/32 of the output's memory), whole
/// bytes written (the last one's unused bits 0).
typedef void dtrain_add_relu_fn(const float *a, const float *b, float *y, uint8_t *bits, intptr_t n);

/// dx[i] = dy[i] where the ReLU passed element i, else 0, for i < n: passed when its bit in
/// `bits` is set, or without bits (NULL) when y[i] > 0.
typedef void dtrain_relu_backward_fn(const float *dy, const float *y, const uint8_t *bits, float *dx, intptr_t n);

#endif
