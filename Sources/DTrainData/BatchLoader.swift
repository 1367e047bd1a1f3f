import Foundation
import DTrainCore

/// Decodes, augments and batches samples ahead of the training step on worker threads.
///
/// All batch memory is allocated once at init: a ring of `prefetchBatches` slots, each holding
/// `batchSize` normalised NHWC images, labels and indices. Workers take samples in epoch order,
/// one at a time (so several workers share a batch), and write them straight into their slot;
/// `next()` hands the batches out in order and only waits when the workers fall behind.
///
/// Determinism: a sample's augmentation is drawn from (seed, epoch, dataset index) — see
/// `ImageTransform` — and unreadable samples are replaced by a fixed rule, so the batches are
/// bit-identical for any number of workers (0 included) and any thread timing.
///
/// Unreadable samples: when `DataSource.image(at:targetSize:)` throws a `DataError`, the sample
/// is replaced by the next readable index ((i + 1) mod N, (i + 2) mod N, …, at most
/// `maxReplacementAttempts` tries), so batch shapes and counts never change. Each replacement is
/// counted in `skippedThisEpoch` and reported through `warningHandler` on the thread that calls
/// `next()`, in batch order: the first five over the loader's life by name and reason, after that
/// only the per-epoch count, reported when the epoch ends. Any other error (or a run of
/// unreadable samples longer than the bound) is thrown by `next()` and ends the epoch.
///
/// Use from one consumer thread: `start(epoch:indices:)`, then `next()` until it returns nil.
/// `start` may be called again at any time (also mid-epoch) to begin another epoch. `stop()`
/// (or deinit) stops and joins the worker threads.
public final class BatchLoader {
    public let source: any DataSource
    public let transform: ImageTransform
    public let batchSize: Int
    public let resolution: Int
    /// Worker threads; 0 loads each batch synchronously inside `next()`.
    public let workers: Int
    /// Batch slots in the ring.
    public let prefetchBatches: Int
    public let seed: UInt64
    /// This process's rank (used to label warnings; the augmentation does not depend on it).
    public let rank: Int
    /// Drop the last batch of an epoch when it would be smaller than `batchSize`.
    public let dropLastPartial: Bool
    /// Tries before the loader gives up replacing an unreadable sample.
    public let maxReplacementAttempts: Int

