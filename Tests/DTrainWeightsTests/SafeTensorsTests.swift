import XCTest
@testable import DTrainWeights

final class SafeTensorsTests: XCTestCase {
    func testRoundTripWithMetadata() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["epoch": "3", "note": "quote \" and \\"]
        w.add("conv1.weight", floats: [1, -2, 3.5, 0.25], shape: [1, 1, 2, 2])
        w.add("bn1.num_batches_tracked", int64s: [42], shape: [])
        let data = w.serialized()
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0)
        let f = try SafeTensorsFile(data: data)
        XCTAssertEqual(f.metadata["epoch"], "3")
        XCTAssertEqual(f.metadata["note"], "quote \" and \\")
        XCTAssertEqual(try f.floats("conv1.weight"), [1, -2, 3.5, 0.25])
        XCTAssertEqual(try f.entry("conv1.weight").shape, [1, 1, 2, 2])
        XCTAssertEqual(try f.int64s("bn1.num_batches_tracked"), [42])
        XCTAssertEqual(f.names, ["conv1.weight", "bn1.num_batches_tracked"])
    }

    func testTruncatedFileIsAClearError() {
        var w = SafeTensorsWriter()
        w.add("a", floats: [1, 2, 3], shape: [3])
        let data = w.serialized()
        XCTAssertThrowsError(try SafeTensorsFile(data: data.prefix(data.count - 4))) { error in
            XCTAssertTrue("\(error)".contains("outside"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(data: Data([1, 2, 3])))
    }

    /// A header whose shape overflows or is negative is an error, not a trap.
    func testHostileShapesAreRefused() {
        for shape in ["[4611686018427387904,4]", "[-1,-4]", "[9223372036854775807,9223372036854775807]"] {
            var text = "{\"a\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[0,16]}}"
            while text.utf8.count % 8 != 0 { text += " " }
            var data = Data()
            withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: Array(text.utf8))
            data.append(Data(count: 16))
            XCTAssertThrowsError(try SafeTensorsFile(data: data), shape) { error in
                XCTAssertTrue("\(error)".contains("do not hold shape"), "\(error)")
            }
        }
    }

    /// data_offsets whose end comes before their start are an error, not a trap (found by
    /// fuzzing: the range was formed before the offsets were checked).
    func testReversedDataOffsetsAreRefused() {
        for offsets in ["[16,0]", "[8,4]", "[9223372036854775807,0]"] {
            var text = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":\(offsets)}}"
            while text.utf8.count % 8 != 0 { text += " " }
            var data = Data()
            withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: Array(text.utf8))
            data.append(Data(count: 16))
            XCTAssertThrowsError(try SafeTensorsFile(data: data), offsets) { error in
                XCTAssertTrue("\(error)".contains("lies outside"), "\(error)")
            }
        }
    }

    func testHalfPrecisionConversion() {
        XCTAssertEqual(Float(halfBits: 0x3C00), 1)
        XCTAssertEqual(Float(halfBits: 0xC000), -2)
        XCTAssertEqual(Float(halfBits: 0x3555), 0.333251953125)
        XCTAssertEqual(Float(halfBits: 0x0001), 0x1p-24)
        XCTAssertEqual(Float(halfBits: 0x7C00), .infinity)
    }
}
