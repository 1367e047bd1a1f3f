import DTrainCore

/// Elementwise clamp to [0, upper] (upper = +∞ for ReLU, 6 for ReLU6), eight lanes at a time.
/// NaN passes through, as torch's relu and hardtanh do.
@inline(__always)
private func clampForward(_ x: Tensor, into y: Tensor, upper: Float) {
    let px = UnsafePointer(x.data), py = y.data
    Profiler.measure(.elementwise) {
        if upper == .infinity {
            elementwise(y.count, vector: { i in store8(relu8(load8(px + i)), py + i) },
                        scalar: { i in py[i] = max(px[i], 0) })
        } else {
            let top = Float8(repeating: upper)
            elementwise(y.count, vector: { i in
                let v = relu8(load8(px + i))
                store8(v.replacing(with: top, where: v .> top), py + i)
            }, scalar: { i in py[i] = min(max(px[i], 0), upper) })
        }
    }
}

/// Backward passes dy where the output lies strictly inside the range, as torch's threshold and
/// hardtanh backward do.
@inline(__always)
private func clampBackward(_ dy: Tensor, output y: Tensor, into dx: Tensor, upper: Float) {
    let pdy = UnsafePointer(dy.data), py = UnsafePointer(y.data), pdx = dx.data
    Profiler.measure(.elementwise) {
        if upper == .infinity {
            elementwise(dx.count, vector: { i in
                store8(Float8.zero.replacing(with: load8(pdy + i), where: load8(py + i) .> 0), pdx + i)
            }, scalar: { i in pdx[i] = py[i] > 0 ? pdy[i] : 0 })
        } else {
            let top = Float8(repeating: upper)
            elementwise(dx.count, vector: { i in
                let v = load8(py + i)
                store8(Float8.zero.replacing(with: load8(pdy + i), where: (v .> 0) .& (v .< top)), pdx + i)
            }, scalar: { i in pdx[i] = py[i] > 0 && py[i] < upper ? pdy[i] : 0 })
        }
    }
}

/// An elementwise clamp to [0, upper]: the shared body of ReLU and ReLU6.
///
/// A `Sequential` that puts a ReLU or ReLU6 right after a `BatchNorm2d` has the BatchNorm apply it
/// (`BatchNorm2d.fusedActivation`); the activation then passes values and gradients through
/// unchanged and allocates no buffers.
public class ClampActivation: Layer {
    public let upper: Float
    private let name: String
    private var output: ActivationBuffer?
    private var inputGradient: ActivationBuffer?
    private var lastOutput: Tensor?
    /// Set by the container before build: the layer before applies this ReLU.
    var isFusedIntoPrevious = false
    private var passesGradient = true

    init(upper: Float, name: String) {
        self.upper = upper
        self.name = name
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        passesGradient = inputNeedsGradient
        lastOutput = nil
        if isFusedIntoPrevious {
            output = nil
            inputGradient = nil
            return input
        }
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        return input
    }

    // x: [N, H, W, C] → y = clamp(x, 0, upper): [N, H, W, C]
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        guard let output else {
            precondition(isFusedIntoPrevious, "\(name).forward before build")
            return x
        }
        precondition(x.shape == output.shape, "\(name) built for \(output.shape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        clampForward(x, into: y, upper: upper)
        lastOutput = y
        return y
    }

    /// Backward reads the output, which the layer keeps, not the input.
    public func readsInputInBackward(_ context: BuildContext) -> Bool { false }

    // dy: [N, H, W, C] → dx = dy where 0 < y < upper, else 0
    public func backward(_ dy: Tensor) -> Tensor {
        if isFusedIntoPrevious { return passesGradient ? dy : noGradient }
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
