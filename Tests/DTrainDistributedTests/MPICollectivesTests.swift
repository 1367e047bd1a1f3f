import XCTest
import Foundation
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
            "ok   non-blocking allreduce (test)",
            "ok   non-blocking allreduce (wait)",
            "ok   broadcast from rank 0",
            "ok   broadcast from rank \(ranks - 1)",
            "ok   allgather in rank order",
            "ok   barrier",
            "ok   duplicate communicator",
            "selftest-collectives: passed 12 checks on \(ranks) ranks",
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
            "selftest-collectives: FAILED 1 of 12 checks on 2 ranks",
        ], in: run)
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
        XCTAssertTrue(MPICommunicator.localRankAndSize([:]) == (0, 1))
        XCTAssertTrue(MPICommunicator.localRankAndSize(
            ["OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"]) == (3, 4))
    }

    // MARK: Running mpirun

    struct RunError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    struct Run {
        let status: Int32
        let output: String
        let command: String
        var lines: [String] { output.split(separator: "\n").map(String.init) }
        var transcript: String { "\(command) exited \(status):\n\(output)" }
    }

    func assertLines(_ expected: [String], in run: Run, file: StaticString = #filePath, line: UInt = #line) {
        let lines = Set(run.lines.map { $0.trimmingCharacters(in: .whitespaces) })
        for want in expected where !lines.contains(want) {
            XCTFail("missing line \"\(want)\" in output of \(run.transcript)", file: file, line: line)
        }
    }

    /// The build products directory: on macOS `Bundle(for:)` is the `*.xctest` bundle inside it; on
    /// Linux the tests run from the `*.xctest` executable and `Bundle(for:)` is its directory (checked:
    /// `.build/x86_64-unknown-linux-gnu/release`), so taking the parent there would be wrong.
    static var productsDirectory: URL {
        let bundle = Bundle(for: MPICollectivesTests.self).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    static func locateExecutable(_ name: String) throws -> URL {
        var candidates = [productsDirectory.appendingPathComponent(name)]
        // Linux fallback: the directory of the running .xctest executable.
        let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: "/proc/self/exe"), beside.path != candidates[0].path {
            candidates.append(beside)
        }
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) {
            return url
        }
        throw RunError(message:
            "the `\(name)` executable is not in the build products directory "
            + "(looked for \(candidates.map(\.path).joined(separator: ", "))); "
            + "run `swift build -c release` before `swift test -c release`, or use launch/test")
    }

    static func locateMPIRun() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let url = URL(fileURLWithPath: dir).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw RunError(message: "mpirun is not on PATH; install openmpi-bin (launch/setup does)")
    }

    /// Runs `mpirun -np ranks dtrain arguments...`, killing it after `timeout` seconds so a hang
    /// fails the test instead of blocking the suite.
    func mpirun(ranks: Int, _ arguments: [String]) throws -> Run {
        // A missing executable or mpirun throws, which fails the test (never skips it).
        let dtrain = try Self.locateExecutable("dtrain")
        let mpirun = try Self.locateMPIRun()
        var mpiArguments = ["-np", String(ranks), "--bind-to", "none"]
        if geteuid() == 0 { mpiArguments.append("--allow-run-as-root") }
        // Open MPI counts physical cores as slots; oversubscribing is harmless for these small runs.
        mpiArguments.append("--oversubscribe")
        mpiArguments += [dtrain.path] + arguments

        let log = FileManager.default.temporaryDirectory
            .appendingPathComponent("dtrain-mpirun-\(getpid())-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let sink = try FileHandle(forWritingTo: log)
        defer { try? sink.close() }

        let process = Process()
        process.executableURL = mpirun
        process.arguments = mpiArguments
        process.standardOutput = sink
        process.standardError = sink
        process.standardInput = FileHandle.nullDevice
        // The ranks learn they run under MPI from mpirun itself, not from this process.
        process.environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("OMPI_COMM_WORLD") && !key.hasPrefix("PMIX_")
        }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let command = ([mpirun.path] + mpiArguments).joined(separator: " ")
        try process.run()

        var timedOut = false
        if exited.wait(timeout: .now() + Self.timeout) == .timedOut {
            timedOut = true
            process.terminate()  // mpirun passes SIGTERM on to the ranks
            if exited.wait(timeout: .now() + 10) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                _ = exited.wait(timeout: .now() + 10)
            }
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let run = Run(status: timedOut ? -1 : process.terminationStatus, output: output, command: command)
        if timedOut { throw RunError(message: "timed out after \(Self.timeout) s (killed): \(run.transcript)") }
        return run
    }
}
