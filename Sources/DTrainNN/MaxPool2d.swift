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
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        argmax = inputNeedsGradient ? ScratchBuffer(count: out.count * maxBatch, fill: 0) : nil
        lastBatch = -1
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
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
                    let best = py + o
                    let first = Int32(h0 * W + w0)
                    for c in 0..<C { best[c] = -.infinity }
                    if let pidx { for c in 0..<C { pidx[o + c] = first } }
                    for h in h0..<h1 {
                        for w in w0..<w1 {
                            let src = px + ((n * H + h) * W + w) * C
                            let position = Int32(h * W + w)
                            if let pidx {
                                let idx = pidx + o
                                for c in 0..<C {
                                    let v = src[c]
                                    if v > best[c] || v.isNaN { best[c] = v; idx[c] = position }
                                }
                            } else {
                                for c in 0..<C {
                                    let v = src[c]
                                    if v > best[c] || v.isNaN { best[c] = v }
                                }
                            }
                        }
                    }
                }
            }
        }
        lastBatch = x.batch
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
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
