import CDTrainKernels
import DTrainCore

/// CDTrainKernels' direct grouped and depthwise convolution passes (dtrain_grouped_conv.h) in one
/// kernel set's variant (its `table`). Every variant computes the same values bit for bit; the set only decides
/// the vector width (and how many narrow groups share a vector).
struct GroupedConvPasses {
    let kernels: KernelSet

    /// For `count` pixels (pointers advancing by their steps) and every group g:
    /// out[g·outWidth + b] += Σ_a in[g·inWidth + a] · m[a·stride + g·outWidth + b].
    @inline(__always)
    func grouped(_ count: Int, _ input: UnsafePointer<Float>, _ inStep: Int, _ output: UnsafeMutablePointer<Float>,
                 _ outStep: Int, groups: Int, inWidth: Int, outWidth: Int, matrix: UnsafePointer<Float>, stride: Int) {
        kernels.table.grouped_conv_pass(count, input, inStep, output, outStep, groups, inWidth, outWidth, matrix, stride)
    }

    /// partial[j·stride + g·inWidth + i] += Σ_pixels x[g·inWidth + i] · dy[g·outWidth + j].
    @inline(__always)
    func groupedWeight(_ count: Int, _ x: UnsafePointer<Float>, _ xStep: Int, _ dy: UnsafePointer<Float>, _ dyStep: Int,
                       groups: Int, inWidth: Int, outWidth: Int, partial: UnsafeMutablePointer<Float>, stride: Int) {
        kernels.table.grouped_conv_weight_pass(count, x, xStep, dy, dyStep, groups, inWidth, outWidth, partial, stride)
    }

    /// For `count` pixels: out[c] = fma(in[c], w[c], out[c]) for every channel c < channels.
    @inline(__always)
    func depthwise(_ count: Int, _ input: UnsafePointer<Float>, _ inStep: Int, _ output: UnsafeMutablePointer<Float>,
                   _ outStep: Int, weights: UnsafePointer<Float>, channels: Int) {
        kernels.table.depthwise_conv_pass(count, input, inStep, output, outStep, weights, channels)
    }

    /// partial[c] += Σ_pixels x[c] · dy[c] for every channel c < channels.
    @inline(__always)
    func depthwiseWeight(_ count: Int, _ x: UnsafePointer<Float>, _ xStep: Int, _ dy: UnsafePointer<Float>, _ dyStep: Int,
                         partial: UnsafeMutablePointer<Float>, channels: Int) {
        kernels.table.depthwise_conv_weight_pass(count, x, xStep, dy, dyStep, partial, channels)
    }
}
