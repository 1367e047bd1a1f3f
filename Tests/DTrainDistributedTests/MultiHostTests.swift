import XCTest
import Foundation
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights

/// Training across two "hosts" on this machine: network namespaces joined by a bridge
/// (cluster/netns/hosts-up), orted started in each through cluster/netns/launch-agent instead of
/// ssh, MPI traffic over TCP between the namespaces only (cluster/netns/mpirun-hosts).
///
/// These tests need root (namespaces, veth pairs, a bridge). Without it, or without `ip netns`,
/// they fail with hosts-up's message rather than skip: CI runs as root, where they work. Every
/// test takes the hosts down again in its teardown, also when it fails.
final class MultiHostTests: XCTestCase {
    /// The repository root (this file is Tests/DTrainDistributedTests/MultiHostTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func script(_ name: String) -> URL { root.appendingPathComponent("cluster/netns/\(name)") }

    func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-netns-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Brings up `count` hosts and returns the hostfile; they are taken down in teardown.
    func hostsUp(_ count: Int, in dir: URL) throws -> URL {
        // Registered first, so that a failure anywhere below still cleans up.
        addTeardownBlock {
            if let down = try? ProcessRunner.run(Self.script("hosts-down"), [], timeout: 60), down.status != 0 {
                XCTFail("hosts-down failed: \(down.transcript)")
            }
        }
        // Leftovers of an earlier run that was killed before its teardown.
        _ = try ProcessRunner.run(Self.script("hosts-down"), [], timeout: 60)
        let hostfile = dir.appendingPathComponent("hostfile")
        let up = try ProcessRunner.run(Self.script("hosts-up"), ["--hostfile", hostfile.path, String(count)], timeout: 60)
        guard up.status == 0 else {
            XCTFail("cannot create network-namespace hosts (these tests need root and `ip netns`): \(up.transcript)")
            throw HostsUnavailable()
        }
        return hostfile
    }

    struct HostsUnavailable: Error {}

    /// `mpirun ARGS...` across the hosts of `hostfile`.
    func mpirunHosts(_ hostfile: URL, _ arguments: [String], timeout: TimeInterval = 300) throws -> ProcessRunner.Run {
        try ProcessRunner.run(Self.script("mpirun-hosts"), ["--hostfile", hostfile.path] + arguments, timeout: timeout)
    }

    /// Bytes sent and received by the root side of host i's veth pair.
    func trafficBytes(host i: Int) -> Int {
        ["rx_bytes", "tx_bytes"].map { name in
            let text = (try? String(contentsOfFile: "/sys/class/net/dtrain-v\(i)/statistics/\(name)", encoding: .utf8)) ?? "0"
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }.reduce(0, +)
    }

    /// Each rank runs in its own namespace, with that host's name and address.
    func testEachRankRunsOnItsOwnHost() throws {
        let hostfile = try hostsUp(2, in: scratch())
        let run = try mpirunHosts(hostfile, ["-np", "2", "/bin/sh", "-c",
                                             "echo rank $OMPI_COMM_WORLD_RANK on $(hostname) at $(ip -4 -o addr show dev eth0 | awk '{print $4}')"],
                                  timeout: 60)
        XCTAssertEqual(run.status, 0, run.transcript)
        XCTAssertTrue(run.lines.contains("rank 0 on dtrain-h1 at 10.77.0.11/24"), run.transcript)
        XCTAssertTrue(run.lines.contains("rank 1 on dtrain-h2 at 10.77.0.12/24"), run.transcript)
    }

