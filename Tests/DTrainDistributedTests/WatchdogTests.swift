import XCTest
import Foundation
import DTrainCore
@testable import DTrainDistributed

/// The stall watchdog in one process, over a communicator whose collectives take as long as told.
/// (Under mpirun: MPICollectivesTests.testStalledRankAbortsTheJob.)
final class WatchdogTests: XCTestCase {
    /// Rank 1 of 2; every collective (and every wait of a non-blocking one) takes `delay` seconds.
    final class SlowCommunicator: Communicator {
        var delay: Double
        init(delay: Double) { self.delay = delay }
        var rank: Int { 1 }
        var size: Int { 2 }
        var localRank: Int { 1 }
        var localSize: Int { 2 }
        func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws { Thread.sleep(forTimeInterval: delay) }
        func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, root: Int) throws { Thread.sleep(forTimeInterval: delay) }
        func allgather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, type: CollectiveType) throws { Thread.sleep(forTimeInterval: delay) }
        func barrier() throws { Thread.sleep(forTimeInterval: delay) }
        func abort(code: Int32) -> Never { fatalError("abort(\(code))") }
        func duplicate() throws -> Communicator { SlowCommunicator(delay: delay) }
        func startAllreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType, op: ReduceOp) throws -> PendingCollective {
            let delay = self.delay
            return PendingCollective(test: { false }, wait: { Thread.sleep(forTimeInterval: delay) })
        }
    }

    /// Lines the watchdog reported.
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    func watched(delay: Double, timeout: Double = 1) -> (WatchdogCommunicator, SlowCommunicator, Reports) {
        let reports = Reports()
        let base = SlowCommunicator(delay: delay)
        let comm = WatchdogCommunicator(wrapping: base, timeout: timeout, purpose: "metrics", onStall: { reports.add($0) })
        addTeardownBlock { comm.watchdog.stop() }
        return (comm, base, reports)
    }

    func testStalledAllreduceIsReportedOnceNamingTheOperation() throws {
        let (comm, _, reports) = watched(delay: 2.5)
        var values = [Float](repeating: 1, count: 5)
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0) }
        XCTAssertEqual(reports.all, ["rank 1: allreduce of 5 float32 stalled for 1 s (metrics)"])
    }

    func testLabelledViewsAndBroadcastsAreNamed() throws {
        let (comm, _, reports) = watched(delay: 2.5)
        var values = [Double](repeating: 0, count: 3)
        try values.withUnsafeMutableBytes {
            try comm.labelled("initial state broadcast").broadcast($0.baseAddress!, count: 3, type: .float64, root: 0)
        }
        XCTAssertEqual(reports.all, ["rank 1: broadcast of 3 float64 from rank 0 stalled for 1 s (initial state broadcast)"])
    }

    /// The wait of a non-blocking allreduce on a duplicate (the overlapped gradient buckets) is
    /// watched; starting it is not a wait.
    func testWaitOfANonBlockingAllreduceOnADuplicateIsWatched() throws {
        let (comm, _, reports) = watched(delay: 2.5)
        let dup = try comm.duplicate().labelled("gradient bucket 2 of 3")
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 28, alignment: 8)
        defer { buffer.deallocate() }
        let pending = try dup.startAllreduce(buffer, count: 7, type: .float32, op: .sum)
        XCTAssertFalse(try pending.test())
        XCTAssertEqual(reports.all, [])
        try pending.wait()
        XCTAssertEqual(reports.all, ["rank 1: non-blocking allreduce of 7 float32 stalled for 1 s (gradient bucket 2 of 3)"])
    }

    /// Collectives that finish in time, however many and however long the idle time between them,
    /// are never reported.
    func testCollectivesThatFinishInTimeAreNotReported() throws {
        let (comm, base, reports) = watched(delay: 0.5)
        var values = [Float](repeating: 1, count: 4)
        for _ in 0..<4 { try values.withUnsafeMutableBufferPointer { try comm.allreduce($0) } }
        try comm.barrier()
        base.delay = 0
        for _ in 0..<10_000 { try values.withUnsafeMutableBufferPointer { try comm.allreduce($0) } }
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(reports.all, [])
        // A look far in the future finds nothing in progress either.
        comm.watchdog.check(now: monotonicNanoseconds() + 3_600_000_000_000)
        XCTAssertEqual(reports.all, [])
    }

    /// A plain communicator's labelled view is the communicator itself.
    func testLabelledIsIdentityWithoutAWatchdog() {
        let comm = SingleProcessCommunicator()
        XCTAssertTrue(comm.labelled("anything") === comm)
    }
}
