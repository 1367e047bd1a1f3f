import DTrainCore

/// Elementwise clamp to [0, upper] (upper = +∞ for ReLU, 6 for ReLU6). Backward passes dy where the
/// output lies strictly inside the range, as torch's threshold and hardtanh backward do.
@inline(__always)
private func clampForward(_ x: Tensor, into y: Tensor, upper: Float) {
    let px = x.data, py = y.data
    Profiler.measure(.elementwise) {
        parallelFor(y.count, minChunk: 16384) { r in
            if upper == .infinity { for i in r { py[i] = max(px[i], 0) } }
            else { for i in r { py[i] = min(max(px[i], 0), upper) } }
        }
    }
}

@inline(__always)
private func clampBackward(_ dy: Tensor, output y: Tensor, into dx: Tensor, upper: Float) {
    let pdy = dy.data, py = y.data, pdx = dx.data
    Profiler.measure(.elementwise) {
        parallelFor(dx.count, minChunk: 16384) { r in
            if upper == .infinity { for i in r { pdx[i] = py[i] > 0 ? pdy[i] : 0 } }
            else { for i in r { pdx[i] = py[i] > 0 && py[i] < upper ? pdy[i] : 0 } }
        }
    }
}

/// max(x, 0).
public final class ReLU: Layer {
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastOutput: Tensor?

    public init() {}

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        lastOutput = nil
        return input
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == output.shape, "ReLU built for \(output.shape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        clampForward(x, into: y, upper: .infinity)
        lastOutput = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        guard let y = lastOutput else { preconditionFailure("ReLU.backward before forward") }
        precondition(dy.batch == y.batch && dy.shape == y.shape, "ReLU.backward: dy \(dy.batch)x\(dy.shape) for output \(y.batch)x\(y.shape)")
        let dx = inputGradient.tensor(batch: dy.batch)
        clampBackward(dy, output: y, into: dx, upper: .infinity)
        return dx
    }
}

/// min(max(x, 0), 6).
public final class ReLU6: Layer {
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastOutput: Tensor?

    public init() {}

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        lastOutput = nil
        return input
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == output.shape, "ReLU6 built for \(output.shape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        clampForward(x, into: y, upper: 6)
        lastOutput = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        guard let y = lastOutput else { preconditionFailure("ReLU6.backward before forward") }
        precondition(dy.batch == y.batch && dy.shape == y.shape, "ReLU6.backward: dy \(dy.batch)x\(dy.shape) for output \(y.batch)x\(y.shape)")
        let dx = inputGradient.tensor(batch: dy.batch)
        clampBackward(dy, output: y, into: dx, upper: 6)
        return dx
    }
}
