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

/// An elementwise clamp to [0, upper]: the shared body of ReLU and ReLU6.
public class ClampActivation: Layer {
    public let upper: Float
    private let name: String
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastOutput: Tensor?

    init(upper: Float, name: String) {
        self.upper = upper
        self.name = name
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        lastOutput = nil
        return input
    }

    // x: [N, H, W, C] → y = clamp(x, 0, upper): [N, H, W, C]
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == output.shape, "\(name) built for \(output.shape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        clampForward(x, into: y, upper: upper)
        lastOutput = y
        return y
    }

    // dy: [N, H, W, C] → dx = dy where 0 < y < upper, else 0
    public func backward(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        guard let y = lastOutput else { preconditionFailure("\(name).backward before forward") }
        precondition(dy.batch == y.batch && dy.shape == y.shape, "\(name).backward: dy \(dy.batch)x\(dy.shape) for output \(y.batch)x\(y.shape)")
        let dx = inputGradient.tensor(batch: dy.batch)
        clampBackward(dy, output: y, into: dx, upper: upper)
        return dx
    }
}

/// max(x, 0).
public final class ReLU: ClampActivation {
    public init() { super.init(upper: .infinity, name: "ReLU") }
}

/// min(max(x, 0), 6).
public final class ReLU6: ClampActivation {
    public init() { super.init(upper: 6, name: "ReLU6") }
}
