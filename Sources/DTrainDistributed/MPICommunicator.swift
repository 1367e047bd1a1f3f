import CMPI
import Foundation
import DTrainCore

/// The thread support MPI grants (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
public enum MPIThreadLevel: Int32, Comparable, Sendable, CustomStringConvertible {
    case single = 0, funneled = 1, serialized = 2, multiple = 3

    public static func < (a: MPIThreadLevel, b: MPIThreadLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .single: return "single"
        case .funneled: return "funneled"
        case .serialized: return "serialized"
        case .multiple: return "multiple"
        }
    }
}

/// A communicator over Open MPI, through the CMPI shim.
///
/// `initialize()` starts MPI once per process, asking for MPI_THREAD_MULTIPLE so that each thread
/// that communicates on its own (the gradient allreduce overlapping backward, SyncBN) can use its
/// own `duplicate()`. Every failed call throws `CommunicatorError` with MPI's error string: the shim
/// sets MPI_ERRORS_RETURN on the world and on every duplicate.
public final class MPICommunicator: Communicator {
    /// The shim's integer handle for this communicator (MPI_Comm_c2f).
    public let handle: Int32
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    /// Whether this is a duplicate (which `free()` releases) rather than the world.
    public let isDuplicate: Bool

    private static let lock = NSLock()
    nonisolated(unsafe) private static var provided: MPIThreadLevel?
    nonisolated(unsafe) private static var finalized = false

