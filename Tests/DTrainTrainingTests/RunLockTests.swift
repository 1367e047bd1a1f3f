import XCTest
import Foundation
@testable import DTrainTraining

final class RunLockTests: XCTestCase {
    private func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("runlock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testSecondHolderIsRefusedNamingTheFirst() throws {
        let dir = try directory()
        let first = try RunLock(directory: dir)
        XCTAssertThrowsError(try RunLock(directory: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("is in use by another dtrain job"), text)
            XCTAssertTrue(text.contains("pid \(getpid())"), text)
            XCTAssertFalse(text.contains("\n"), "one line")
        }
        first.release()
        XCTAssertNoThrow(try RunLock(directory: dir), "released: the next job takes it")
    }

    /// A holder that dies (kill -9) leaves no lock behind: the kernel drops flock locks with the
    /// process. util-linux's flock(1) holds the same kind of lock as RunLock.
    func testLockOfAKilledProcessIsFree() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else { throw XCTSkip("needs /usr/bin/flock (util-linux)") }
        let dir = try directory()
        let lockFile = dir.appendingPathComponent(RunLock.fileName).path
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--no-fork", "-x", lockFile, "sleep", "60"]  // sleep itself holds the lock
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        var refused = false
        for _ in 0..<100 {  // until flock(1) holds it
            do { let probe = try RunLock(directory: dir); probe.release(); usleep(20_000) } catch { refused = true; break }
        }
        XCTAssertTrue(refused, "a lock held by another process refuses RunLock")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        var taken = false
        for _ in 0..<100 {
            if (try? RunLock(directory: dir)) != nil { taken = true; break }
            usleep(20_000)
        }
        XCTAssertTrue(taken, "the killed holder's lock is gone")
    }

    func testStaleTemporaryFilesAreRemoved() throws {
        let dir = try directory()
        for name in [".checkpoint-last.safetensors.tmp-4242", "checkpoint-last.safetensors", "metrics.jsonl", RunLock.fileName] {
            FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data("x".utf8))
        }
        let removed = RunDirectory(dir).removeStaleTemporaryFiles()
        XCTAssertEqual(removed, [".checkpoint-last.safetensors.tmp-4242"])
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(left, [RunLock.fileName, "checkpoint-last.safetensors", "metrics.jsonl"])
    }
}
