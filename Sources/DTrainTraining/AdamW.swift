import CDTrainKernels
import Foundation
import DTrainCore
import DTrainNN

/// AdamW (decoupled weight decay), as torch.optim.AdamW, in one fused pass over the flat buffer:
/// w -= lr·wd·w; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// w -= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε). CDTrainKernels' dtrain_adamw_step, in the
/// model's kernel set (every set gives the same bits).
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
    /// The kernel variant the update runs.
    public let kernels: KernelSet

    public init(store: ParameterStore, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                kernels: KernelSet = .best, decayFor: (Parameter) -> Float) {
        self.store = store
        self.kernels = kernels
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
        let b1 = beta1, b2 = beta2, e = eps, adamWStep = kernels.table.adamw_step!
        let sqrtC2 = c2.squareRoot()
        for segment in learningRateScales.segments {
            let lr = lr * segment.scale, base = segment.range.lowerBound
            let w = store.values.pointer + base, g = store.grads.pointer + base
            let m = expAvg.pointer + base, v = expAvgSq.pointer + base, wd = decay.pointer + base
            parallelFor(segment.range.count, minChunk: 16384) { range in
                let i = range.lowerBound, n = range.count
                adamWStep(w + i, g + i, m + i, v + i, wd + i, n, lr, b1, b2, c1, sqrtC2, e)
            }
        }
    }
}
