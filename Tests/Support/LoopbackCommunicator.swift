import Foundation
import DTrainDistributed

/// A `Communicator` whose ranks are threads of the test process, for unit tests of distributed
/// code without mpirun (as swift-nio's EmbeddedChannel stands in for a network).
///
/// `LoopbackCommunicator.run(ranks: 3) { comm in … }` runs the closure once per rank, each on its
/// own thread, and returns the ranks' results in rank order. Collectives match by order, as MPI's
/// do: every rank's n-th collective on a context is one operation, and a rank that issues a
/// different one fails the run with `Mismatch` instead of hanging. The last rank to arrive carries
/// a collective out on every rank's buffer, reducing in rank order (rank 0's values, then rank 1's
/// added, …), so results are deterministic. `duplicate()` gives an independent context;
/// `startAllreduce` returns a handle that completes only once every rank has contributed.
///
/// Each rank records its collectives (`records`): operation, size, buffer, and the purpose given
/// by `labelled(_:)`, so tests can check what was sent and in which order. Steady-state collectives
/// allocate nothing when recording is off (handles of non-blocking ones are reused).
///
/// The process-wide thread pool is shared by the ranks; tests with several ranks set
/// `Compute.setThreads(1)` so ranks never compete for it or for OpenBLAS's thread settings.
public final class LoopbackCommunicator: Communicator {
    public let rank: Int
    public var size: Int { world.size }
    /// Every rank is on this one node.
    public var localRank: Int { rank }
    public var localSize: Int { world.size }
    /// What this view's collectives are for (`labelled(_:)`); empty for the world and duplicates.
    public let purpose: String

    let world: LoopbackWorld
    let context: LoopbackContext
    let state: LoopbackRankState

    init(rank: Int, world: LoopbackWorld, context: LoopbackContext, state: LoopbackRankState, purpose: String) {
        self.rank = rank
        self.world = world
        self.context = context
        self.state = state
        self.purpose = purpose
    }

    /// One collective as a rank issued it.
    public struct Record: Equatable, CustomStringConvertible {
        public enum Operation: Equatable, CustomStringConvertible {
            case allreduce(ReduceOp), startAllreduce(ReduceOp), broadcast(root: Int), allgather, barrier

            public var description: String {
                switch self {
                case .allreduce(let op): return "allreduce(\(op))"
                case .startAllreduce(let op): return "startAllreduce(\(op))"
                case .broadcast(let root): return "broadcast(root: \(root))"
                case .allgather: return "allgather"
                case .barrier: return "barrier"
                }
            }
        }

        public let operation: Operation
        public let count: Int
        public let type: CollectiveType
        /// The purpose of the communicator view it was issued on (`labelled(_:)`).
        public let purpose: String
        /// 0 for the world's context, then duplicates in the order they were first made.
        public let context: Int
        /// Its position among the collectives of its context.
        public let sequence: Int
        /// The rank's buffer (in place for allreduce and broadcast, the receive buffer for
        /// allgather); nil for a barrier.
        public let buffer: UnsafeRawPointer?

        public var description: String {
            "\(operation) of \(count) \(type) on context \(context) #\(sequence)" + (purpose.isEmpty ? "" : " (\(purpose))")
        }
    }

    /// Ranks that issued different collectives at the same position.
    public struct Mismatch: Error, CustomStringConvertible {
        public let context: Int
        public let sequence: Int
        public let rank: Int
        public let firstRank: Int
        let operation: LoopbackContext.Signature
        let firstOperation: LoopbackContext.Signature

        init(context: Int, sequence: Int, rank: Int, operation: LoopbackContext.Signature, firstRank: Int,
             firstOperation: LoopbackContext.Signature) {
            self.context = context
            self.sequence = sequence
            self.rank = rank
            self.firstRank = firstRank
            self.operation = operation
            self.firstOperation = firstOperation
        }

        public var description: String {
            func text(_ s: LoopbackContext.Signature) -> String { "\(s.operation) of \(s.count) \(s.type)" }
            return "collective #\(sequence) on context \(context): rank \(rank) issued \(text(operation)), "
                + "rank \(firstRank) \(text(firstOperation))"
        }
    }

