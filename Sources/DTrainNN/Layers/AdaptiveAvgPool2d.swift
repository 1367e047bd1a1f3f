import DTrainCore

/// Average pooling to a fixed square output size, as torch.nn.AdaptiveAvgPool2d: output cell i
/// averages input rows floor(i·H/O) ..< ceil((i+1)·H/O), and likewise for columns (bins may
/// overlap when O does not divide H).
public final class AdaptiveAvgPool2d: Layer {
    public let outputSize: Int

    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastBatch = -1

    public init(outputSize: Int) {
        precondition(outputSize > 0, "AdaptiveAvgPool2d needs a positive output size")
        self.outputSize = outputSize
    }

    @inline(__always)
    static func bin(_ i: Int, input: Int, output: Int) -> Range<Int> {
        (i * input / output)..<(((i + 1) * input + output - 1) / output)
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.height > 0 && input.width > 0, "AdaptiveAvgPool2d: empty input \(input)")
        let out = FeatureShape(height: outputSize, width: outputSize, channels: input.channels)
        inputShape = input
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        lastBatch = -1
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.pooling) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == inputShape, "AdaptiveAvgPool2d built for \(inputShape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let H = x.height, W = x.width, C = x.channels, O = outputSize
        let px = x.data, py = y.data
        parallelFor(x.batch * O) { r in
            for unit in r {
                let n = unit / O, i = unit % O
                let rows = AdaptiveAvgPool2d.bin(i, input: H, output: O)
                for j in 0..<O {
                    let cols = AdaptiveAvgPool2d.bin(j, input: W, output: O)
                    let dst = py + ((n * O + i) * O + j) * C
                    for c in 0..<C { dst[c] = 0 }
                    for h in rows {
                        for w in cols {
                            let src = px + ((n * H + h) * W + w) * C
                            for c in 0..<C { dst[c] += src[c] }
                        }
                    }
                    let inv = 1 / Float(rows.count * cols.count)
                    for c in 0..<C { dst[c] *= inv }
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
        guard let inputGradient else { return noGradient }
        precondition(dy.batch == lastBatch && dy.shape == output.shape, "AdaptiveAvgPool2d.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let dx = inputGradient.tensor(batch: dy.batch)
        let H = inputShape.height, W = inputShape.width, C = inputShape.channels, O = outputSize
        let pdx = dx.data, pdy = dy.data
        parallelSamples(dy.batch, channels: C) { n, cr in
            let base = pdx + n * H * W * C
            for i in 0..<(H * W) { for c in cr { base[i * C + c] = 0 } }
            for i in 0..<O {
                let rows = AdaptiveAvgPool2d.bin(i, input: H, output: O)
                for j in 0..<O {
                    let cols = AdaptiveAvgPool2d.bin(j, input: W, output: O)
                    let inv = 1 / Float(rows.count * cols.count)
                    let g = pdy + ((n * O + i) * O + j) * C
                    for h in rows {
                        for w in cols {
                            let dst = base + (h * W + w) * C
                            for c in cr { dst[c] += g[c] * inv }
                        }
                    }
                }
            }
        }
        return dx
    }
}
