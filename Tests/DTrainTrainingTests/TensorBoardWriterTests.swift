import XCTest
import Foundation
@testable import DTrainTraining

final class TensorBoardWriterTests: XCTestCase {
    func testCRC32CKnownValues() {
        // The check value of CRC-32C (RFC 3720, appendix B.4) and the empty string.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
    }

    /// The same events as Tests/FixtureScripts/tensorboard_fixture.py writes with TensorBoard's
    /// own RecordWriter and protobuf messages: byte for byte.
    func testEventsEqualTensorBoardsOwnWriter() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/tensorboard/events", withExtension: "fixture"))
        let expected = [UInt8](try Data(contentsOf: url))
        var ours: [UInt8] = []
        ours += TFRecord.frame(TensorBoardEvent.fileVersionEvent(wallTime: 1_700_000_000.5))
        ours += TFRecord.frame(TensorBoardEvent.scalarsEvent([("train/loss", 2.302585), ("train/top1", 0)], step: 0, wallTime: 1_700_000_001.25))
        ours += TFRecord.frame(TensorBoardEvent.scalarsEvent([("train/loss", -1.5), ("lr", 1e-3), ("time/allreduce_wait_rank1", 0.125)],
                                                             step: 7, wallTime: 1_700_000_002))
        ours += TFRecord.frame(TensorBoardEvent.scalarsEvent([("val/loss", .nan), ("val/top5", 1)], step: 123_456_789, wallTime: 1_700_000_003.75))
        XCTAssertEqual(ours.count, expected.count)
        XCTAssertEqual(ours, expected)
        XCTAssertEqual(TFRecord.records(in: expected)?.count, 4)
    }

    func testFramingRejectsCorruption() {
        let framed = TFRecord.frame(TensorBoardEvent.fileVersionEvent(wallTime: 1))
        XCTAssertEqual(TFRecord.records(in: framed)?.count, 1)
        var flipped = framed
        flipped[14] ^= 1
        XCTAssertNil(TFRecord.records(in: flipped), "a flipped payload byte fails the record's checksum")
        XCTAssertNil(TFRecord.records(in: Array(framed.dropLast())), "a truncated record is refused")
        var huge = framed
        for i in 0..<8 { huge[i] = 0xFF }
        XCTAssertNil(TFRecord.records(in: huge), "a length past the end is refused")
    }

    func testWriterNamesTheFileAndAppendsReadableRecords() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let writer = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000, host: "node07")
        try writer.add([("train/loss", 0.5), ("lr", 0.1)], step: 3, wallTime: 1_700_000_001)
        try writer.add([], step: 4)
        XCTAssertEqual(writer.url.lastPathComponent, "events.out.tfevents.1700000000.node07")
        let second = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000, host: "node07")
        XCTAssertNotEqual(second.url, writer.url, "a second file in the same second does not overwrite the first")
        let records = try XCTUnwrap(TFRecord.records(in: [UInt8](Data(contentsOf: writer.url))))
        XCTAssertEqual(records.count, 2, "file version, then one event (an empty add writes nothing)")
        XCTAssertEqual(records[1], TensorBoardEvent.scalarsEvent([("train/loss", 0.5), ("lr", 0.1)], step: 3, wallTime: 1_700_000_001))
    }
}
