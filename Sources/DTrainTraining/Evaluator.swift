import Foundation
import DTrainCore
import DTrainNN
import DTrainData
import DTrainDistributed

/// Evaluates a model on a dataset split, sharded over the ranks so every sample counts exactly
/// once (no padded duplicates), and reduces loss, top-1, top-5 and the confusion matrix.
///
/// Unreadable samples are not counted: the loader fills their place with the next readable
/// sample (see `BatchLoader`), and that row is left out of the totals, so `samples` is the
/// number of images actually evaluated and `unreadableSamples` the number that could not be.
public final class Evaluator {
    public let model: Model
    public let source: DataSource
    public let communicator: Communicator
    public let loader: BatchLoader
    public let loss: SoftmaxCrossEntropy
    private let sampler: DistributedSampler

    public init(model: Model, source: DataSource, transform: ImageTransform, batchSize: Int, workers: Int,
                communicator: Communicator, seed: UInt64) {
        self.model = model
        self.source = source
        self.communicator = communicator
        sampler = DistributedSampler(datasetSize: source.count, rank: communicator.rank, worldSize: communicator.size,
                                     shuffle: false, seed: seed, dropLast: false, padToEqual: false)
        loader = BatchLoader(source: source, transform: transform, batchSize: batchSize, resolution: model.builtResolution,
                             workers: workers, seed: seed, rank: communicator.rank)
        loss = SoftmaxCrossEntropy(classes: model.numClasses)
        loss.build(maxBatch: batchSize)
    }

    /// Runs one pass; with `limitBatches`, each rank stops after that many batches.
    public func run(limitBatches: Int? = nil, confusion: ConfusionMatrix? = nil,
                    progress: ((Int, Int, MetricTotals) -> Void)? = nil) throws -> MetricTotals {
        var indices = sampler.indices(epoch: 0)
        if let limit = limitBatches { indices = Array(indices.prefix(limit * loader.batchSize)) }
        loader.start(epoch: 0, indices: indices)
        let total = (indices.count + loader.batchSize - 1) / loader.batchSize
        var totals = MetricTotals()
        var step = 0
        var unreadable = 0
        while let batch = try loader.next() {
            let logits = model.forward(batch.images, mode: .eval)
            let value = loss.forward(logits: logits, labels: batch.labels)
            let first = batch.number * loader.batchSize
            totals.add(logits: logits, labels: batch.labels, count: batch.count, meanLoss: Double(value),
                       excluding: batch.skipped.isEmpty ? [] : batch.skipped.map { $0.position - first }, confusion: confusion)
            unreadable += batch.skipped.count
            step += 1
            progress?(step, total, totals)
        }
        var packed = totals.packed + [Double(unreadable)]
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        unreadableSamples = Int(packed.removeLast())
        if let confusion {
            var counts = confusion.counts
            try counts.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
            confusion.set(counts)
        }
        return MetricTotals(packed: packed)
    }

    /// Samples skipped as unreadable in the last pass (this rank).
    public var skipped: Int { loader.skippedThisEpoch }

    /// Samples that could not be read in the last pass, over all ranks; they are not in the
    /// pass's `samples`.
    public private(set) var unreadableSamples = 0
}