    /// Where warnings about unreadable samples go; standard error by default. Called on the thread
    /// that calls `next()`.
    public var warningHandler: (String) -> Void = { message in
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Samples replaced so far in the current epoch (in the batches already handed out); after
    /// `next()` returns nil, the epoch's total.
    public private(set) var skippedThisEpoch = 0
    /// Samples replaced over the loader's life.
    public private(set) var skippedTotal = 0
    /// The first replacements (up to five) over the loader's life, as reported.
    public private(set) var reportedSkips: [SkippedSample] = []
    /// The epoch given to the last `start`.
    public private(set) var epoch = 0
    /// Batches in the current epoch.
    public private(set) var batchesThisEpoch = 0

    private let core: LoaderCore
    private var nextBatch = 0
    private var handedOut: Int?
    private var finished = true
    private var endReported = true
    private var stopped = false

    /// Listed by name before the loader only counts.
    public static let namedWarnings = 5

    /// - Parameters:
    ///   - transform: must produce `resolution × resolution` images.
    ///   - workers: worker threads (0 = synchronous); see `defaultWorkers(computeThreads:)`.
    ///   - prefetchBatches: slots in the ring (at least 1; ignored with 0 workers, which use one).
    ///   - seed: the augmentation seed (with the epoch and the dataset index).
    public init(source: any DataSource, transform: ImageTransform, batchSize: Int, resolution: Int, workers: Int,
                prefetchBatches: Int? = nil, seed: UInt64, rank: Int, dropLastPartial: Bool = false,
                maxReplacementAttempts: Int = 64) {
        precondition(batchSize > 0, "batch size must be positive")
        precondition(workers >= 0, "negative worker count")
        precondition(transform.outputSize == resolution,
                     "transform produces \(transform.outputSize)x\(transform.outputSize), loader expects \(resolution)x\(resolution)")
        precondition(source.count > 0, "empty data source")
        self.source = source
        self.transform = transform
        self.batchSize = batchSize
        self.resolution = resolution
        self.workers = workers
        self.prefetchBatches = workers == 0 ? 1 : max(1, prefetchBatches ?? max(2, workers + 1))
        self.seed = seed
        self.rank = rank
        self.dropLastPartial = dropLastPartial
        self.maxReplacementAttempts = max(1, min(maxReplacementAttempts, source.count))
        core = LoaderCore(source: source, transform: transform, batchSize: batchSize, slots: self.prefetchBatches,
                          seed: seed, maxAttempts: self.maxReplacementAttempts)
        core.startWorkers(workers)
    }

    deinit { stop() }

    /// Bytes of batch memory the ring holds.
    public var slotBytes: Int {
        prefetchBatches * batchSize * (transform.outputFloats * MemoryLayout<Float>.size
                                       + MemoryLayout<Int32>.size + MemoryLayout<Int>.size)
    }

    /// Worker threads still running (0 after `stop()`).
    public var liveWorkerThreads: Int {
        core.condition.lock(); defer { core.condition.unlock() }
        return core.liveThreads
    }

    /// A worker count for one rank: the cores this rank may use (the node's cores divided by the
    /// ranks on it, `NodeRanks`) less the compute threads, at least 1.
    public static func defaultWorkers(computeThreads: Int, coresPerRank: Int? = nil) -> Int {
        let cores = coresPerRank ?? NodeRanks.current.coresPerRank
        return max(1, cores - computeThreads)
    }

    /// Begins an epoch over `indices` (this rank's dataset indices, e.g. from
    /// `DistributedSampler`). Work left from a previous epoch is abandoned; batches handed out
    /// before are no longer valid. `repetitions`, when not empty, gives each position's repeat
    /// number under repeated augmentation (`RepeatedAugmentationSampler`), which keys its
    /// augmentation with the index (`ImageTransform.random(seed:epoch:index:repetition:)`).
    public func start(epoch: Int, indices: [Int], repetitions: [Int] = []) {
        precondition(!stopped, "BatchLoader used after stop()")
        let n = source.count
        precondition(indices.allSatisfy { $0 >= 0 && $0 < n }, "sample index outside the data source of \(n)")
        precondition(repetitions.isEmpty || repetitions.count == indices.count, "one repeat number per index")
        let batches = dropLastPartial ? indices.count / batchSize : (indices.count + batchSize - 1) / batchSize
        let tasks = dropLastPartial ? batches * batchSize : indices.count
        self.epoch = epoch
        batchesThisEpoch = batches
        nextBatch = 0
        handedOut = nil
        finished = false
        endReported = false
        skippedThisEpoch = 0

        core.condition.lock()
        core.generation += 1
        core.taskLimit = 0
        while core.inFlight > 0 { core.condition.wait() }
        for slot in core.slots { slot.batch = -1 }
        core.epoch = epoch
        core.indices = indices
        core.repetitions = repetitions
        core.nextTask = 0
        core.taskLimit = workers == 0 ? 0 : tasks
        core.released = 0
        core.condition.broadcast()
        core.condition.unlock()
        if workers == 0 { syncTasks = tasks }
    }

    private var syncTasks = 0

    /// The next batch of the epoch, in order, or nil when the epoch is over. Invalidates the batch
    /// returned before.
    public func next() throws -> Batch? {
        precondition(!stopped, "BatchLoader used after stop()")
        guard !finished, nextBatch < batchesThisEpoch else {
            finished = true
            if workers > 0 { release() }
            reportEnd()
            return nil
        }
        let b = nextBatch
        let slot: LoaderSlot
        if workers == 0 {
            slot = core.slots[0]
            let first = b * batchSize
            slot.begin(batch: b, count: min(batchSize, syncTasks - first))
            for position in first..<(first + slot.count) {
                let outcome = core.load(index: core.indices[position], repetition: core.repetition(at: position), epoch: epoch, position: position,
                                        slot: slot, scratch: syncScratch)
                slot.finish(outcome, position: position)
            }
        } else {
            core.condition.lock()
            releaseLocked()
            while !(ringSlot(for: b).batch == b && ringSlot(for: b).remaining == 0) { core.condition.wait() }
            slot = ringSlot(for: b)
            handedOut = b
            core.condition.unlock()
        }
        nextBatch += 1
        // The slot is ours until the next call: workers do not touch it again before then.
        if let failure = slot.failure {
            finished = true
            throw failure.error
        }
        let skipped = slot.skips.isEmpty ? [] : slot.skips.sorted { $0.position < $1.position }
        if !skipped.isEmpty { report(skipped) }
        let shape = FeatureShape(height: resolution, width: resolution, channels: 3)
        return Batch(images: Tensor(data: slot.images.pointer, batch: slot.count, shape: shape),
                     labels: slot.labels, count: slot.count,
                     indices: UnsafeBufferPointer(start: slot.indices, count: slot.count),
                     number: b, replaced: slot.skips.count, skipped: skipped)
    }

    private lazy var syncScratch = ResampleScratch()

    @inline(__always)
    private func ringSlot(for batch: Int) -> LoaderSlot { core.slots[batch % core.slots.count] }

    private func release() {
        core.condition.lock()
        releaseLocked()
        core.condition.unlock()
    }

    private func releaseLocked() {
        if let handed = handedOut {
            core.released = handed + 1
            handedOut = nil
            core.condition.broadcast()
        }
    }

    private func report(_ skips: [SkippedSample]) {
        for skip in skips {
            skippedThisEpoch += 1
            skippedTotal += 1
            if reportedSkips.count < BatchLoader.namedWarnings {
                reportedSkips.append(skip)
                warningHandler("dtrain: rank \(rank): skipping unreadable sample \(skip.name): \(skip.reason) (using sample \(skip.replacement) instead)")
                if reportedSkips.count == BatchLoader.namedWarnings {
                    warningHandler("dtrain: rank \(rank): further unreadable samples are counted, not listed")
                }
            }
        }
    }

    private func reportEnd() {
        guard !endReported else { return }
        endReported = true
        if skippedThisEpoch > 0 {
            warningHandler("dtrain: rank \(rank): \(skippedThisEpoch) unreadable sample\(skippedThisEpoch == 1 ? "" : "s") replaced in epoch \(epoch)")
        }
    }

    /// Stops the worker threads, waits for them to exit and frees the batch memory. The loader
    /// cannot be used afterwards.
    /// Safe to call more than once.
    public func stop() {
        if stopped { return }
        stopped = true
        core.condition.lock()
        core.shutdown = true
        core.condition.broadcast()
        core.condition.unlock()
        core.exited.wait()
        core.slots = []
    }
}
