import DTrainCore
import DTrainNN

/// Makes every rank's gradients the average over all ranks before the optimizer step.
///
/// The trainer calls `gradientsReady(from:)` while backward runs (the flat gradient buffer is final
/// from that offset to its end: parameters are laid out in forward order, so backward completes
/// them from the end) and `synchronize()` after backward. Implementations may start communicating
/// early; after `synchronize()` returns the whole buffer holds the averages.
public protocol GradientSynchronizer: AnyObject {
    /// The backward pass about to run is the one whose gradients `synchronize()` will average
    /// (with gradient accumulation, the last micro-batch's); earlier ones communicate nothing.
    func beginBackward()
    func gradientsReady(from offset: Int)
    func synchronize() throws
}

/// One process: gradients are already the average.
public final class LocalGradients: GradientSynchronizer {
    public init() {}
    public func beginBackward() {}
    public func gradientsReady(from offset: Int) {}
    public func synchronize() throws {}
}

/// Buckets of the flat gradient buffer, in the order backward completes them (from the end of the
/// buffer): the first bucket small so communication starts early, the others about `bucketBytes`,
/// as PyTorch DDP's 1 MB first bucket and 25 MB buckets. Bucket edges fall on parameter boundaries.
/// Only the parameters given are covered: frozen ones are left out, so they are never sent, and a
/// bucket never spans a gap between the parameters given.
public struct GradientBuckets: Sendable {
    /// Flat ranges, first to be ready first.
    public let ranges: [Range<Int>]

    public init(parameters: [(offset: Int, count: Int)], bucketBytes: Int = 25 << 20, firstBucketBytes: Int = 1 << 20) {
        var ranges: [Range<Int>] = []
        var end: Int?  // end of the bucket being filled
        var start = 0
        var limit = firstBucketBytes / 4
        for p in parameters.reversed() {
            if let e = end, p.offset + p.count != start {
                ranges.append(start..<e)
                end = nil
                limit = bucketBytes / 4
            }
            if end == nil { end = p.offset + p.count }
            start = p.offset
            if let e = end, e - start >= limit {
                ranges.append(start..<e)
                end = nil
                limit = bucketBytes / 4
            }
        }
        if let e = end, e > start { ranges.append(start..<e) }
        self.ranges = ranges
    }

    /// Buckets over the trainable parameters of `store`.
    public init(trainableOf store: ParameterStore, bucketBytes: Int = 25 << 20) {
        self.init(parameters: store.parameters.filter(\.trainable).map { ($0.offset, $0.count) }, bucketBytes: bucketBytes)
    }

    /// Values the buckets cover (what one allreduce round sends per rank).
    public var count: Int { ranges.reduce(0) { $0 + $1.count } }

    /// `communicator` labelled "gradient bucket i of n" for each bucket, in order.
    func labelled(_ communicator: Communicator) -> [Communicator] {
        ranges.indices.map { communicator.labelled("gradient bucket \($0 + 1) of \(ranges.count)") }
    }
}

/// Averages with in-place allreduce over buckets once backward has finished; with `dtype` bf16,
/// each bucket travels as bf16 (`AllreduceDType`).
public final class AllreduceGradients: GradientSynchronizer {
    public let store: ParameterStore
    public let communicator: Communicator
    public let buckets: GradientBuckets
    public let dtype: AllreduceDType
    /// The communicator once per bucket, labelled with the bucket for diagnostics.
    private let bucketCommunicators: [Communicator]
    private let transfer: BucketTransfer

    public init(store: ParameterStore, communicator: Communicator, bucketBytes: Int = 25 << 20, dtype: AllreduceDType = .fp32) {
        self.store = store
        self.communicator = communicator
        self.dtype = dtype
        buckets = GradientBuckets(trainableOf: store, bucketBytes: bucketBytes)
        bucketCommunicators = buckets.labelled(communicator)
        transfer = BucketTransfer(buckets: buckets, grads: store.grads.pointer, ranks: communicator.size, dtype: dtype)
    }

    public func beginBackward() {}
    public func gradientsReady(from offset: Int) {}

    public func synchronize() throws {
        try Profiler.measure(.allreduce) { try average() }
    }

    private func average() throws {
        for i in buckets.ranges.indices {
            let send = transfer.prepare(i)
            try bucketCommunicators[i].allreduce(send.buffer, count: send.count, type: send.type, op: .sum)
            transfer.finish(i)
        }
    }
}

/// Averages buckets with non-blocking allreduce started while backward still runs, as PyTorch
/// DDP does: a bucket starts as soon as backward has made its gradients final (in reverse layer
/// order, so the same order on every rank), outstanding ones are progressed at every later block,
/// and `synchronize()` waits for the rest. Communication uses a duplicated communicator of its own.
/// With `dtype` bf16, a bucket is rounded to bf16 when it starts and widened back when it is done
/// (`AllreduceDType`).
/// This needs no communication thread, so on nodes where ranks fill every core no thread competes
/// with computation.
public final class OverlappedGradientAllreduce: GradientSynchronizer {
    public let store: ParameterStore
    public let communicator: Communicator
    public let buckets: GradientBuckets
    public let dtype: AllreduceDType
    /// The duplicate once per bucket, labelled with the bucket for diagnostics.
    private let bucketCommunicators: [Communicator]
    private let transfer: BucketTransfer
    private var pending: [PendingCollective?]
    private var started = 0
    private var armed = false
    private var failure: Error?
    /// Seconds spent waiting in `synchronize()` in the last step (communication not hidden).
    public private(set) var lastWaitSeconds = 0.0

    public init(store: ParameterStore, communicator: Communicator, bucketBytes: Int = 25 << 20, dtype: AllreduceDType = .fp32) throws {
        self.store = store
        self.communicator = try communicator.duplicate()
        self.dtype = dtype
        buckets = GradientBuckets(trainableOf: store, bucketBytes: bucketBytes)
        bucketCommunicators = buckets.labelled(self.communicator)
        transfer = BucketTransfer(buckets: buckets, grads: store.grads.pointer, ranks: communicator.size, dtype: dtype)
        pending = [PendingCollective?](repeating: nil, count: buckets.ranges.count)
    }

    public func beginBackward() {
        armed = true
        started = 0
    }

    private func start(_ i: Int) {
        do {
            let send = transfer.prepare(i)
            pending[i] = try bucketCommunicators[i].startAllreduce(send.buffer, count: send.count, type: send.type, op: .sum)
        } catch {
            failure = failure ?? error
            pending[i] = .completed
        }
    }

    public func gradientsReady(from offset: Int) {
        guard armed else { return }
        while started < buckets.ranges.count && buckets.ranges[started].lowerBound >= offset {
            start(started)
            started += 1
        }
        for i in 0..<started {
            if let p = pending[i], !p.isComplete {
                do { _ = try p.test() } catch { failure = failure ?? error }
            }
        }
    }

    public func synchronize() throws {
        if !armed { beginBackward() }
        while started < buckets.ranges.count { start(started); started += 1 }
        let begin = DispatchTime.now().uptimeNanoseconds
        for i in buckets.ranges.indices {
            do { try pending[i]?.wait() } catch { failure = failure ?? error }
            pending[i] = nil
            transfer.finish(i)
        }
        lastWaitSeconds = Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9
        armed = false
        if let failure {
            self.failure = nil
            throw failure
        }
    }
}

import Dispatch