    /// This rank's collectives so far, on every context, in the order it issued them (empty when
    /// the run does not record).
    public var records: [Record] { world.records(of: rank) }

    // MARK: Communicator

    public func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws {
        let operation = Record.Operation.allreduce(op)
        let sequence = try issue(operation, count: count, type: type, buffer: buffer)
        try world.wait(for: sequence, context: context, operation: operation)
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws {
        let operation = Record.Operation.broadcast(root: root)
        let sequence = try issue(operation, count: count, type: type, buffer: buffer)
        try world.wait(for: sequence, context: context, operation: operation)
    }

    public func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws {
        let sequence = try issue(.allgather, count: count, type: type, buffer: recv, send: send)
        try world.wait(for: sequence, context: context, operation: .allgather)
    }

    public func barrier() throws {
        let sequence = try issue(.barrier, count: 0, type: .byte, buffer: nil)
        try world.wait(for: sequence, context: context, operation: .barrier)
    }

    /// Fails the run: `run` throws `RankFailure` for this rank with `Aborted`, every other rank's
    /// pending collective throws, and this thread sleeps for the rest of the process (a rank that
    /// aborts never returns).
    public func abort(code: Int32) -> Never {
        world.locked {
            world.fail(rank: rank, Aborted(code: code))
            world.finish(rank: rank, abortCode: code)
        }
        while true { Thread.sleep(forTimeInterval: 3600) }
    }

    /// The same ranks on a new context: the k-th `duplicate()` of this context on every rank gives
    /// the same new context, whose collectives are matched apart from this one's.
    public func duplicate() throws -> Communicator {
        try world.locked {
            if let failure = world.failure {
                throw CommunicatorError(operation: "loopback duplicate", message: "abandoned after a failure (\(failure.error))")
            }
            let k = state.duplicatesMade
            state.duplicatesMade += 1
            if k == context.duplicates.count { context.duplicates.append(world.makeContext()) }
            return LoopbackCommunicator(rank: rank, world: world, context: context.duplicates[k],
                                        state: LoopbackRankState(), purpose: "")
        }
    }

    public func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective {
        let operation = Record.Operation.startAllreduce(op)
        let sequence = try issue(operation, count: count, type: type, buffer: buffer)
        // Reuse a handle the caller has let go of after it completed.
        for i in state.handles.indices where isKnownUniquelyReferenced(&state.handles[i]) && state.handles[i].isComplete {
            state.handleSequences[i].sequence = sequence
            state.handleSequences[i].operation = operation
            state.handles[i].rearm()
            return state.handles[i]
        }
        let current = LoopbackHandleSequence(sequence, operation)
        let world = self.world, context = self.context
        let handle = PendingCollective(
            test: { try world.isComplete(current.sequence, context: context, operation: current.operation) },
            wait: { try world.wait(for: current.sequence, context: context, operation: current.operation) })
        state.handles.append(handle)
        state.handleSequences.append(current)
        return handle
    }

    /// A view of this rank on the same context whose records carry `purpose`.
    public func labelled(_ purpose: String) -> Communicator {
        LoopbackCommunicator(rank: rank, world: world, context: context, state: state, purpose: purpose)
    }

    private func issue(_ operation: Record.Operation, count: Int, type: CollectiveType,
                       buffer: UnsafeMutableRawPointer?, send: UnsafeRawPointer? = nil) throws -> Int {
        switch operation {
        case .allreduce(let op), .startAllreduce(let op):
            // As MPICommunicator: bf16 reduces by sum only (MPI_ERR_OP there).
            if type == .bfloat16 && op != .sum {
                throw CommunicatorError(operation: "loopback \(operation)", message: "bfloat16 reduces with sum only")
            }
        default:
            break
        }
        return try world.issue(LoopbackContext.Signature(operation: operation, count: count, type: type), rank: rank,
                        state: state, context: context, purpose: purpose, buffer: buffer, send: send)
    }
}
