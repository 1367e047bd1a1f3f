import Foundation
import DTrainCore

/// One preallocated batch buffer of the loader's ring.
final class LoaderSlot {
    let images: Storage
    let labels: UnsafeMutablePointer<Int32>
    let indices: UnsafeMutablePointer<Int>
    // Guarded by the core's condition while workers run.
    var batch = -1
    var count = 0
    var remaining = 0
    var skips: [SkippedSample] = []
    var failure: (position: Int, error: Error)?

    init(batchSize: Int, sampleFloats: Int) {
        images = Storage(count: batchSize * sampleFloats)
        labels = .allocate(capacity: batchSize)
        labels.initialize(repeating: 0, count: batchSize)
        indices = .allocate(capacity: batchSize)
        indices.initialize(repeating: 0, count: batchSize)
    }

    deinit {
        labels.deallocate()
        indices.deallocate()
    }

    func begin(batch: Int, count: Int) {
        self.batch = batch
        self.count = count
        remaining = count
        if !skips.isEmpty { skips.removeAll(keepingCapacity: true) }
        failure = nil
    }

    /// Records a finished sample.
    func finish(_ outcome: SampleOutcome, position: Int) {
        if let skip = outcome.skip { skips.append(skip) }
        if let error = outcome.error, failure == nil || position < failure!.position {
            failure = (position, error)
        }
        remaining -= 1
    }
}

/// What loading one sample came to.
struct SampleOutcome {
    var skip: SkippedSample?
    var error: Error?
}

/// The state the loader shares with its worker threads. Threads hold this, not the
/// `BatchLoader`, so the loader's deinit can stop them.
///
/// Work is one sample at a time, handed out in epoch order: sample p belongs to batch
/// p / batchSize, which fills slot (batch mod slots). A worker takes sample p only when that slot
/// is free, i.e. the consumer has released the batch `slots` before it.
final class LoaderCore: @unchecked Sendable {
    let source: any DataSource
    let transform: ImageTransform
    let batchSize: Int
    let sampleFloats: Int
    let seed: UInt64
    let maxAttempts: Int
    /// The ring; emptied by `BatchLoader.stop()` once the threads have exited, so the batch
    /// memory is freed then rather than whenever the last thread lets go of the core.
    var slots: [LoaderSlot]

    let condition = NSCondition()
    let exited = DispatchGroup()
    // Guarded by `condition`.
    var generation = 0
    var epoch = 0
    var indices: [Int] = []
    /// The repeat number of each position (repeated augmentation); empty: all 0.
    var repetitions: [Int] = []
    var nextTask = 0
    var taskLimit = 0
    var released = 0
    var inFlight = 0
    var shutdown = false
    var liveThreads = 0

    init(source: any DataSource, transform: ImageTransform, batchSize: Int, slots: Int, seed: UInt64, maxAttempts: Int) {
        self.source = source
        self.transform = transform
        self.batchSize = batchSize
        self.sampleFloats = transform.outputFloats
        self.seed = seed
        self.maxAttempts = maxAttempts
        self.slots = (0..<slots).map { _ in LoaderSlot(batchSize: batchSize, sampleFloats: transform.outputFloats) }
    }

    /// Starts `count` worker threads.
    func startWorkers(_ count: Int) {
        for w in 0..<count {
            condition.lock(); liveThreads += 1; condition.unlock()
            exited.enter()
            let thread = Thread { [self] in
                workerLoop()
                exited.leave()
            }
            thread.name = "dtrain-loader-\(w)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    func workerLoop() {
        let scratch = ResampleScratch()
        condition.lock()
        while !shutdown {
            guard nextTask < taskLimit, nextTask / batchSize < released + slots.count else {
                condition.wait()
                continue
            }
            let position = nextTask
            nextTask += 1
            let batch = position / batchSize
            let slot = slots[batch % slots.count]
            if position % batchSize == 0 { slot.begin(batch: batch, count: min(batchSize, taskLimit - position)) }
            let taken = generation, epoch = self.epoch, index = indices[position], copy = repetition(at: position)
            inFlight += 1
            condition.unlock()
            let outcome = load(index: index, repetition: copy, epoch: epoch, position: position, slot: slot, scratch: scratch)
            condition.lock()
            inFlight -= 1
            if taken == generation {
                slot.finish(outcome, position: position)
                if slot.remaining == 0 { condition.broadcast() }
            } else if inFlight == 0 {
                condition.broadcast()
            }
        }
        liveThreads -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// The repeat number of `position` of the epoch (0 without repeated augmentation).
    func repetition(at position: Int) -> Int { repetitions.isEmpty ? 0 : repetitions[position] }

    /// Decodes and transforms sample `index` into its place in `slot`. An unreadable sample
    /// (`DataError`) is replaced by the next readable one, (index + 1) mod N, (index + 2) mod N, …
    /// up to `maxAttempts` tries; the augmentation draws stay those of the requested index, so the
    /// result does not depend on which thread loads it or when.
    func load(index: Int, repetition: Int = 0, epoch: Int, position: Int, slot: LoaderSlot, scratch: ResampleScratch) -> SampleOutcome {
        let place = position % batchSize
        var candidate = index
        var firstFailure: DataError?
        for _ in 0..<maxAttempts {
            do {
                let image = try source.image(at: candidate, targetSize: transform.targetSize)
                var random = ImageTransform.random(seed: seed, epoch: epoch, index: index, repetition: repetition)
                transform.apply(image, random: &random, into: slot.images.pointer + place * sampleFloats, scratch: scratch)
                slot.labels[place] = Int32(source.label(candidate))
                slot.indices[place] = candidate
                guard let firstFailure else { return SampleOutcome() }
                return SampleOutcome(skip: SkippedSample(index: index, replacement: candidate, name: source.sampleName(index),
                                                         reason: firstFailure.reason, epoch: epoch, position: position))
            } catch let error as DataError {
                if firstFailure == nil { firstFailure = error }
                candidate = (candidate + 1) % source.count
            } catch {
                return SampleOutcome(error: LoaderError(message: "\(MessageText.path(source.sampleName(candidate))): \(MessageText.describe(error))", underlying: error))
            }
        }
        let reason = firstFailure.map { $0.reason } ?? "unreadable"
        return SampleOutcome(error: LoaderError(
            message: "\(MessageText.path(source.sampleName(index))): \(reason); none of the next \(maxAttempts - 1) samples could be read either",
            underlying: firstFailure))
    }
}
