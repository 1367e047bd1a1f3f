import Foundation
import DTrainDistributed
import CDTrainKernels

/// The state every rank of one `LoopbackCommunicator.run` shares: one lock (with its condition)
/// over every context, the first failure, and each rank's record of collectives.
///
/// A collective is matched by its sequence number on its context: every rank's n-th collective on
/// a context is the same operation. The last rank to arrive performs it on every rank's buffer and
/// marks it complete; since every rank issues in order, collectives complete in sequence order,
/// so one counter per context says which are done.
final class LoopbackWorld {
    let size: Int
    let recording: Bool
    let condition = NSCondition()
    /// The first failure: the rank it happened on (nil for the world itself, a timeout) and the
    /// error. Once set, every collective not yet complete throws.
    private(set) var failure: (rank: Int?, error: Error)?
    /// Per rank, its collectives in the order it issued them (when `recording`).
    private(set) var records: [[LoopbackCommunicator.Record]]
    /// Exit codes of ranks that called `abort(code:)`.
    private(set) var abortCodes: [Int32?]
    private var finished: [Bool]
    /// Signalled once per rank when its body returns, throws or aborts.
    let rankFinished = DispatchSemaphore(value: 0)
    private var contexts = 0

    init(size: Int, recording: Bool) {
        precondition(size >= 1, "a loopback world needs at least one rank")
        self.size = size
        self.recording = recording
        records = [[LoopbackCommunicator.Record]](repeating: [], count: size)
        abortCodes = [Int32?](repeating: nil, count: size)
        finished = [Bool](repeating: false, count: size)
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// A new communication context (the world's, or a duplicate's). Lock held.
    func makeContext() -> LoopbackContext {
        defer { contexts += 1 }
        return LoopbackContext(id: contexts, size: size)
    }

    /// Records the first failure and wakes every waiting rank. Lock held.
    func fail(rank: Int?, _ error: Error) {
        if failure == nil { failure = (rank, error) }
        condition.broadcast()
    }

    /// Marks `rank` done (once) and tells `run`. Lock held.
    func finish(rank: Int, abortCode: Int32? = nil) {
        if let code = abortCode, abortCodes[rank] == nil { abortCodes[rank] = code }
        guard !finished[rank] else { return }
        finished[rank] = true
        rankFinished.signal()
    }

    var unfinishedRanks: [Int] { locked { finished.indices.filter { !finished[$0] } } }

    /// What a collective that cannot complete throws once the world has failed. Lock held.
    private func abandoned(_ operation: LoopbackCommunicator.Record.Operation) -> CommunicatorError {
        let cause = failure.map { f in f.rank.map { "rank \($0): \(f.error)" } ?? "\(f.error)" } ?? "unknown"
        return CommunicatorError(operation: "loopback \(operation)", message: "abandoned after a failure (\(cause))")
    }

    /// Issues `rank`'s next collective on `context` and returns its sequence number; the collective
    /// is complete once `isComplete` says so. Throws if the world has failed or the ranks disagree
    /// on the operation.
    func issue(_ signature: LoopbackContext.Signature, rank: Int, state: LoopbackRankState, context: LoopbackContext,
               purpose: String, buffer: UnsafeMutableRawPointer?, send: UnsafeRawPointer?) throws -> Int {
        try locked {
            if failure != nil { throw abandoned(signature.operation) }
            let sequence = state.next
            state.next += 1
            if recording {
                records[rank].append(LoopbackCommunicator.Record(
                    operation: signature.operation, count: signature.count, type: signature.type, purpose: purpose,
                    context: context.id, sequence: sequence, buffer: buffer.map { UnsafeRawPointer($0) }))
            }
            // A rank at most `slots` collectives ahead of the slowest waits for a slot to free up.
            while context.completed <= sequence - LoopbackContext.slots {
                if failure != nil { throw abandoned(signature.operation) }
                condition.wait()
            }
            do {
                if try context.arrive(signature, rank: rank, sequence: sequence, buffer: buffer, send: send) {
                    condition.broadcast()
                }
            } catch {
                fail(rank: rank, error)
                throw error
            }
            return sequence
        }
    }

    /// Whether collective `sequence` of `context` has completed; throws if it never will.
    func isComplete(_ sequence: Int, context: LoopbackContext, operation: LoopbackCommunicator.Record.Operation) throws -> Bool {
        try locked {
            if context.completed > sequence { return true }
            if failure != nil { throw abandoned(operation) }
            return false
        }
    }

    /// Blocks until collective `sequence` of `context` has completed; throws if it never will.
    func wait(for sequence: Int, context: LoopbackContext, operation: LoopbackCommunicator.Record.Operation) throws {
        try locked {
            while context.completed <= sequence {
                if failure != nil { throw abandoned(operation) }
                condition.wait()
            }
        }
    }

    func records(of rank: Int) -> [LoopbackCommunicator.Record] { locked { records[rank] } }
}

/// One communication context (the world, or one `duplicate()`): a ring of slots for collectives in
/// flight, each holding every rank's buffers until the last rank arrives.
final class LoopbackContext {
    /// Collectives one rank may have issued beyond the last completed one.
    static let slots = 64

    /// What every rank must agree on for one collective.
    struct Signature: Equatable {
        var operation: LoopbackCommunicator.Record.Operation
        var count: Int
        var type: CollectiveType
    }

