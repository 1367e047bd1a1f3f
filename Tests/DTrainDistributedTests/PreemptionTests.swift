import XCTest
import Foundation
import DTrainTestSupport
import DTrainWeights

/// Preemption: SIGTERM, SIGINT or SIGUSR1 make `dtrain train` finish its step, write
/// checkpoint-last there (all ranks agreeing on the step) and exit with status 75; resuming then
/// ends with the same weights, bit for bit, as a run never stopped. Real processes, alone and under
/// mpirun, signalled as Slurm signals them.
final class PreemptionTests: XCTestCase {
    func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-stop-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Two epochs of 10 steps, a progress line every step, checkpoints only at epoch ends.
    func trainArguments(output: URL, batchSize: Int = 16) -> [String] {
        ["train", "resnet20", "--epochs", "2", "--batch-size", String(batchSize), "--limit-train-batches", "10", "--limit-val-batches", "1",
         "--threads", "1", "--workers", "1", "--print-freq", "1", "--lr-schedule", "constant", "--lr", "0.05",
         "--output", output.path]
    }

    /// A process started with its output (stdout and stderr) going to a file that can be read while
    /// it runs.
    final class Started {
        let process = Process()
        let log: URL
        let exited = DispatchSemaphore(value: 0)

        init(_ executable: URL, _ arguments: [String], log: URL) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let sink = try FileHandle(forWritingTo: log)
            process.executableURL = executable
            process.arguments = arguments
            process.standardOutput = sink
            process.standardError = sink
            process.standardInput = FileHandle.nullDevice
            process.environment = ProcessInfo.processInfo.environment.filter {
                !$0.key.hasPrefix("OMPI_COMM_WORLD") && !$0.key.hasPrefix("PMIX_")
            }
            process.terminationHandler = { [exited] _ in exited.signal() }
            try process.run()
            try? sink.close()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Waits until the output contains `text` (false after `timeout` s or when the process ended).
        func waitForOutput(_ text: String, timeout: TimeInterval = 240) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline && process.isRunning {
                if output.contains(text) { return true }
                usleep(50_000)
            }
            return output.contains(text)
        }