    private init(handle: Int32, isDuplicate: Bool) throws {
        self.handle = handle
        self.isDuplicate = isDuplicate
        var r: Int32 = 0, s: Int32 = 0
        try MPICommunicator.check(cmpi_comm_rank(handle, &r), "MPI_Comm_rank")
        try MPICommunicator.check(cmpi_comm_size(handle, &s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
        let node = NodeRanks.current
        localRank = node.localRank
        localSize = node.localSize
    }

    /// Starts MPI (MPI_Init_thread, asking for `required`, MPI_THREAD_MULTIPLE by default) and
    /// returns the world communicator. Later calls return the world again without a second init.
    public static func initialize(required: MPIThreadLevel = .multiple) throws -> MPICommunicator {
        try lock.withLock {
            if finalized {
                throw CommunicatorError(operation: "MPI_Init_thread", message: "MPI has already been finalized in this process")
            }
            if provided == nil {
                var level: Int32 = 0
                try check(cmpi_init(required.rawValue, &level), "MPI_Init_thread")
                provided = MPIThreadLevel(rawValue: level) ?? .single
            }
        }
        return try MPICommunicator(handle: cmpi_comm_world(), isDuplicate: false)
    }

    /// The thread level MPI granted, or nil before `initialize()`.
    public static var providedThreadLevel: MPIThreadLevel? { lock.withLock { provided } }

    /// Whether MPI_Init has run in this process (MPI_Initialized; callable before init).
    public static var isInitialized: Bool { cmpi_initialized() != 0 }

    /// The thread level MPI granted this process.
    public var threadLevel: MPIThreadLevel { MPICommunicator.providedThreadLevel ?? .single }

    /// Whether threads may communicate concurrently, each on its own duplicate.
    public var supportsConcurrentCommunicators: Bool { threadLevel == .multiple }

    /// Ends MPI for the process (MPI_Finalize). Every rank calls it once, after its last collective;
    /// later calls do nothing.
    public func finalize() throws {
        try MPICommunicator.lock.withLock {
            guard MPICommunicator.provided != nil, !MPICommunicator.finalized else { return }
            MPICommunicator.finalized = true
            try MPICommunicator.check(cmpi_finalize(), "MPI_Finalize")
        }
    }

    /// Releases a duplicate (MPI_Comm_free, collective over its processes). The world is never freed.
    public func free() throws {
        guard isDuplicate else { return }
        try MPICommunicator.check(cmpi_comm_free(handle), "MPI_Comm_free")
    }

    // MARK: Communicator

    public func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws {
        try MPICommunicator.check(
            cmpi_allreduce_inplace(handle, buffer, Int64(count), type.cmpi, op.cmpi), "MPI_Allreduce")
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws {
        guard root >= 0 && root < size else {
            throw CommunicatorError(operation: "MPI_Bcast", message: "root \(root) outside 0..<\(size)")
        }
        try MPICommunicator.check(cmpi_bcast(handle, buffer, Int64(count), type.cmpi, Int32(root)), "MPI_Bcast")
    }

    public func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws {
        try MPICommunicator.check(
            cmpi_allgather(handle, send, recv, Int64(count), type.cmpi), "MPI_Allgather")
    }

    public func barrier() throws {
        try MPICommunicator.check(cmpi_barrier(handle), "MPI_Barrier")
    }

    public func abort(code: Int32) -> Never {
        _ = cmpi_abort(handle, code)
        exit(code)
    }

    public func duplicate() throws -> Communicator {
        var out: Int32 = 0
        try MPICommunicator.check(cmpi_comm_dup(handle, &out), "MPI_Comm_dup")
        return try MPICommunicator(handle: out, isDuplicate: true)
    }

    /// Non-blocking in-place allreduce (MPI_Iallreduce). Buffers longer than one MPI count go as
    /// several requests. `buffer` must stay allocated and untouched until the handle completes.
    public func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective {
        if count == 0 { return .completed }
        var requests: [Int32] = []
        var offset = 0
        while offset < count {
            let n = min(count - offset, MPICommunicator.maxPiece)
            var request: Int32 = 0
            let rc = cmpi_iallreduce_inplace(handle, buffer + offset * type.size, Int64(n), type.cmpi, op.cmpi, &request)
            if rc != 0 {
                // Pieces already started must finish before the error leaves: the buffer is the caller's.
                for r in requests { _ = cmpi_wait(r) }
                throw MPICommunicator.error(rc, "MPI_Iallreduce")
            }
            requests.append(request)
            offset += n
        }
        return PendingCollective(mpiRequests: requests)
    }

    // MARK: Helpers

    /// Elements per MPI call: MPI counts are Int32 (the shim uses the same bound).
    static let maxPiece = Int(Int32.max / 2)

    static func check(_ code: Int32, _ operation: String) throws {
        if code != 0 { throw error(code, operation) }
    }

    static func error(_ code: Int32, _ operation: String) -> CommunicatorError {
        var text = [CChar](repeating: 0, count: 512)
        cmpi_error_string(code, &text, Int32(text.count))
        let message = String(cString: text)
        return CommunicatorError(operation: operation, message: "\(message) (MPI error \(code))")
    }
}

extension PendingCollective {
    /// A handle over MPI requests from the shim: done when every request has completed.
    convenience init(mpiRequests: [Int32]) {
        var open = mpiRequests
        self.init(
            test: {
                while let r = open.first {
                    var done: Int32 = 0
                    try MPICommunicator.check(cmpi_test(r, &done), "MPI_Test")
                    if done == 0 { return false }
                    open.removeFirst()
                }
                return true
            },
            wait: {
                while let r = open.first {
                    // The request is freed by MPI_Wait even when it reports an error.
                    open.removeFirst()
                    try MPICommunicator.check(cmpi_wait(r), "MPI_Wait")
                }
            })
    }
}

extension CollectiveType {
    var cmpi: cmpi_dtype {
        switch self {
        case .float32: return CMPI_FLOAT32
        case .float64: return CMPI_FLOAT64
        case .int64: return CMPI_INT64
        case .byte: return CMPI_BYTE
        case .bfloat16: return CMPI_BFLOAT16
        }
    }
}

extension ReduceOp {
    var cmpi: cmpi_op {
        switch self {
        case .sum: return CMPI_SUM
        case .max: return CMPI_MAX
        case .min: return CMPI_MIN
        }
    }
}
