import Foundation
import DTrainCore
import DTrainNN

extension TrainingPlan {
    /// The smallest training batch a rank runs: the batch size, or the last partial batch of an
    /// epoch (every rank has the same, as shards are padded to equal length; a resumed epoch keeps
    /// its batch boundaries). With --drop-last, or when --limit-train-batches stops before the
    /// last batch, every batch is full.
    public var smallestTrainBatch: Int {
        let batch = config.batchSize
        let shard = samplesPerRank
        let samples = config.overfitBatches.map { min(shard, $0 * batch) } ?? shard
        let steps = TrainingPlan.batches(samples, config)
        guard steps > 0 else { return batch }
        if let limit = config.limitTrainBatches, limit < steps { return batch }
        return min(batch, samples - (steps - 1) * batch)
    }
}

/// BatchNorm in training estimates each channel's variance from the batch: with a single value
/// per channel (one image reaching a 1×1 map) there is none to estimate, and torch refuses with
/// "Expected more than 1 value per channel when training". dtrain refuses at start, naming the
/// layer and what to change, instead of stopping mid-epoch.
enum BatchNormBatchCheck {
    /// Throws a `TrainingError` when a BatchNorm of `model` (built for the plan's resolution) that
    /// trains would see one value per channel in some training batch of `plan`. `synchronizedRanks`
    /// is the number of ranks whose batches a synchronized BatchNorm normalises together (1 when
    /// BatchNorm is not synchronized).
    static func check(_ model: Model, plan: TrainingPlan, synchronizedRanks: Int) throws {
        let smallest = plan.smallestTrainBatch
        var layers: [BatchNorm2d] = []
        model.visitLayers { if let bn = $0 as? BatchNorm2d, !bn.frozenStatistics { layers.append(bn) } }
        for bn in layers {
            guard let shape = bn.builtInputShape else { continue }
            let values = smallest * shape.height * shape.width * max(1, synchronizedRanks)
            guard values <= 1 else { continue }
            let batch = plan.config.batchSize
            let which = smallest < batch
                ? "the last training batch of each epoch holds 1 image (\(plan.samplesPerRank) samples per rank in batches of \(batch))"
                : "a training batch of 1 image"
            var fixes: [String] = []
            if smallest < batch { fixes.append("--drop-last") }
            if batch == 1 { fixes.append("--batch-size 2 or more") }
            fixes.append("a --resolution above \(plan.resolution)")
            throw TrainingError("BatchNorm \(name(of: bn, in: model)) sees a \(shape.height)×\(shape.width) map at resolution \(plan.resolution), "
                                + "and \(which) gives it one value per channel, from which no variance can be estimated in training; "
                                + "use " + fixes.joined(separator: ", or "))
        }
    }

    /// The layer's torch name ("layer4.1.bn2"), from its weight's state entry.
    static func name(of bn: BatchNorm2d, in model: Model) -> String {
        for entry in model.state {
            if case .parameter(let p) = entry.kind, p === bn.weight { return String(entry.name.dropLast(".weight".count)) }
        }
        return "BatchNorm2d(\(bn.channels))"
    }
}
