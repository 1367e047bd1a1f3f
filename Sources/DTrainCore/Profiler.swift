#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a stretch of a training step is spent on, for `Profiler`.
public enum ProfileKind: Int, CaseIterable, Sendable {
    case convForward
    case convBackwardData
    case convBackwardWeight
    case batchNorm
    case pooling
    /// Activations, residual adds, reshapes, padding, dropout.
    case elementwise
    case linear
    case loss
    /// Optimizer updates and zeroing gradients.
    case optimizer
    case allreduce
    /// Waiting for the data loader's next batch.
    case dataWait
    /// Explicitly measured time that fits no other kind. (A step's unmeasured time is reported
    /// beside the kinds as "unattributed".)
    case other

    /// Number of kinds.
    public static let count = allCases.count

    /// Short name used in reports and JSON.
    public var name: String {
        switch self {
        case .convForward: return "conv_forward"
        case .convBackwardData: return "conv_backward_data"
        case .convBackwardWeight: return "conv_backward_weight"
        case .batchNorm: return "batch_norm"
        case .pooling: return "pooling"
        case .elementwise: return "elementwise"
        case .linear: return "linear"
        case .loss: return "loss"
        case .optimizer: return "optimizer"
        case .allreduce: return "allreduce"
        case .dataWait: return "data_wait"
        case .other: return "other"
        }
    }
}

/// Accumulated time per `ProfileKind`.
public struct ProfileSnapshot: Sendable, Equatable {
    /// Seconds per kind, indexed by `ProfileKind.rawValue`.
    public var seconds: [Double]
    /// `measure` calls per kind.
    public var calls: [Int]

    public init() {
        seconds = [Double](repeating: 0, count: ProfileKind.count)
        calls = [Int](repeating: 0, count: ProfileKind.count)
    }

    public subscript(kind: ProfileKind) -> Double { seconds[kind.rawValue] }
    public func calls(_ kind: ProfileKind) -> Int { calls[kind.rawValue] }
    /// Seconds over all kinds.
    public var total: Double { seconds.reduce(0, +) }

    public static func + (a: ProfileSnapshot, b: ProfileSnapshot) -> ProfileSnapshot {
        var s = a
        for i in s.seconds.indices {
            s.seconds[i] += b.seconds[i]
            s.calls[i] += b.calls[i]
        }
        return s
    }
}

/// A per-kind wall-clock profiler for the training step.
///
/// Wrap a stretch of work in `Profiler.measure(kind) { … }`. When disabled (the default) that is
/// one branch and a direct call. When enabled, time is read from the monotonic clock on entry and
/// exit and added to the kind; measures nest exclusively: time spent in an inner measure counts
/// for the inner kind only, so a layer may wrap its whole pass and a part of it separately (a
/// convolution's backward as `.convBackwardData` around a `.convBackwardWeight` part).
///
/// Call it from the thread that drives the step (not from inside `parallelFor` bodies); the
/// parallel work a measured stretch starts is included in its wall-clock time.
public enum Profiler {
    /// Whether `measure` records time.
    nonisolated(unsafe) public static var isEnabled = false

    /// Seconds and calls per kind (allocated once, so measuring never allocates).
    private static let seconds = UnsafeMutablePointer<Double>.allocate(capacity: ProfileKind.count)
    private static let calls = UnsafeMutablePointer<Int>.allocate(capacity: ProfileKind.count)
    nonisolated(unsafe) private static var initialized = false
    /// The innermost running measure, and when its current stretch of exclusive time began.
    nonisolated(unsafe) private static var active: ProfileKind?
    nonisolated(unsafe) private static var activeSince: UInt64 = 0

    /// Runs `body`, adding its wall-clock time to `kind` when profiling is enabled.
    @inlinable @inline(__always)
    public static func measure<T>(_ kind: ProfileKind, _ body: () throws -> T) rethrows -> T {
        if !isEnabled { return try body() }
        let outer = begin(kind)
        defer { end(kind, outer: outer) }
        return try body()
    }

    @usableFromInline @inline(never)
    static func begin(_ kind: ProfileKind) -> ProfileKind? {
        if !initialized { reset() }
        let now = monotonicNanoseconds()
        let outer = active
        if let outer { seconds[outer.rawValue] += Double(now &- activeSince) * 1e-9 }
        active = kind
        activeSince = now
        return outer
    }

    @usableFromInline @inline(never)
    static func end(_ kind: ProfileKind, outer: ProfileKind?) {
        let now = monotonicNanoseconds()
        seconds[kind.rawValue] += Double(now &- activeSince) * 1e-9
        calls[kind.rawValue] += 1
        active = outer
        activeSince = now
    }

    /// Moves `amount` seconds already counted for `from` to `to` (at most what `from` holds), for
    /// work whose parts run interleaved on the pool's threads and are told apart by per-thread
    /// timers (a convolution's weight and data gradients, tile by tile). Counted inside a running
    /// measure, call it after that measure has added its time, or from inside it: the running
    /// measure's own stretch is added on exit either way.
    public static func reattribute(_ amount: Double, from: ProfileKind, to: ProfileKind) {
        guard isEnabled, amount > 0 else { return }
        if let active, active == from {
            // The running measure's time so far has not been added yet: add it first.
            let now = monotonicNanoseconds()
            seconds[from.rawValue] += Double(now &- activeSince) * 1e-9
            activeSince = now
        }
        let moved = min(amount, seconds[from.rawValue])
        seconds[from.rawValue] -= moved
        seconds[to.rawValue] += moved
    }

    /// Clears the accumulated times (a measure running now keeps running).
    public static func reset() {
        seconds.initialize(repeating: 0, count: ProfileKind.count)
        calls.initialize(repeating: 0, count: ProfileKind.count)
        initialized = true
        if active != nil { activeSince = monotonicNanoseconds() }
    }

    /// The times accumulated since the last reset.
    public static func snapshot() -> ProfileSnapshot {
        if !initialized { reset() }
        var s = ProfileSnapshot()
        for i in 0..<ProfileKind.count {
            s.seconds[i] = seconds[i]
            s.calls[i] = calls[i]
        }
        return s
    }

    /// Runs `body` with profiling enabled from a reset, restoring `isEnabled` afterwards, and
    /// returns its result with the times it accumulated.
    public static func profile<T>(_ body: () throws -> T) rethrows -> (T, ProfileSnapshot) {
        let was = isEnabled
        isEnabled = true
        defer { isEnabled = was }
        reset()
        let result = try body()
        return (result, snapshot())
    }
}
