import Foundation
import XCTest
@testable import DTrainCore

final class MessageTextTests: XCTestCase {
    func testPathsWithControlCharactersAreEscaped() {
        XCTAssertEqual(MessageText.path("/data/plain name/ünï.jpg"), "/data/plain name/ünï.jpg")
        XCTAssertEqual(MessageText.path("a\\b"), "a\\b", "a name without control characters is unchanged")
        XCTAssertEqual(MessageText.path("a\nb\tc\rd\u{1B}[0m"), "a\\nb\\tc\\rd\\e[0m")
        XCTAssertEqual(MessageText.path("x\u{7}\u{7F}\u{85}\\y\n"), "x\\u{7}\\u{7F}\\u{85}\\\\y\\n")
    }

    func testFoundationErrorsBecomeStrerrorReasons() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-message-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)

        // A directory below a regular file: Foundation reports NSCocoaErrorDomain 512.
        var caught: Error?
        do { try FileManager.default.createDirectory(at: file.appendingPathComponent("sub"), withIntermediateDirectories: true) } catch { caught = error }
        let error = try XCTUnwrap(caught)
        for text in [MessageText.reason(error), MessageText.describe(error)] {
            XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
            XCTAssertFalse(text.contains("could not be completed"), text)
            XCTAssertTrue(text.contains(String(cString: strerror(ENOTDIR))) || text.contains(String(cString: strerror(EEXIST))), text)
        }

        // Reading a missing file.
        caught = nil
        do { _ = try Data(contentsOf: dir.appendingPathComponent("missing\nname")) } catch { caught = error }
        let missing = try XCTUnwrap(caught)
        XCTAssertEqual(MessageText.reason(missing), String(cString: strerror(ENOENT)))
        XCTAssertFalse(MessageText.describe(missing).contains("\n"), MessageText.describe(missing))

        // Cocoa codes without an underlying POSIX error still get words, not numbers.
        XCTAssertEqual(MessageText.reason(CocoaError(.fileWriteOutOfSpace)), String(cString: strerror(ENOSPC)))
        XCTAssertEqual(MessageText.reason(CocoaError(.fileWriteUnknown)), "write failed")
        // Errors that are not Foundation's describe themselves.
        struct Own: Error, CustomStringConvertible { var description: String { "own reason" } }
        XCTAssertEqual(MessageText.describe(Own()), "own reason")
    }

    func testAtomicWriteFailuresNameTheTargetNotTheTemporaryFile() {
        let target = URL(fileURLWithPath: "/nonexistent-dtrain-dir/out.json")
        do {
            try AtomicFile.write(Data("x".utf8), to: target)
            XCTFail("writing into a missing directory succeeded")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("/nonexistent-dtrain-dir/out.json: "), text)
            XCTAssertFalse(text.contains(".tmp-"), text)
            XCTAssertTrue(text.contains(String(cString: strerror(ENOENT))), text)
        }
    }
}