    /// 2 hosts × 1 rank train exactly like 2 ranks on one host (resnet20, synchronized BatchNorm,
    /// 5 steps of batch 8 per rank, same seed), and the gradients really cross the network.
    ///
    /// The two runs do the same arithmetic: the same data shards, the same kernels with one thread
    /// each, and allreduces over two ranks, where every element is one addition a + b, the same
    /// whichever rank adds and whichever transport (shared memory or TCP) carries it. So the
    /// final checkpoints are bit-identical, parameters, BatchNorm buffers and optimizer state alike
    /// (observed: every tensor equal, relative difference 0), which is asserted, beside the
    /// looser 1e-5 relative bound on the parameter vector.
    func testTwoHostsTrainExactlyLikeTwoRanksOnOneHost() throws {
        let dir = scratch()
        let hostfile = try hostsUp(2, in: dir)
        let dtrain = try ProcessRunner.locateExecutable().path
        let common = ["train", "resnet20", "--epochs", "1", "--limit-train-batches", "5", "--batch-size", "8", "--no-val", "--sync-bn",
                      "--workers", "1", "--threads", "1", "--lr-schedule", "constant", "--lr", "0.002", "--seed", "3"]

        let one = try ProcessRunner.mpirun(ranks: 2, common + ["--output", dir.appendingPathComponent("one-host").path])
        XCTAssertEqual(one.status, 0, one.transcript)

        let before = (1...2).map { trafficBytes(host: $0) }
        let two = try mpirunHosts(hostfile, ["-np", "2", dtrain] + common + ["--output", dir.appendingPathComponent("two-hosts").path])
        XCTAssertEqual(two.status, 0, two.transcript)
        XCTAssertTrue(two.output.contains("2 rank(s)"), two.transcript)
        // 5 gradient allreduces of 269,722 float32 (1 MB) each: well over 5 MB through each
        // host's link (plus synchronized BatchNorm, the start-up broadcast and metrics).
        let gradientBytes = 5 * 269_722 * 4
        for i in 1...2 {
            let moved = trafficBytes(host: i) - before[i - 1]
            XCTAssertGreaterThan(moved, gradientBytes, "only \(moved) bytes crossed host \(i)'s link")
        }

        let a = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("one-host/checkpoint-last.safetensors"))
        let b = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("two-hosts/checkpoint-last.safetensors"))
        XCTAssertEqual(a.names.sorted(), b.names.sorted())
        var diff = 0.0, norm = 0.0, parameters = 0, differing: [String] = []
        for name in a.names {
            if try a.bytes(name) != b.bytes(name) { differing.append(name) }
            guard !name.hasPrefix("optimizer."), !name.hasSuffix("num_batches_tracked"), !name.contains("running_") else { continue }
            let x = try a.floats(name), y = try b.floats(name)
            diff += zip(x, y).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
            norm += x.map { Double($0) * Double($0) }.reduce(0, +)
            parameters += 1
        }
        XCTAssertEqual(parameters, try ModelZoo.make("resnet20").parameters.count)
        let relative = (diff / norm).squareRoot()
        XCTAssertLessThan(relative, 1e-5, "one-host and two-host weights differ by \(relative) relative")
        XCTAssertEqual(differing, [], "tensors not bit-identical between the one-host and two-host runs (relative difference \(relative))")
        XCTAssertEqual(try b.int64s("bn1.num_batches_tracked"), [5])
    }

    /// Taking one host's link down mid-run (no connection is closed: packets are just lost) ends
    /// the job non-zero within 60 s instead of hanging.
    ///
    /// mpirun notices first: its keepalive to the lost host's daemon (about 11 s with
    /// mpirun-hosts' settings) reports "lost communication with a remote daemon" and it ends the
    /// job. dtrain's watchdog (--collective-timeout 60 here) is the second line; it must fire later
    /// than mpirun's keepalive, because a rank's abort makes mpirun send the lost daemon a kill
    /// order, and an unacknowledged send suspends keepalives until TCP gives up (~15 minutes).
    func testCuttingAHostOffEndsTheJob() throws {
        let dir = scratch()
        let hostfile = try hostsUp(2, in: dir)
        let dtrain = try ProcessRunner.locateExecutable().path
        let log = dir.appendingPathComponent("mpirun.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let sink = try FileHandle(forWritingTo: log)
        defer { try? sink.close() }

        let process = Process()
        process.executableURL = Self.script("mpirun-hosts")
        process.arguments = ["--hostfile", hostfile.path, "-np", "2", dtrain, "train", "resnet20", "--epochs", "3", "--batch-size", "8",
                             "--no-val", "--workers", "1", "--threads", "1", "--print-freq", "1", "--collective-timeout", "60",
                             "--output", dir.appendingPathComponent("run").path]
        process.standardOutput = sink
        process.standardError = sink
        process.standardInput = FileHandle.nullDevice
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_COMM_WORLD") && !$0.key.hasPrefix("PMIX_") }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func output() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        // Training is under way across both hosts once steps complete.
        let deadline = Date().addingTimeInterval(120)
        while !output().contains("step 3/") && Date() < deadline && process.isRunning { usleep(200_000) }
        XCTAssertTrue(output().contains("step 3/"), "training never got going:\n\(output())")
        guard process.isRunning else { return XCTFail("mpirun ended before the cut:\n\(output())") }

        let down = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "link", "set", "dtrain-v2", "down"], timeout: 10)
        XCTAssertEqual(down.status, 0, down.transcript)
        let cutAt = Date()
        let ended = exited.wait(timeout: .now() + 90) == .success
        let seconds = Date().timeIntervalSince(cutAt)
        XCTAssertTrue(ended, "the job still runs 90 s after host 2 was cut off:\n\(output())")
        guard ended else { return }
        XCTAssertLessThan(seconds, 60, "the job took \(seconds) s to end after the cut:\n\(output())")
        XCTAssertNotEqual(process.terminationStatus, 0, output())
        XCTAssertFalse(output().contains("done:"), output())
        XCTAssertTrue(output().contains("lost communication with a remote daemon") || output().contains("stalled for"),
                      "no report of the lost host:\n\(output())")
        print("cut-off job ended \(String(format: "%.1f", seconds)) s after the cut, status \(process.terminationStatus)")
    }
}
