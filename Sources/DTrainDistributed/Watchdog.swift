#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import DTrainCore

/// What a blocked collective is, for the stall report.
enum CollectiveKind: Sendable {
    case allreduce, broadcast, allgather, barrier, duplicate
    /// `PendingCollective.wait()` of a non-blocking allreduce.
    case waitAllreduce
}

/// The collective one communicator (the world, or one duplicate) is blocked in, if any, and since
/// when. Written by the thread that calls the collective (`begin`/`end` around it: a lock and a few
/// stores, no allocation) and read once a check by the watchdog thread.
final class CollectiveSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var active = false
    private var kind = CollectiveKind.barrier
    private var count = 0
    private var type = CollectiveType.byte
    private var root = 0
    private var purpose = ""
    private var since: UInt64 = 0

    func begin(_ kind: CollectiveKind, count: Int = 0, type: CollectiveType = .byte, root: Int = 0, purpose: String) {
        let now = monotonicNanoseconds()
        lock.lock()
        active = true
        self.kind = kind
        self.count = count
        self.type = type
        self.root = root
        self.purpose = purpose
        since = now
        lock.unlock()
    }

    func end() {
        lock.lock()
        active = false
        lock.unlock()
    }

    /// The collective in progress and how long it has waited, or nil.
    func stalled(now: UInt64, longerThan limit: UInt64) -> (description: String, seconds: Double)? {
        lock.lock()
        guard active, now >= since, now - since > limit else {
            lock.unlock()
            return nil
        }
        let (kind, count, type, root, purpose, waited) = (self.kind, self.count, self.type, self.root, self.purpose, now - since)
        lock.unlock()
        let what: String
        switch kind {
        case .allreduce: what = "allreduce of \(count) \(type)"
        case .broadcast: what = "broadcast of \(count) \(type) from rank \(root)"
        case .allgather: what = "allgather of \(count) \(type) per rank"
        case .barrier: what = "barrier"
        case .duplicate: what = "communicator duplication"
        case .waitAllreduce: what = "non-blocking allreduce of \(count) \(type)"
        }
        return ("\(what) stalled for \(Int(Double(waited) / 1e9)) s (\(purpose))", Double(waited) / 1e9)
    }
}

/// Notices a collective that has been waiting longer than `timeout`: a background thread looks at
/// every watched communicator once a second (more often for timeouts under 4 s) and, on the first
/// stall, calls `onStall` with one line naming the rank, the operation, how long it has waited and
/// what it was for. By default that line goes to stderr and the job is aborted.
public final class CollectiveWatchdog: @unchecked Sendable {
    public let timeout: Double
    public let rank: Int
    private let onStall: @Sendable (String) -> Void
    private let lock = NSLock()
    private var slots: [CollectiveSlot] = []
    private var stopped = false
    private var fired = false

    /// Exit status of a job the watchdog aborts.
    public static let abortCode: Int32 = 3
    /// Seconds the abort may take before the process ends itself (MPI_Abort can block when the
    /// launcher is out of reach).
    public static let abortGraceSeconds: UInt32 = 10

    init(timeout: Double, rank: Int, onStall: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout
        self.rank = rank
        self.onStall = onStall
    }

    /// The default action: report on stderr, then abort the whole job through `world`.
    static func abortingAction(world: Communicator) -> @Sendable (String) -> Void {
        nonisolated(unsafe) let world = world
        return { line in
            FileHandle.standardError.write("dtrain: \(line); aborting the job\n".data(using: .utf8)!)
            Thread.detachNewThread {
                sleep(CollectiveWatchdog.abortGraceSeconds)
                _exit(CollectiveWatchdog.abortCode)
            }
            world.abort(code: CollectiveWatchdog.abortCode)
        }
    }

    func register(_ slot: CollectiveSlot) {
        lock.withLock { slots.append(slot) }
    }

    /// Seconds between checks.
    var interval: Double { min(1, max(0.01, timeout / 4)) }

    func start() {
        let thread = Thread { [self] in
            while !lock.withLock({ stopped }) {
                Thread.sleep(forTimeInterval: interval)
                check()
            }
        }
        thread.name = "dtrain collective watchdog"
        thread.start()
    }

    /// Ends the checks (the thread exits within one interval).
    public func stop() {
        lock.withLock { stopped = true }
    }

