import Foundation
import XCTest
import DTrainCore
@testable import DTrainData

/// An ImageFolder with unreadable and unusual files among good ones, loaded for a whole epoch
/// through the real path: `DataSourceFactory` → `ImageFolderSource` → `BatchLoader` with workers.
final class PlantedBadFilesTests: XCTestCase {
    var tmp: TemporaryDirectory!

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    struct Epoch: Equatable {
        var images: [[Float]] = []
        var labels: [[Int32]] = []
        var indices: [[Int]] = []
        var warnings: [String] = []
        var skipped = 0
    }

    /// Files in index order (the folder source sorts classes, then names). The unreadable ones are
    /// a zero-byte file, a JPEG cut in half and a text file named .jpg; a 16-bit PNG, a CMYK JPEG,
    /// a 1×1 image and a 4000×3000 JPEG are unusual but must load.
    func plantFolder() throws -> (root: String, bad: [String: String]) {
        let jpeg = JPEGCodec.encode(smoothImage(width: 64, height: 48), quality: 90)
        // Cut halfway through the entropy-coded data, after the start-of-scan segment.
        let scan = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        let truncated = jpeg.prefix(scan + (jpeg.count - scan) / 2)
        let files: [(String, Data)] = [
            ("train/a/0-good.jpg", jpeg),
            ("train/a/1-empty.jpg", Data()),
            ("train/a/2-good.png", PNGCodec.encode(smoothImage(width: 30, height: 41))),
            ("train/a/3-truncated.jpg", truncated),
            ("train/a/4-text.jpg", Data("this is not an image\n".utf8)),
            ("train/a/5-good.jpg", JPEGCodec.encode(smoothImage(width: 33, height: 70))),
            ("train/b/0-sixteen-bit.png", try fixtureData("rgb16.png")),
            ("train/b/1-cmyk.jpg", try fixtureData("cmyk.jpg")),
            ("train/b/2-one-pixel.png", PNGCodec.encode(DecodedImage(width: 1, height: 1, pixels: [200, 10, 90]))),
            ("train/b/3-huge.jpg", JPEGCodec.encode(smoothImage(width: 4000, height: 3000), quality: 90)),
            ("train/b/4-good.jpg", JPEGCodec.encode(smoothImage(width: 50, height: 50))),
            ("train/b/5-good.png", PNGCodec.encode(smoothImage(width: 9, height: 12))),
        ]
        for (name, data) in files { try tmp.write(data, to: name) }
        let root = tmp.path + "/train"
        return (tmp.path, ["\(root)/a/1-empty.jpg": "empty file",
                           "\(root)/a/3-truncated.jpg": "truncated or corrupt JPEG",
                           "\(root)/a/4-text.jpg": "not a JPEG or PNG image"])
    }

    func loadEpoch(_ source: any DataSource, workers: Int, resolution: Int) throws -> Epoch {
        let loader = BatchLoader(source: source, transform: Preset.imagenet.train(resolution: resolution), batchSize: 4,
                                 resolution: resolution, workers: workers, seed: 11, rank: 0)
        defer { loader.stop() }
        var epoch = Epoch()
        loader.warningHandler = { epoch.warnings.append($0) }
        loader.start(epoch: 2, indices: Array(0..<source.count))
        while let batch = try loader.next() {
            XCTAssertEqual(batch.count, 4)
            XCTAssertEqual(batch.images.batch, 4)
            XCTAssertEqual(batch.images.shape, FeatureShape(height: resolution, width: resolution, channels: 3))
            let values = batch.images.toArray()
            XCTAssertEqual(values.count, 4 * resolution * resolution * 3)
            XCTAssertTrue(values.allSatisfy { $0.isFinite })
            epoch.images.append(values)
            epoch.labels.append(Array(batch.labelBuffer))
            epoch.indices.append(Array(batch.indices))
        }
        epoch.skipped = loader.skippedThisEpoch
        return epoch
    }

    func testWholeEpochSkipsExactlyTheUnreadableFilesDeterministically() throws {
        let (root, bad) = try plantFolder()
        let source = try DataSourceFactory.open(path: root, dataset: nil, split: .train)
        XCTAssertEqual(source.count, 12)

        let serial = try loadEpoch(source, workers: 0, resolution: 24)
        let threaded = try loadEpoch(source, workers: 2, resolution: 24)
        XCTAssertEqual(serial.skipped, 3)
        XCTAssertEqual(serial.images.count, 3, "every batch full")
        // Each unreadable file is replaced by the next readable one: 1 → 2, 3 → 5 (4 is bad too), 4 → 5.
        XCTAssertEqual(serial.indices, [[0, 2, 2, 5], [5, 5, 6, 7], [8, 9, 10, 11]])
        XCTAssertEqual(serial.labels, [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
        // Bit-identical batches and the same warnings whatever the worker count.
        XCTAssertEqual(threaded, serial)

        // The warnings name each bad file and why, then count them at the end of the epoch.
        XCTAssertEqual(serial.warnings.count, 4, serial.warnings.joined(separator: "\n"))
        for (path, reason) in bad {
            XCTAssertEqual(serial.warnings.filter { $0.contains("unreadable sample \(path): \(reason)") }.count, 1,
                           "no warning for \(path): \(serial.warnings)")
        }
        XCTAssertTrue(serial.warnings[3].contains("3 unreadable samples replaced in epoch 2"), serial.warnings[3])
    }
}
