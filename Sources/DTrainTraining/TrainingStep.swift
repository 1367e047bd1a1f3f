import DTrainCore
import DTrainNN
import DTrainDistributed

/// One optimisation step: forward, loss, backward, gradient averaging across ranks, update. The
/// trainer, `dtrain bench` and the tests all train through it.
///
/// The step installs its synchronizer's ready hook on the model (`Model.onGradientsReady`), so an
/// overlapped allreduce starts communicating during backward whatever the model's root layer is.
///
/// With `accumulation` N > 1, gradients of N micro-batches are summed locally (each micro-batch's
/// loss gradient scaled by 1/N) and communicated once, as DDP's no_sync.
public final class TrainingStep {
    public let model: Model
    public let loss: SoftmaxCrossEntropy
    public let optimizer: Optimizer
    /// How gradients are averaged across ranks.
    public let gradients: GradientSynchronizer
    public let accumulation: Int
    /// Clips the averaged gradients before each update (`--clip-grad-norm`); nil: no clipping.
    public var gradientClipping: GradientClipping?
    private var microBatch = 0

    public init(model: Model, loss: SoftmaxCrossEntropy, optimizer: Optimizer, gradients: GradientSynchronizer, accumulation: Int = 1) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.gradients = gradients
        self.accumulation = max(1, accumulation)
        model.onGradientsReady = { [weak gradients] offset in gradients?.gradientsReady(from: offset) }
    }

    /// A step whose gradients stay local in a world of one and are otherwise averaged by an
    /// `OverlappedGradientAllreduce` on a duplicate of `communicator`, sending `allreduceDType`.
    /// Duplicating is a collective: every rank makes its step at the same point.
    public convenience init(model: Model, loss: SoftmaxCrossEntropy, optimizer: Optimizer, communicator: Communicator,
                            accumulation: Int = 1, allreduceDType: AllreduceDType = .fp32) throws {
        let gradients: GradientSynchronizer = communicator.size > 1
            ? try OverlappedGradientAllreduce(store: model.store, communicator: communicator, dtype: allreduceDType)
            : LocalGradients()
        self.init(model: model, loss: loss, optimizer: optimizer, gradients: gradients, accumulation: accumulation)
    }

    /// Seconds the last update waited for the gradient allreduce after backward (the part of
    /// communication not hidden behind it); 0 for one rank.
    public var lastWaitSeconds: Double { (gradients as? OverlappedGradientAllreduce)?.lastWaitSeconds ?? 0 }

    public struct Outcome {
        public var loss: Float
        public var correct: Int
        /// True when this call applied an optimizer update.
        public var updated: Bool
    }

    /// Trains on one (micro-)batch of images [N, R, R, 3] and N labels; applies the update after
    /// every `accumulation` calls. With `targets` (N rows of class probabilities: MixUp/CutMix),
    /// the loss is taken against them instead of the labels.
    public func run(images: Tensor, labels: UnsafeMutablePointer<Int32>, targets: UnsafePointer<Float>? = nil, lr: Float) throws -> Outcome {
        if microBatch == 0 { Profiler.measure(.optimizer) { model.store.zeroGrads() } }
        let logits = model.forward(images, mode: .train)
        let value = targets.map { loss.forward(logits: logits, targets: $0) } ?? loss.forward(logits: logits, labels: labels)
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
        gradientClipping?.clip()
        optimizer.step(lr: lr)
        return Outcome(loss: value, correct: correct, updated: true)
    }
}
