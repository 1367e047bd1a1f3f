import DTrainCore

/// Max pooling over square windows, as torch.nn.MaxPool2d (no dilation, floor output size):
/// padding counts as −∞, and the first maximum in window scan order (row by row) wins ties, a NaN
/// taking precedence as in torch. The position of each maximum is kept for backward.
public final class MaxPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    /// For every output element, the input position (h·W + w) of its maximum.
    private var argmax: ScratchBuffer<Int32>!
    private var lastBatch = -1

    public init(kernelSize: Int, stride: Int, padding: Int = 0) {
        precondition(kernelSize > 0 && stride > 0 && padding >= 0, "MaxPool2d: invalid kernel \(kernelSize), stride \(stride), padding \(padding)")
        precondition(padding <= kernelSize / 2, "MaxPool2d: padding \(padding) must be at most half the kernel \(kernelSize)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        let oh = (input.height + 2 * padding - kernelSize) / stride + 1
        let ow = (input.width + 2 * padding - kernelSize) / stride + 1
        precondition(input.height + 2 * padding >= kernelSize && input.width + 2 * padding >= kernelSize,
                     "MaxPool2d(\(kernelSize)) input \(input) is smaller than the kernel")
        precondition(input.height * input.width <= Int(Int32.max), "MaxPool2d: input plane too large")
        let out = FeatureShape(height: oh, width: ow, channels: input.channels)
        inputShape = input
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        argmax = inputNeedsGradient ? ScratchBuffer(count: out.count * maxBatch, fill: 0) : nil
        lastBatch = -1
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.pooling) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == inputShape, "MaxPool2d built for \(inputShape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let H = x.height, W = x.width, C = x.channels, OH = y.height, OW = y.width
        let k = kernelSize, s = stride, p = padding
        let px = x.data, py = y.data
        let pidx = argmax?.pointer
        parallelFor(x.batch * OH) { r in
            for unit in r {
                let n = unit / OH, oh = unit % OH
                let h0 = max(oh * s - p, 0), h1 = min(oh * s - p + k, H)
                for ow in 0..<OW {
                    let w0 = max(ow * s - p, 0), w1 = min(ow * s - p + k, W)
                    let o = ((n * OH + oh) * OW + ow) * C
                    let first = Int32(h0 * W + w0)
                    // Eight channels at a time in registers, then the remainder one by one.
                    var c0 = 0
                    while c0 + 8 <= C {
                        var best = SIMD8<Float>(repeating: -.infinity)
                        var index = SIMD8<Int32>(repeating: first)
                        for h in h0..<h1 {
                            for w in w0..<w1 {
                                let v = UnsafeRawPointer(px + ((n * H + h) * W + w) * C + c0).loadUnaligned(as: SIMD8<Float>.self)
                                let take = (v .> best) .| (v .!= v)
                                best.replace(with: v, where: take)
                                index.replace(with: Int32(h * W + w), where: take)
                            }
                        }
                        UnsafeMutableRawPointer(py + o + c0).storeBytes(of: best, as: SIMD8<Float>.self)
                        if let pidx { UnsafeMutableRawPointer(pidx + o + c0).storeBytes(of: index, as: SIMD8<Int32>.self) }
                        c0 += 8
                    }
                    for c in c0..<C {
                        var best = -Float.infinity, index = first
                        for h in h0..<h1 {
                            for w in w0..<w1 {
                                let v = px[((n * H + h) * W + w) * C + c]
                                if v > best || v.isNaN { best = v; index = Int32(h * W + w) }
                            }
                        }
                        py[o + c] = best
                        pidx?[o + c] = index
                    }
                }
            }
        }
        lastBatch = x.batch
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.pooling) { backwardPass(dy) }
    }

    private func backwardPass(_ dy: Tensor) -> Tensor {
        guard let inputGradient, let argmax else { return noGradient }
        precondition(dy.batch == lastBatch && dy.shape == output.shape, "MaxPool2d.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let dx = inputGradient.tensor(batch: dy.batch)
        let plane = inputShape.height * inputShape.width, C = inputShape.channels
        let outPlane = dy.height * dy.width
        let pdx = dx.data, pdy = dy.data, pidx = argmax.pointer
        parallelSamples(dy.batch, channels: C) { n, cr in
            let base = pdx + n * plane * C
            for i in 0..<plane { for c in cr { base[i * C + c] = 0 } }
            for o in 0..<outPlane {
                let e = (n * outPlane + o) * C
                for c in cr { base[Int(pidx[e + c]) * C + c] += pdy[e + c] }
            }
        }
        return dx
    }
}
