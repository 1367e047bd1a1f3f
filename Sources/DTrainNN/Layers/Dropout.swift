import DTrainCore

/// Zeroes each element with probability p in train mode and scales the rest by 1/(1−p), as
/// torch.nn.Dropout; the identity in eval mode.
///
/// The mask is a function of the build seed, `step`, `key` and the sample index, so repeated
/// forwards at the same `step` draw the same mask (recomputation, gradient checks) and the result
/// does not depend on the thread count. The trainer advances `step` once per training step.
public final class Dropout: Layer {
    public let p: Float
    /// The training step the next mask is drawn for.
    public var step: UInt64 = 0
    /// Distinguishes Dropout layers of one model built with the same seed (otherwise layers of the
    /// same shape would draw the same masks); model builders give each a different key.
    public var key: UInt64 = 0

    private var seed: UInt64 = 0
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    /// Per element, 0 or 1/(1−p) for the last train-mode forward (kept only for backward).
    private var mask: ActivationBuffer?
    private var lastMode: Mode = .eval
    private var lastBatch = -1

    public init(p: Float) {
        precondition(p >= 0 && p <= 1, "Dropout probability \(p) must lie in [0, 1]")
        self.p = p
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        seed = context.seed
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        mask = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        lastBatch = -1
        return input
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.elementwise) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == output.shape, "Dropout built for \(output.shape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let px = x.data, py = y.data
        if mode == .train {
            let features = x.shape.count, pm = mask?.storage.pointer
            let drop = Double(p), keep: Float = p >= 1 ? 0 : 1 / (1 - p)
            let seed = self.seed, step = self.step, key = self.key
            parallelFor(x.batch) { r in
                for n in r {
                    var rng = SeededRandom(keys: seed, step, key, UInt64(n))
                    let src = px + n * features, dst = py + n * features
                    for i in 0..<features {
                        let scale: Float = rng.uniform() < drop ? 0 : keep
                        pm?[n * features + i] = scale
                        dst[i] = src[i] * scale
                    }
                }
            }
        } else {
            parallelFor(y.count, minChunk: 16384) { r in
                (py + r.lowerBound).update(from: px + r.lowerBound, count: r.count)
            }
        }
        lastMode = mode
        lastBatch = x.batch
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.elementwise) { backwardPass(dy) }
    }

    private func backwardPass(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        precondition(dy.batch == lastBatch && dy.shape == output.shape, "Dropout.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let dx = inputGradient.tensor(batch: dy.batch)
        let pdx = dx.data, pdy = dy.data
        if lastMode == .train, let mask {
            let pm = mask.storage.pointer
            parallelFor(dx.count, minChunk: 16384) { r in for i in r { pdx[i] = pdy[i] * pm[i] } }
        } else {
            parallelFor(dx.count, minChunk: 16384) { r in
                (pdx + r.lowerBound).update(from: pdy + r.lowerBound, count: r.count)
            }
        }
        return dx
    }
}
