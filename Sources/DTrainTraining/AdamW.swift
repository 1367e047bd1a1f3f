import Foundation
import DTrainCore
import DTrainNN

/// AdamW (decoupled weight decay), as torch.optim.AdamW, in one fused pass over the flat buffer:
/// w -= lr·wd·w; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// w -= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε).
public final class AdamW: Optimizer {
    public let store: ParameterStore
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var steps = 0
    public var learningRateScales: LearningRateScales
    public let expAvg: Storage
    public let expAvgSq: Storage
    private let decay: Storage

    public init(store: ParameterStore, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                decayFor: (Parameter) -> Float) {
        self.store = store
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        expAvg = Storage(count: store.count)
        expAvgSq = Storage(count: store.count)
        decay = Storage(count: store.count)
        learningRateScales = LearningRateScales(count: store.count)
        for p in store.parameters {
            (decay.pointer + p.offset).update(repeating: p.trainable ? decayFor(p) : 0, count: p.count)
        }
    }

    public var stateBuffers: [(name: String, storage: Storage)] { [("exp_avg", expAvg), ("exp_avg_sq", expAvgSq)] }

    public func step(lr: Float) {
        Profiler.measure(.optimizer) { update(lr: lr) }
    }

    private func update(lr: Float) {
        steps += 1
        let t = Double(steps)
        let c1 = Float(1 - pow(Double(beta1), t)), c2 = Float(1 - pow(Double(beta2), t))
        let b1 = beta1, b2 = beta2, e = eps
        let sqrtC2 = c2.squareRoot()
        for segment in learningRateScales.segments {
            let lr = lr * segment.scale, base = segment.range.lowerBound
            let w = store.values.pointer + base, g = store.grads.pointer + base
            let m = expAvg.pointer + base, v = expAvgSq.pointer + base, wd = decay.pointer + base
            parallelFor(segment.range.count, minChunk: 16384) { range in
                for i in range {
                    let gi = g[i]
                    w[i] -= lr * wd[i] * w[i]
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    w[i] -= lr * (m[i] / c1) / (v[i].squareRoot() / sqrtC2 + e)
                }
            }
        }
    }
}