        /// The exit status, or nil when the process is still running after `timeout` s (it is then killed).
        func waitForExit(timeout: TimeInterval = 120) -> Int32? {
            if exited.wait(timeout: .now() + timeout) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                return nil
            }
            return process.terminationStatus
        }
    }

    /// The MPI rank of process `pid`, from the OMPI_COMM_WORLD_RANK mpirun gave it.
    func worldRank(of pid: Int32) -> Int? {
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let prefix = "OMPI_COMM_WORLD_RANK="
        return environ.split(separator: 0).lazy.map { String(decoding: $0, as: UTF8.self) }
            .first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    func assertSameCheckpoints(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try SafeTensorsFile(contentsOf: a), y = try SafeTensorsFile(contentsOf: b)
        XCTAssertEqual(x.names.sorted(), y.names.sorted(), file: file, line: line)
        XCTAssertTrue(x.names.contains("optimizer.momentum_buffer.conv1.weight"), file: file, line: line)
        for name in x.names {
            XCTAssertEqual(try x.bytes(name), try y.bytes(name), "\(name) differs after the stop and resume", file: file, line: line)
        }
    }

    func mpirunArguments(ranks: Int) throws -> [String] {
        var args = ["-np", String(ranks), "--bind-to", "none", "--oversubscribe"]
        if geteuid() == 0 { args.append("--allow-run-as-root") }
        return args + [try ProcessRunner.locateExecutable().path]
    }

    /// SIGTERM to a single process after a few steps: exit status 75, one line naming the
    /// checkpoint, and --resume ends with the weights of the run never stopped.
    func testSIGTERMSavesTheLastCheckpointAndTheResumedRunEqualsTheUninterruptedOne() throws {
        let dir = scratch()
        let full = dir.appendingPathComponent("full"), split = dir.appendingPathComponent("split")
        let uninterrupted = try ProcessRunner.dtrain(trainArguments(output: full))
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.transcript)

        let run = try Started(try ProcessRunner.locateExecutable(), trainArguments(output: split), log: dir.appendingPathComponent("log"))
        XCTAssertTrue(run.waitForOutput("epoch 1/2 step 2/10"), "no progress line: \(run.output)")
        kill(run.process.processIdentifier, SIGTERM)
        let status = run.waitForExit()
        XCTAssertEqual(status, 75, run.output)
        let last = split.appendingPathComponent("checkpoint-last.safetensors")
        let stopLines = run.output.split(separator: "\n").filter { $0.contains("stopped by SIGTERM") }
        XCTAssertEqual(stopLines.count, 1, run.output)
        XCTAssertTrue(stopLines.first?.contains(last.path) ?? false, run.output)
        XCTAssertTrue(stopLines.first?.contains("--resume") ?? false, run.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: last.path), "no checkpoint-last after the stop: \(run.output)")
        XCTAssertFalse(run.output.contains("done:"), "the stopped run must not report itself done: \(run.output)")

        let resumed = try ProcessRunner.dtrain(trainArguments(output: split) + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.transcript)
        try assertSameCheckpoints(full.appendingPathComponent("checkpoint-last.safetensors"), last)
    }

    /// A second stop signal ends the process at once, without waiting for the step.
    ///
    /// Both signals must land within one step: batches of 128 on one thread take a few hundred
    /// milliseconds a step, against 20 ms between the signals (at 16 a step took 40 ms, and the
    /// first stop sometimes finished, checkpoint and all, before the second signal came).
    func testASecondSignalExitsAtOnce() throws {
        let dir = scratch()
        let run = try Started(try ProcessRunner.locateExecutable(),
                              trainArguments(output: dir.appendingPathComponent("run"), batchSize: 128),
                              log: dir.appendingPathComponent("log"))
        XCTAssertTrue(run.waitForOutput("epoch 1/2 step 1/10"), "no progress line: \(run.output)")
        kill(run.process.processIdentifier, SIGINT)
        usleep(20_000)
        kill(run.process.processIdentifier, SIGINT)
        let status = run.waitForExit(timeout: 30)
        XCTAssertEqual(status, 128 + SIGINT, run.output)
        XCTAssertTrue(run.output.contains("second stop signal"), run.output)
    }

    /// Under mpirun, SIGTERM to both ranks (as Slurm sends it): both stop after the same step,
    /// rank 0 writes checkpoint-last, the job exits 75, and resuming under mpirun ends with the
    /// weights of the uninterrupted 2-rank run.
    ///
    /// With --sync-bn, so that every tensor is bit-exact: without it each rank's BatchNorm running
    /// statistics follow its own shard, and a checkpoint (which holds their cross-rank mean,
    /// `--dist-bn`) restarts them from that mean at the stop, where the uninterrupted run only
    /// averages them at its next evaluation. Weights and optimizer state are bit-exact either way.
    func testSIGTERMToBothRanksUnderMPIRunStopsTogetherAndResumesBitExactly() throws {
        let dir = scratch()
        let full = dir.appendingPathComponent("full"), split = dir.appendingPathComponent("split")
        func synced(output: URL) -> [String] { trainArguments(output: output) + ["--sync-bn"] }
        let uninterrupted = try ProcessRunner.mpirun(ranks: 2, synced(output: full), timeout: 300)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.transcript)

        let run = try Started(try ProcessRunner.locateMPIRun(), try mpirunArguments(ranks: 2) + synced(output: split),
                              log: dir.appendingPathComponent("log"))
        defer { if run.process.isRunning { kill(run.process.processIdentifier, SIGKILL) } }
        XCTAssertTrue(run.waitForOutput("epoch 1/2 step 2/10"), "no progress line: \(run.output)")
        let ranks = ProcessRunner.childProcesses(of: run.process.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "ranks of mpirun: \(ranks)")
        for rank in ranks { kill(rank, SIGTERM) }
        let status = run.waitForExit(timeout: 120)
        XCTAssertEqual(status, 75, run.output)
        let last = split.appendingPathComponent("checkpoint-last.safetensors")
        XCTAssertEqual(run.output.split(separator: "\n").filter { $0.contains("stopped by SIGTERM") && $0.contains(last.path) }.count, 1,
                       run.output)

        let resumed = try ProcessRunner.mpirun(ranks: 2, synced(output: split) + ["--resume"], timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.transcript)
        try assertSameCheckpoints(full.appendingPathComponent("checkpoint-last.safetensors"), last)
    }

    /// SIGUSR1 to rank 1 alone: rank 0, never signalled, learns of it in the step's allreduce, so
    /// both ranks stop after the same step and rank 0 writes the checkpoint.
    func testASignalToOneRankStopsEveryRank() throws {
        let dir = scratch()
        let output = dir.appendingPathComponent("run")
        let run = try Started(try ProcessRunner.locateMPIRun(), try mpirunArguments(ranks: 2) + trainArguments(output: output),
                              log: dir.appendingPathComponent("log"))
        defer { if run.process.isRunning { kill(run.process.processIdentifier, SIGKILL) } }
        XCTAssertTrue(run.waitForOutput("epoch 1/2 step 2/10"), "no progress line: \(run.output)")
        let ranks = ProcessRunner.childProcesses(of: run.process.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "ranks of mpirun: \(ranks)")
        guard let victim = ranks.first(where: { worldRank(of: $0) == 1 }) else { return XCTFail("no rank 1 among \(ranks)") }
        kill(victim, SIGUSR1)
        XCTAssertEqual(run.waitForExit(timeout: 120), 75, run.output)
        XCTAssertTrue(run.output.contains("stopped by a signal on another rank"), run.output)
        let info = try Checkpoint.read(output.appendingPathComponent("checkpoint-last.safetensors")).info
        XCTAssertGreaterThanOrEqual(info.globalStep, 2)
        XCTAssertFalse(run.output.contains("done:"), run.output)
    }
}