    let id: Int
    let size: Int
    /// Collectives 0..<completed are done.
    private(set) var completed = 0
    /// Contexts made by `duplicate()`, in the order the ranks made them.
    var duplicates: [LoopbackContext] = []
    private var occupant: [Int]
    private var arrivals: [Int]
    private var signatures: [Signature?]
    private var firstRank: [Int]
    private let buffers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let sends: UnsafeMutablePointer<UnsafeRawPointer?>

    init(id: Int, size: Int) {
        self.id = id
        self.size = size
        let slots = LoopbackContext.slots
        occupant = [Int](repeating: -1, count: slots)
        arrivals = [Int](repeating: 0, count: slots)
        signatures = [Signature?](repeating: nil, count: slots)
        firstRank = [Int](repeating: 0, count: slots)
        buffers = .allocate(capacity: slots * size)
        buffers.initialize(repeating: nil, count: slots * size)
        sends = .allocate(capacity: slots * size)
        sends.initialize(repeating: nil, count: slots * size)
    }

    deinit {
        buffers.deallocate()
        sends.deallocate()
    }

    /// Adds `rank`'s part of collective `sequence`; performs it when this was the last part.
    /// Returns whether it completed. Throws `LoopbackCommunicator.Mismatch` when `rank` issued a
    /// different collective from the rank that arrived first. The world's lock is held.
    func arrive(_ signature: Signature, rank: Int, sequence: Int, buffer: UnsafeMutableRawPointer?,
                send: UnsafeRawPointer?) throws -> Bool {
        if case .broadcast(let root) = signature.operation, !(0..<size).contains(root) {
            throw CommunicatorError(operation: "loopback broadcast", message: "root \(root) outside 0..<\(size)")
        }
        let j = sequence % LoopbackContext.slots
        if occupant[j] != sequence {
            occupant[j] = sequence
            arrivals[j] = 0
            signatures[j] = signature
            firstRank[j] = rank
        } else if let first = signatures[j], first != signature {
            throw LoopbackCommunicator.Mismatch(context: id, sequence: sequence, rank: rank, operation: signature,
                                                 firstRank: firstRank[j], firstOperation: first)
        }
        buffers[j * size + rank] = buffer
        sends[j * size + rank] = send
        arrivals[j] += 1
        guard arrivals[j] == size else { return false }
        precondition(completed == sequence, "loopback collectives completed out of order")
        perform(signature, slot: j)
        for r in 0..<size {
            buffers[j * size + r] = nil
            sends[j * size + r] = nil
        }
        completed = sequence + 1
        return true
    }

    /// Carries out a collective on every rank's buffers, reducing in rank order (rank 0's values,
    /// then rank 1's added, …) so results are deterministic.
    private func perform(_ signature: Signature, slot j: Int) {
        let bytes = signature.count * signature.type.size
        let base = j * size
        switch signature.operation {
        case .allreduce(let op), .startAllreduce(let op):
            guard let total = buffers[base] else { return }
            for r in 1..<max(size, 1) {
                LoopbackContext.reduce(into: total, buffers[base + r]!, count: signature.count, type: signature.type, op: op)
            }
            for r in 1..<max(size, 1) { buffers[base + r]!.copyMemory(from: total, byteCount: bytes) }
        case .broadcast(let root):
            let source = buffers[base + root]!
            for r in 0..<size where r != root { buffers[base + r]!.copyMemory(from: source, byteCount: bytes) }
        case .allgather:
            for r in 0..<size {
                for s in 0..<size { (buffers[base + r]! + s * bytes).copyMemory(from: sends[base + s]!, byteCount: bytes) }
            }
        case .barrier:
            break
        }
    }

    private static func reduce(into total: UnsafeMutableRawPointer, _ other: UnsafeMutableRawPointer,
                               count: Int, type: CollectiveType, op: ReduceOp) {
        switch type {
        case .float32: combine(total, other, count, Float.self, op, +)
        case .float64: combine(total, other, count, Double.self, op, +)
        case .int64: combine(total, other, count, Int64.self, op, &+)
        case .byte: combine(total, other, count, UInt8.self, op, &+)
        case .bfloat16:
            // Sum only (checked when the collective is issued), with MPICommunicator's operation.
            dtrain_bf16_sum(other.assumingMemoryBound(to: UInt16.self), total.assumingMemoryBound(to: UInt16.self), count)
        }
    }

    private static func combine<T: Comparable>(_ total: UnsafeMutableRawPointer, _ other: UnsafeMutableRawPointer,
                                               _ count: Int, _: T.Type, _ op: ReduceOp, _ add: (T, T) -> T) {
        let a = total.assumingMemoryBound(to: T.self), b = other.assumingMemoryBound(to: T.self)
        switch op {
        case .sum: for i in 0..<count { a[i] = add(a[i], b[i]) }
        case .max: for i in 0..<count where b[i] > a[i] { a[i] = b[i] }
        case .min: for i in 0..<count where b[i] < a[i] { a[i] = b[i] }
        }
    }
}

/// One rank's position on one context: its next sequence number, the duplicates it has made, and
/// every handle of a non-blocking collective it has returned (each reused once the caller has let
/// go of it, so steady-state collectives allocate nothing).
final class LoopbackRankState {
    var next = 0
    var duplicatesMade = 0
    var handles: [PendingCollective] = []
    /// Which collective each of `handles` stands for.
    var handleSequences: [LoopbackHandleSequence] = []
}

/// Which collective a reusable handle currently stands for.
final class LoopbackHandleSequence {
    var sequence: Int
    var operation: LoopbackCommunicator.Record.Operation
    init(_ sequence: Int, _ operation: LoopbackCommunicator.Record.Operation) {
        self.sequence = sequence
        self.operation = operation
    }
}
