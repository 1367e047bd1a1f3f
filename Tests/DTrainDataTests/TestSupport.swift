import Foundation
import XCTest
@testable import DTrainData

/// A fresh directory under the system temporary directory, removed by `remove()`.
final class TemporaryDirectory {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }

    /// Creates the directory `relative` (and parents) and returns its path.
    @discardableResult
    func makeDirectory(_ relative: String) throws -> String {
        let path = url.appendingPathComponent(relative).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `data` to `relative`, creating parent directories, and returns its path.
    @discardableResult
    func write(_ data: Data, to relative: String) throws -> String {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
        return file.path
    }
}

/// A smooth RGB test pattern (gradients), which JPEG reproduces closely.
func smoothImage(width: Int, height: Int) -> DecodedImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = 3 * (y * width + x)
            pixels[i] = UInt8(x * 255 / max(1, width - 1))
            pixels[i + 1] = UInt8(y * 255 / max(1, height - 1))
            pixels[i + 2] = UInt8(128 + (x + y) * 127 / max(1, width + height - 2))
        }
    }
    return DecodedImage(width: width, height: height, pixels: pixels)
}

func meanAbsoluteError(_ a: [UInt8], _ b: [UInt8]) -> Double {
    precondition(a.count == b.count)
    var total = 0
    for i in a.indices { total += abs(Int(a[i]) - Int(b[i])) }
    return Double(total) / Double(max(1, a.count))
}

/// The decoded pixels Pillow gives for each fixture (Fixtures/expected.json).
struct FixtureExpectation: Decodable {
    let width: Int
    let height: Int
    let rgb: [UInt8]
}

func fixtureURL(_ name: String) throws -> URL {
    try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil), "missing fixture \(name)")
}

func fixtureData(_ name: String) throws -> Data { try Data(contentsOf: fixtureURL(name)) }

func fixtureExpectations() throws -> [String: FixtureExpectation] {
    try JSONDecoder().decode([String: FixtureExpectation].self, from: fixtureData("expected.json"))
}

/// Asserts that `body` throws a `DataError` whose reason contains `fragment`.
func assertDataError<T>(_ fragment: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected a DataError containing \"\(fragment)\"", file: file, line: line)
    } catch let error as DataError {
        XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" does not contain \"\(fragment)\"", file: file, line: line)
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
}
