import DTrainCore
import DTrainNN

/// Makes every rank's gradients the average over all ranks before the optimizer step.
///
/// The trainer calls `gradientsReady(from:)` while backward runs (the flat gradient buffer is final
/// from that offset to its end: parameters are laid out in forward order, so backward completes
/// them from the end) and `synchronize()` after backward. Implementations may start communicating
/// early; after `synchronize()` returns the whole buffer holds the averages.
public protocol GradientSynchronizer: AnyObject {
    func gradientsReady(from offset: Int)
    func synchronize() throws
}

/// One process: gradients are already the average.
public final class LocalGradients: GradientSynchronizer {
    public init() {}
    public func gradientsReady(from offset: Int) {}
    public func synchronize() throws {}
}

/// Buckets of the flat gradient buffer, in the order backward completes them (from the end of the
/// buffer): the first bucket small so communication starts early, the others about `bucketBytes`,
/// as PyTorch DDP's 1 MB first bucket and 25 MB buckets. Bucket edges fall on parameter boundaries.
public struct GradientBuckets: Sendable {
    /// Flat ranges, first to be ready first.
    public let ranges: [Range<Int>]

    public init(parameters: [(offset: Int, count: Int)], bucketBytes: Int = 25 << 20, firstBucketBytes: Int = 1 << 20) {
        var ranges: [Range<Int>] = []
        var end = parameters.last.map { $0.offset + $0.count } ?? 0
        var start = end
        var limit = firstBucketBytes / 4
        for p in parameters.reversed() {
            start = p.offset
            if end - start >= limit {
                ranges.append(start..<end)
                end = start
                limit = bucketBytes / 4
            }
        }
        if end > start { ranges.append(start..<end) }
        self.ranges = ranges
    }
}

/// Averages with in-place allreduce over buckets once backward has finished.
public final class AllreduceGradients: GradientSynchronizer {
    public let store: ParameterStore
    public let communicator: Communicator
    public let buckets: GradientBuckets

    public init(store: ParameterStore, communicator: Communicator, bucketBytes: Int = 25 << 20) {
        self.store = store
        self.communicator = communicator
        buckets = GradientBuckets(parameters: store.parameters.map { ($0.offset, $0.count) }, bucketBytes: bucketBytes)
    }

    public func gradientsReady(from offset: Int) {}

    public func synchronize() throws {
        try Profiler.measure(.allreduce) { try average() }
    }

    private func average() throws {
        let scale = 1 / Float(communicator.size)
        for r in buckets.ranges {
            let base = store.grads.pointer + r.lowerBound
            try communicator.allreduce(UnsafeMutableRawPointer(base), count: r.count, type: .float32, op: .sum)
            parallelFor(r.count, minChunk: 65536) { c in for i in c { base[i] *= scale } }
        }
    }
}