    /// One look at every slot; reports the first stall (once per watchdog).
    func check(now: UInt64 = monotonicNanoseconds()) {
        let limit = UInt64(max(0, timeout) * 1e9)
        let current = lock.withLock { fired || stopped ? [] : slots }
        for slot in current {
            if let stall = slot.stalled(now: now, longerThan: limit) {
                let first = lock.withLock { () -> Bool in
                    defer { fired = true }
                    return !fired
                }
                if first { onStall("rank \(rank): \(stall.description)") }
                return
            }
        }
    }
}

/// A communicator that records every collective it passes on, blocking waits of non-blocking ones
/// included, so that a `CollectiveWatchdog` can abort the job when one stalls (a rank that died
/// without its connections closing, a host cut off, a rank stuck outside the collective).
///
/// Wrap the communicator once where the job creates it; duplicates are watched too, and
/// `labelled(_:)` views (used by synchronized BatchNorm, the gradient buckets, the start-up
/// broadcasts) name what a collective was for in the report. Recording costs a lock and a few
/// stores per collective and allocates nothing.
public final class WatchdogCommunicator: Communicator {
    public let base: Communicator
    public let watchdog: CollectiveWatchdog
    /// What this view's collectives are for, in the report.
    public let purpose: String
    let slot: CollectiveSlot

    /// Watches `base` (the world): a stall longer than `timeout` seconds ends the job, or calls
    /// `onStall` instead when given (tests). Collectives of this view are reported as `purpose`.
    public convenience init(wrapping base: Communicator, timeout: Double, purpose: String,
                            onStall: (@Sendable (String) -> Void)? = nil) {
        let watchdog = CollectiveWatchdog(timeout: timeout, rank: base.rank,
                                          onStall: onStall ?? CollectiveWatchdog.abortingAction(world: base))
        let slot = CollectiveSlot()
        watchdog.register(slot)
        self.init(base: base, watchdog: watchdog, slot: slot, purpose: purpose)
        watchdog.start()
    }

    init(base: Communicator, watchdog: CollectiveWatchdog, slot: CollectiveSlot, purpose: String) {
        self.base = base
        self.watchdog = watchdog
        self.slot = slot
        self.purpose = purpose
    }

    public var rank: Int { base.rank }
    public var size: Int { base.size }
    public var localRank: Int { base.localRank }
    public var localSize: Int { base.localSize }

    public func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws {
        slot.begin(.allreduce, count: count, type: type, purpose: purpose)
        defer { slot.end() }
        try base.allreduce(buffer, count: count, type: type, op: op)
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws {
        slot.begin(.broadcast, count: count, type: type, root: root, purpose: purpose)
        defer { slot.end() }
        try base.broadcast(buffer, count: count, type: type, root: root)
    }

    public func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws {
        slot.begin(.allgather, count: count, type: type, purpose: purpose)
        defer { slot.end() }
        try base.allgather(send, recv, count: count, type: type)
    }

    public func barrier() throws {
        slot.begin(.barrier, purpose: purpose)
        defer { slot.end() }
        try base.barrier()
    }

    public func abort(code: Int32) -> Never { base.abort(code: code) }

    /// A watched duplicate with a slot of its own (it may be used from another thread).
    public func duplicate() throws -> Communicator {
        slot.begin(.duplicate, purpose: purpose)
        let dup: Communicator
        do {
            defer { slot.end() }
            dup = try base.duplicate()
        }
        let slot = CollectiveSlot()
        watchdog.register(slot)
        return WatchdogCommunicator(base: dup, watchdog: watchdog, slot: slot, purpose: purpose)
    }

    public func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective {
        slot.begin(.allreduce, count: count, type: type, purpose: purpose)
        let pending: PendingCollective
        do {
            defer { slot.end() }
            pending = try base.startAllreduce(buffer, count: count, type: type, op: op)
        }
        pending.watch = PendingCollective.Watch(slot: slot, count: count, type: type, purpose: purpose)
        return pending
    }

    /// The same communicator and slot, reporting its collectives as `purpose`.
    public func labelled(_ purpose: String) -> Communicator {
        WatchdogCommunicator(base: base, watchdog: watchdog, slot: slot, purpose: purpose)
    }
}

extension CollectiveType: CustomStringConvertible {
    public var description: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .int64: return "int64"
        case .byte: return "bytes"
        case .bfloat16: return "bfloat16"
        }
    }
}
