import CDTrainKernels
import DTrainCore
import DTrainNN

/// Stochastic gradient descent with momentum, Nesterov and weight decay, as torch.optim.SGD,
/// in one fused pass over a model's flat parameter buffer (CDTrainKernels' dtrain_sgd_step in the
/// model's kernel set; every set gives the same bits).
///
/// Per element: g = grad + wd·w; buf = momentum·buf + g (buf = g on the first step);
/// update = nesterov ? g + momentum·buf : buf; w -= lr·update.
public final class SGD: Optimizer {
    public var momentum: Float
    public var nesterov: Bool
    public let store: ParameterStore
    /// Momentum buffers, laid out as the store's flat values.
    public let momentumBuffer: Storage
    /// Weight decay per element (0 where a parameter is excluded from decay).
    private let decay: Storage
    public var steps = 0
    public var learningRateScales: LearningRateScales
    /// The kernel variant the update runs.
    public let kernels: KernelSet
    public var stateBuffers: [(name: String, storage: Storage)] { [("momentum_buffer", momentumBuffer)] }

    /// `decayFor` gives each parameter's weight decay (for example 0 for BatchNorm parameters).
    public init(store: ParameterStore, momentum: Float = 0.9, nesterov: Bool = false, kernels: KernelSet = .best,
                decayFor: (Parameter) -> Float) {
        self.store = store
        self.kernels = kernels
        self.momentum = momentum
        self.nesterov = nesterov
        momentumBuffer = Storage(count: store.count)
        decay = Storage(count: store.count)
        learningRateScales = LearningRateScales(count: store.count)
        for p in store.parameters {
            (decay.pointer + p.offset).update(repeating: p.trainable ? decayFor(p) : 0, count: p.count)
        }
    }

    public convenience init(store: ParameterStore, momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float,
                            kernels: KernelSet = .best) {
        self.init(store: store, momentum: momentum, nesterov: nesterov, kernels: kernels) { _ in weightDecay }
    }

    /// One update with learning rate `lr`.
    public func step(lr: Float) {
        Profiler.measure(.optimizer) { update(lr: lr) }
    }

    private func update(lr: Float) {
        let mu = momentum, first: Int32 = steps == 0 ? 1 : 0, nest: Int32 = nesterov ? 1 : 0
        let sgdStep = kernels.table.sgd_step!
        for segment in learningRateScales.segments {
            let lr = lr * segment.scale, base = segment.range.lowerBound
            let w = store.values.pointer + base, g = store.grads.pointer + base
            let buf = momentumBuffer.pointer + base, wd = decay.pointer + base
            parallelFor(segment.range.count, minChunk: 16384) { range in
                let i = range.lowerBound, n = range.count
                sgdStep(w + i, g + i, buf + i, wd + i, n, lr, mu, first, nest)
            }
        }
        steps += 1
    }
}
