import XCTest
import Foundation
import DTrainTestSupport
import DTrainCore
@testable import DTrainDistributed

/// Runs `dtrain selftest-collectives` under `mpirun` with 2 and 3 ranks, so the MPI communicator is
/// tested across real processes. The `dtrain` executable must already be built into the same build
/// products directory as this test bundle (`swift build -c release` before `swift test -c release`,
/// as `launch/test` does).
final class MPICollectivesTests: XCTestCase {
    /// Seconds before a run counts as hung (DTRAIN_TEST_MPIRUN_TIMEOUT overrides).
    static let timeout: TimeInterval =
        TimeInterval(ProcessInfo.processInfo.environment["DTRAIN_TEST_MPIRUN_TIMEOUT"] ?? "") ?? 120

    /// The checks the self-test reports, one line each from rank 0 (ranks are filled in per run).
    static func expectedLines(ranks: Int) -> [String] {
        [
            "selftest-collectives: \(ranks) ranks, thread level multiple",
            "ok   allreduce float32 sum",
            "ok   allreduce float64 sum",
            "ok   allreduce int64 sum",
            "ok   allreduce int64 max/min",
            "ok   allreduce float32 sum of 3000000 elements",
            "ok   allreduce bfloat16 sum (blocking and non-blocking)",
            "ok   allreduce bfloat16 max refused",
            "ok   non-blocking allreduce (test)",
            "ok   non-blocking allreduce (wait)",
            "ok   broadcast from rank 0",
            "ok   broadcast from rank \(ranks - 1)",
            "ok   allgather in rank order",
            "ok   barrier",
            "ok   duplicate communicator",
            "selftest-collectives: passed 14 checks on \(ranks) ranks",
        ]
    }

    func testCollectivesOnTwoRanks() throws {
        let run = try mpirun(ranks: 2, ["selftest-collectives"])
        XCTAssertEqual(run.status, 0, run.transcript)
        assertLines(Self.expectedLines(ranks: 2), in: run)
    }

    func testCollectivesOnThreeOversubscribedRanks() throws {
        let run = try mpirun(ranks: 3, ["selftest-collectives"])
        XCTAssertEqual(run.status, 0, run.transcript)
        assertLines(Self.expectedLines(ranks: 3), in: run)
    }

    /// A wrong result on one rank fails the check on every rank and the job's exit status.
    func testMismatchOnOneRankFailsTheJob() throws {
        let run = try mpirun(ranks: 2, ["selftest-collectives", "--large-count", "1000", "--inject-failure-on-rank", "1"])
        XCTAssertNotEqual(run.status, 0, run.transcript)
        assertLines([
            "FAIL allreduce float32 sum (wrong on 2 of 2 ranks)",
            "ok   allreduce float64 sum",
            "selftest-collectives: FAILED 1 of 14 checks on 2 ranks",
        ], in: run)
    }

    /// A rank that is 30 s late for a collective: with --collective-timeout 3 the other rank's
    /// watchdog names the operation (a blocking allreduce, then the wait of a non-blocking one)
    /// and aborts the job well before the sleeper wakes.
    func testStalledRankAbortsTheJob() throws {
        for (point, line) in [("allreduce", "dtrain: rank 0: allreduce of 1000 float32 stalled for 3 s (allreduce float32 sum); aborting the job"),
                              ("wait", "dtrain: rank 0: non-blocking allreduce of 100003 float32 stalled for 3 s (non-blocking allreduce (wait)); aborting the job")] {
            let start = Date()
            let run = try mpirun(ranks: 2, ["selftest-collectives", "--large-count", "1000", "--collective-timeout", "3",
                                            "--stall-rank", "1", "--stall-seconds", "30", "--stall-in", point])
            let seconds = Date().timeIntervalSince(start)
            XCTAssertNotEqual(run.status, 0, run.transcript)
            XCTAssertLessThan(seconds, 20, "the stalled job took \(seconds) s to end: \(run.transcript)")
            assertLines([line], in: run)
        }
    }

    /// Without mpirun's environment the communicator is a world of one and MPI is never started.
    func testWithoutMPIRunTheCommunicatorIsSingleProcess() throws {
        XCTAssertFalse(Launch.isUnderMPI(["PATH": "/usr/bin", "HOME": "/root"]))
        XCTAssertTrue(Launch.isUnderMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Launch.isUnderMPI(["PMIX_RANK": "0"]))
        XCTAssertFalse(Launch.isUnderMPI, "the test process itself must not run under mpirun")

        let comm = try makeCommunicator()
        XCTAssertTrue(comm is SingleProcessCommunicator)
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertEqual(comm.localRank, 0)
        XCTAssertEqual(comm.localSize, 1)
        XCTAssertNil(MPICommunicator.providedThreadLevel)
        XCTAssertFalse(MPICommunicator.isInitialized)

        var values: [Float] = [1, 2, 3]
        let pending = try values.withUnsafeMutableBytes {
            try comm.startAllreduce($0.baseAddress!, count: 3, type: .float32, op: .sum)
        }
        XCTAssertTrue(pending.isComplete)
        XCTAssertTrue(try pending.test())
        try pending.wait()
        XCTAssertEqual(values, [1, 2, 3])
    }

    func testLocalRankAndSizeComeFromTheLauncher() {
        XCTAssertEqual(NodeRanks(environment: [:]), NodeRanks(localRank: 0, localSize: 1))
        XCTAssertEqual(NodeRanks(environment: ["OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"]),
                       NodeRanks(localRank: 3, localSize: 4))
    }

    // MARK: Running mpirun

    typealias Run = ProcessRunner.Run

    func assertLines(_ expected: [String], in run: Run, file: StaticString = #filePath, line: UInt = #line) {
        let lines = Set(run.lines.map { $0.trimmingCharacters(in: .whitespaces) })
        for want in expected where !lines.contains(want) {
            XCTFail("missing line \"\(want)\" in output of \(run.transcript)", file: file, line: line)
        }
    }

    /// Runs `mpirun -np ranks dtrain arguments...`; a hang fails the test after `timeout` seconds.
    func mpirun(ranks: Int, _ arguments: [String]) throws -> Run {
        try ProcessRunner.mpirun(ranks: ranks, arguments, timeout: Self.timeout)
    }
}
