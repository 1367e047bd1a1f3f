import DTrainCore

/// Per-thread timers that split a convolution's backward pass between the profiler's
/// `.convBackwardWeight` and `.convBackwardData` kinds.
///
/// Each thread works through its own tiles and computes a tile's weight gradient and data
/// gradient back to back while the tile is in cache, so the two cannot be measured as separate
/// stretches of wall-clock time. Instead every thread adds the time of each part to its own
/// counters, and the wall time of the pass is split in the proportion the counters give. When the
/// profiler is off, nothing is timed.
struct ConvPartTimers {
    let enabled: Bool
    let chunks: Int
    private let begin: UInt64

    /// Counters for up to `maxChunks` threads: [weight, data] per chunk, reused by every pass
    /// (one convolution runs at a time), allocated once.
    private static let maxChunks = 1024
    private static let counters = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * maxChunks)

    init(enabled: Bool, chunks: Int) {
        self.enabled = enabled && chunks <= Self.maxChunks
        self.chunks = chunks
        begin = self.enabled ? monotonicNanoseconds() : 0
        if self.enabled { Self.counters.update(repeating: 0, count: 2 * chunks) }
    }

    /// A thread's clock at the start of its chunk.
    @inline(__always)
    func start() -> UInt64 { enabled ? monotonicNanoseconds() : 0 }

    /// Adds the time since `clock` to chunk `chunk`'s weight or data counter and restarts `clock`.
    @inline(__always)
    func lap(_ clock: inout UInt64, chunk: Int, weight: Bool) {
        guard enabled else { return }
        let now = monotonicNanoseconds()
        Self.counters[2 * chunk + (weight ? 0 : 1)] += now &- clock
        clock = now
    }

    /// Moves the weight gradient's share of the wall time since `init` from `.convBackwardData`
    /// (the kind the container measures the whole backward as) to `.convBackwardWeight`.
    func attributeWeightShare() {
        guard enabled else { return }
        let wall = Double(monotonicNanoseconds() &- begin) * 1e-9
        var weight: UInt64 = 0, data: UInt64 = 0
        for c in 0..<chunks {
            weight += Self.counters[2 * c]
            data += Self.counters[2 * c + 1]
        }
        guard weight + data > 0 else { return }
        Profiler.reattribute(wall * Double(weight) / Double(weight + data), from: .convBackwardData, to: .convBackwardWeight)
    }
}
