import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights
import DTrainData
import DTrainDistributed

/// A checkpoint to resume from, read and verified but not yet applied.
struct ResumedCheckpoint {
    let file: SafeTensorsFile
    let info: CheckpointInfo
    let path: String
}

/// How each part of a run is made from its plan (`TrainingComponents` puts them together in order).
enum TrainingSetup {
    /// The checkpoint `--resume` names (the run directory's last one when given as empty), or nil.
    static func resumedCheckpoint(_ config: TrainConfig, run: RunDirectory) throws -> ResumedCheckpoint? {
        guard let resume = config.resume else { return nil }
        let url = resume.isEmpty ? run.last : URL(fileURLWithPath: resume)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TrainingError("--resume \(MessageText.path(url.path)): no such checkpoint")
        }
        let (file, info) = try Checkpoint.read(url)
        return ResumedCheckpoint(file: file, info: info, path: url.path)
    }

    /// The model, initialised from the seed; then pretrained weights (a resumed run has them in its
    /// checkpoint) and the frozen part, before it is built (backward stops at the first layer that
    /// trains); then built for the batch, with synchronized BatchNorm when asked and several ranks,
    /// and refused when a training BatchNorm would see one value per channel. Also returns what
    /// --pretrained and --freeze did, one line each.
    static func model(_ plan: TrainingPlan, resuming: Bool, communicator: Communicator) throws -> (Model, [String]) {
        let config = plan.config
        let model = try ModelZoo.make(config.model, options: plan.modelOptions)
        model.initialize(seed: config.seed)
        var lines: [String] = []
        if let path = config.pretrained {
            if resuming {
                lines.append("pretrained \(path): not loaded, the weights come from the resumed checkpoint")
            } else {
                lines += try Pretrained.load(path, into: model, seed: config.seed).lines
            }
        }
        if let line = try config.freeze.apply(to: model) { lines.append(line) }
        try config.precision.check(emulated: config.bf16Emulated)
        model.build(batch: config.batchSize, resolution: plan.resolution, seed: config.seed, kernels: try config.kernels.resolve(),
                    precision: config.precision)
        if config.syncBN && communicator.size > 1 { model.synchronizeBatchNorm(over: communicator) }
        try BatchNormBatchCheck.check(model, plan: plan, synchronizedRanks: config.syncBN ? communicator.size : 1)
        return (model, lines)
    }

    /// SGD or AdamW over the model's parameters, each with its weight decay
    /// (`TrainConfig.weightDecay(for:)`: --norm-weight-decay, --bias-weight-decay,
    /// --no-bn-weight-decay), with the head's rate scaled by --head-lr-mult.
    static func optimizer(_ config: TrainConfig, model: Model) -> Optimizer {
        let decayFor: (Parameter) -> Float = { p in Float(config.weightDecay(for: p.role)) }
        let optimizer: Optimizer
        switch config.optimizer {
        case .sgd: optimizer = SGD(store: model.store, momentum: Float(config.momentum), nesterov: config.nesterov,
                                         kernels: model.builtKernels, decayFor: decayFor)
        case .adamw: optimizer = AdamW(store: model.store, kernels: model.builtKernels, decayFor: decayFor)
        }
        if let mult = config.headLRMultiplier {
            let head = model.headEntries.compactMap { if case .parameter(let p) = $0.kind { return p } else { return nil } }
            if let first = head.map(\.offset).min(), let end = head.map({ $0.offset + $0.count }).max() {
                optimizer.learningRateScales.set(Float(mult), on: first..<end)
            }
        }
        return optimizer
    }

    /// The training loader of this rank; unreadable samples are reported by rank 0, which also
    /// warns (once) when the training data has a single class.
    static func trainLoader(_ plan: TrainingPlan, source: DataSource, workers: Int, rank: Int, progress: ProgressReporter) -> BatchLoader {
        let config = plan.config
        let loader = BatchLoader(source: source, transform: plan.trainTransform, batchSize: config.batchSize, resolution: plan.resolution,
                                 workers: workers, seed: config.seed, rank: rank, dropLastPartial: config.dropLast)
        let isRoot = rank == 0
        if isRoot, let warning = oneClassWarning(source) { progress.message(warning) }
        loader.warningHandler = { message in if isRoot { progress.message("warning: \(message)") } }
        return loader
    }

    /// The warning for training data with a single class (the loss can only reach zero by
    /// predicting that class, so the run learns nothing), or nil.
    static func oneClassWarning(_ source: DataSource) -> String? {
        guard source.classNames.count == 1 else { return nil }
        return "warning: the training data has only one class (\(MessageText.path(source.classNames[0]))); "
            + "a classifier needs at least two, so this run cannot learn anything useful"
    }

    /// All layers of type `T`, depth first.
    static func layers<T: Layer>(of type: T.Type, in model: Model) -> [T] {
        var found: [T] = []
        model.visitLayers { if let l = $0 as? T { found.append(l) } }
        return found
    }
}
