import DTrainCore
import DTrainNN
import DTrainDistributed

/// One optimisation step: forward, loss, backward, gradient averaging across ranks, update.
///
/// With `accumulation` N > 1, gradients of N micro-batches are summed locally (each micro-batch's
/// loss gradient scaled by 1/N) and communicated once, as DDP's no_sync.
public final class TrainingStep {
    public let model: Model
    public let loss: SoftmaxCrossEntropy
    public let optimizer: Optimizer
    /// How gradients are averaged across ranks (set once before training starts).
    public var gradients: GradientSynchronizer
    public let accumulation: Int
    private var microBatch = 0

    public init(model: Model, loss: SoftmaxCrossEntropy, optimizer: Optimizer, gradients: GradientSynchronizer, accumulation: Int = 1) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.gradients = gradients
        self.accumulation = max(1, accumulation)
    }

    public struct Outcome {
        public var loss: Float
        public var correct: Int
        /// True when this call applied an optimizer update.
        public var updated: Bool
    }

    /// Trains on one (micro-)batch; applies the update after every `accumulation` calls.
    public func run(images: Tensor, labels: UnsafeMutablePointer<Int32>, lr: Float) throws -> Outcome {
        if microBatch == 0 { Profiler.measure(.optimizer) { model.store.zeroGrads() } }
        let logits = model.forward(images, mode: .train)
        let value = loss.forward(logits: logits, labels: labels)
        let correct = loss.correct(topK: 1)
        var dlogits = loss.backward()
        if accumulation > 1 {
            let scale = 1 / Float(accumulation), p = dlogits.data
            for i in 0..<dlogits.count { p[i] *= scale }
            dlogits = Tensor(data: p, batch: dlogits.batch, shape: dlogits.shape)
        }
        if microBatch + 1 == accumulation { gradients.beginBackward() }
        model.backward(dlogits)
        microBatch += 1
        guard microBatch == accumulation else { return Outcome(loss: value, correct: correct, updated: false) }
        microBatch = 0
        try gradients.synchronize()
        optimizer.step(lr: lr)
        return Outcome(loss: value, correct: correct, updated: true)
    }
}
