#ifndef DTRAIN_GROUPED_CONV_H
#define DTRAIN_GROUPED_CONV_H

#include <stddef.h>
#include <stdint.h>

// The inner passes of the direct grouped and depthwise convolutions (DTrainNN's GroupedConvKernel
// walks the taps and calls them). Each kernel set has its variant of each, in its
// `dtrain_kernel_table` (dtrain_kernel_table.h).
//
// A pass covers `count` pixels, its pointers advancing by their steps (in floats) from pixel to
// pixel. Every variant computes the same values bit for bit: each output element is one chain of
// fused multiply-adds in a fixed order, whatever the vector width. A grouped pass's sum over a
// group's inputs starts with the first product, rounded, and adds the rest fused in order a =
// 1, 2, …; the sum is then added to the output. A weight pass's sums start at 0 and add each
// pixel's product fused, pixel by pixel, and are then added to the partial.

/// For each pixel and every group g < groups, output b < out_width of the group:
/// out[g·out_width + b] += Σ_a in[g·in_width + a] · m[a·m_stride + g·out_width + b] (a < in_width).
/// in_width and out_width are multiples of 4.
typedef void dtrain_grouped_conv_pass_fn(intptr_t count, const float *in, intptr_t in_step, float *out,
                                         intptr_t out_step, intptr_t groups, intptr_t in_width, intptr_t out_width,
                                         const float *m, intptr_t m_stride);

/// A grouped convolution's weight gradient over the pixels: for every group g, output j <
/// out_width and input i < in_width of the group,
/// partial[j·partial_stride + g·in_width + i] += Σ_pixels x[g·in_width + i] · dy[g·out_width + j].
/// in_width and out_width are multiples of 4.
typedef void dtrain_grouped_conv_weight_pass_fn(intptr_t count, const float *x, intptr_t x_step, const float *dy,
                                                intptr_t dy_step, intptr_t groups, intptr_t in_width,
                                                intptr_t out_width, float *partial, intptr_t partial_stride);

/// For each pixel: out[c] = fma(in[c], w[c], out[c]) for every channel c < channels.
typedef void dtrain_depthwise_conv_pass_fn(intptr_t count, const float *in, intptr_t in_step, float *out,
                                           intptr_t out_step, const float *w, intptr_t channels);

/// A depthwise convolution's weight gradient over the pixels: partial[c] += Σ_pixels x[c] · dy[c].
typedef void dtrain_depthwise_conv_weight_pass_fn(intptr_t count, const float *x, intptr_t x_step, const float *dy,
                                                  intptr_t dy_step, float *partial, intptr_t channels);

#endif
