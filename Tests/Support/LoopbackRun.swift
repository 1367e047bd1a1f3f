import Foundation
import DTrainDistributed

extension LoopbackCommunicator {
    /// A rank's failure in `run`: the rank, and what it threw (or `Aborted`, `TimedOut`, `Mismatch`).
    public struct RankFailure: Error, CustomStringConvertible {
        /// The failing rank (nil when the run as a whole timed out).
        public let rank: Int?
        public let error: Error
        public var description: String { (rank.map { "rank \($0): " } ?? "") + "\(error)" }
    }

    /// A rank called `abort(code:)`.
    public struct Aborted: Error, CustomStringConvertible {
        public let code: Int32
        public var description: String { "abort(code: \(code))" }
    }

    /// Ranks still running when the run's time was up (a deadlock, or a rank that never returns).
    public struct TimedOut: Error, CustomStringConvertible {
        public let seconds: Double
        public let ranks: [Int]
        public var description: String {
            "ranks \(ranks.map(String.init).joined(separator: ", ")) still running after \(seconds) s"
        }
    }

    /// Runs `body` once per rank of a new world of `ranks`, each on its own thread with its rank's
    /// communicator, and returns the results in rank order once every rank has finished.
    ///
    /// When a rank throws or aborts, or the ranks issue mismatched collectives, every collective
    /// still waiting throws (so no rank hangs) and `run` throws `RankFailure` for the first failure,
    /// with the rank's own error. A run not finished after `timeout` seconds throws `TimedOut`.
    /// - Parameter recording: keep each rank's `records` (off for allocation-counting tests).
    public static func run<T>(ranks: Int, recording: Bool = true, timeout: Double = 300,
                              _ body: @escaping (LoopbackCommunicator) throws -> T) throws -> [T] {
        let world = LoopbackWorld(size: ranks, recording: recording)
        let results = RankResults<T>(count: ranks)
        let root = world.locked { world.makeContext() }
        for rank in 0..<ranks {
            let communicator = LoopbackCommunicator(rank: rank, world: world, context: root, state: LoopbackRankState(), purpose: "")
            let thread = Thread {
                do {
                    results.set(rank, .success(try body(communicator)))
                } catch {
                    results.set(rank, .failure(error))
                    world.locked { world.fail(rank: rank, error) }
                }
                world.locked { world.finish(rank: rank) }
            }
            thread.name = "loopback rank \(rank)"
            thread.stackSize = 16 << 20
            thread.start()
        }
        let deadline = DispatchTime.now() + timeout
        var waiting = ranks
        while waiting > 0, world.rankFinished.wait(timeout: deadline) == .success { waiting -= 1 }
        if waiting > 0 {
            // Wake ranks blocked in collectives so they can end; ranks stuck elsewhere stay behind.
            let stuck = world.unfinishedRanks
            world.locked { world.fail(rank: nil, TimedOut(seconds: timeout, ranks: stuck)) }
            let grace = DispatchTime.now() + 10
            while waiting > 0, world.rankFinished.wait(timeout: grace) == .success { waiting -= 1 }
        }
        if let failure = world.locked({ world.failure }) {
            throw RankFailure(rank: failure.rank, error: failure.error)
        }
        return try (0..<ranks).map { rank in
            guard let result = results.get(rank) else { throw RankFailure(rank: rank, error: TimedOut(seconds: timeout, ranks: [rank])) }
            return try result.get()
        }
    }
}

/// Each rank's outcome, written by its thread.
private final class RankResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<T, Error>?]
    init(count: Int) { results = [Result<T, Error>?](repeating: nil, count: count) }
    func set(_ rank: Int, _ result: Result<T, Error>) { lock.withLock { results[rank] = result } }
    func get(_ rank: Int) -> Result<T, Error>? { lock.withLock { results[rank] } }
}
