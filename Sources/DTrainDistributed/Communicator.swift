/// Element types a collective can carry. `bfloat16` is bf16 bits (UInt16, the high half of a
/// float32) and reduces with `.sum` only: each partial sum is added in float32 and rounded to bf16
/// (round to nearest even), as `dtrain_bf16_sum` does.
public enum CollectiveType: Sendable {
    case float32, float64, int64, byte, bfloat16

    public var size: Int {
        switch self {
        case .bfloat16: return 2
        case .float32: return 4
        case .float64, .int64: return 8
        case .byte: return 1
        }
    }
}

/// The reduction a collective applies.
public enum ReduceOp: Sendable {
    case sum, max, min
}

/// A failed collective: which operation, and the transport's own message.
public struct CommunicatorError: Error, CustomStringConvertible {
    public let operation: String
    public let message: String
    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }
    public var description: String { "\(operation) failed: \(message)" }
}

/// The group of processes that train together.
///
/// Everything distributed in dtrain goes through this protocol, so layers and the trainer never
/// know whether they run under mpirun: `MPICommunicator` talks to Open MPI, `SingleProcessCommunicator`
/// is a world of one that makes no MPI calls. Every rank must issue the same collectives in the same
/// order.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Rank among the processes on this node, and how many there are.
    var localRank: Int { get }
    var localSize: Int { get }

    /// In-place allreduce of `count` elements at `buffer`.
    func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws
    /// Overwrites `buffer` on every rank with root's.
    func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws
    /// Gathers `count` elements from every rank into `recv` (size × count, rank order).
    func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws
    func barrier() throws
    /// Ends every process of the job (after a fatal error on one rank).
    func abort(code: Int32) -> Never
    /// A communicator over the same processes for a thread that communicates on its own.
    func duplicate() throws -> Communicator
    /// Starts an in-place allreduce and returns at once; `buffer` must stay allocated and untouched
    /// until the returned handle completes. The default runs the blocking `allreduce` and returns a
    /// completed handle.
    func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective
    /// This communicator, with its collectives reported as being for `purpose` in diagnostics
    /// (the stall watchdog's report: "synchronized BatchNorm", "gradient bucket 2 of 3"). The
    /// default is the communicator itself; `WatchdogCommunicator` returns a view sharing its state.
    func labelled(_ purpose: String) -> Communicator
}

/// A collective in flight, from `Communicator.startAllreduce`. Owned by one thread: `test()` and
/// `wait()` are not to be called concurrently. Its buffer holds the result once it is complete.
public final class PendingCollective {
    private let poll: () throws -> Bool
    private let block: () throws -> Void
    public private(set) var isComplete = false

    /// Where a blocking `wait()` is recorded for the stall watchdog (set by `WatchdogCommunicator`).
    struct Watch {
        let slot: CollectiveSlot
        let count: Int
        let type: CollectiveType
        let purpose: String
    }
    var watch: Watch?

    /// A handle completed by `test` (true once done, without blocking) or `wait` (blocks until done).
    public init(test: @escaping () throws -> Bool, wait: @escaping () throws -> Void) {
        poll = test
        block = wait
    }

    /// A handle whose collective has already finished.
    public static var completed: PendingCollective {
        let handle = PendingCollective(test: { true }, wait: {})
        handle.isComplete = true
        return handle
    }

    /// Makes a completed handle stand for the transport's next collective, so that a transport
    /// can keep the handles it returned and reuse one once its holder has let go, instead of
    /// allocating one per collective (a training step then allocates nothing).
    public func rearm() {
        precondition(isComplete, "rearm() of a collective still in flight")
        isComplete = false
        watch = nil
    }

    /// Whether the collective has finished (progressing it), without blocking.
    @discardableResult
    public func test() throws -> Bool {
        if isComplete { return true }
        if try poll() { isComplete = true }
        return isComplete
    }

    /// Blocks until the collective has finished.
    public func wait() throws {
        if isComplete { return }
        isComplete = true
        if let w = watch { w.slot.begin(.waitAllreduce, count: w.count, type: w.type, purpose: w.purpose) }
        defer { watch?.slot.end() }
        try block()
    }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    public func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective {
        try allreduce(buffer, count: count, type: type, op: op)
        return .completed
    }

    public func labelled(_ purpose: String) -> Communicator { self }

    public func allreduce(_ values: UnsafeMutableBufferPointer<Float>, op: ReduceOp = .sum) throws {
        try allreduce(UnsafeMutableRawPointer(values.baseAddress!), count: values.count, type: .float32, op: op)
    }

    public func allreduce(_ values: UnsafeMutableBufferPointer<Double>, op: ReduceOp = .sum) throws {
        try allreduce(UnsafeMutableRawPointer(values.baseAddress!), count: values.count, type: .float64, op: op)
    }
}

/// A world of one process: collectives are identities and no MPI call is made.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws {
        // The same contract as MPICommunicator's, so a misuse shows in single-process runs too.
        if type == .bfloat16 && op != .sum {
            throw CommunicatorError(operation: "allreduce", message: "bfloat16 reduces with sum only")
        }
    }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws {}
    public func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws {
        recv.copyMemory(from: send, byteCount: count * type.size)
    }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func duplicate() throws -> Communicator { SingleProcessCommunicator() }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
