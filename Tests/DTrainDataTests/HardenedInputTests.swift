import DTrainCore
import Foundation
import XCTest
@testable import DTrainData

/// Inputs that lie about their sizes or hold absurd values are refused with a message naming the
/// file, before anything is allocated from the claimed sizes.
final class HardenedInputTests: XCTestCase {
    var tmp: TemporaryDirectory!

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    func testJPEGHeaderClaimingHugeDimensionsIsRefused() throws {
        // A real JPEG whose SOF0 frame header is patched to claim 65000x65000 (4.2 gigapixels).
        var jpeg = JPEGCodec.encode(smoothImage(width: 16, height: 16))
        let bytes = [UInt8](jpeg)
        guard let sof = (2..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }) else {
            return XCTFail("the encoder wrote no SOF0 marker")
        }
        // FF C0, length (2 bytes), precision (1 byte), height (2 bytes), width (2 bytes).
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xFD, 0xE8, 0xFD, 0xE8])
        assertDataError("image too large: 65000x65000") { try ImageCodec.decode(jpeg, path: "huge.jpg") }
    }

    func testPixelByteCountsAreOverflowChecked() {
        assertDataError("image too large") { try ImageCodec.byteCount(width: Int.max / 2, height: 3, channels: 3, path: "x") }
        assertDataError("image too large") { try ImageCodec.byteCount(width: 100_000, height: 100_000, channels: 3, path: "x") }
        assertDataError("image has no pixels") { try ImageCodec.byteCount(width: 0, height: 3, channels: 3, path: "x") }
        XCTAssertEqual(try ImageCodec.byteCount(width: 500, height: 375, channels: 4, path: "x"), 750_000)
    }

    func testOversizedSyntheticImagesAreRefusedNotAllocated() throws {
        let source = SyntheticSource(count: 2, classes: 2, width: 100_000, height: 100_000)
        assertDataError("image too large: 100000x100000") { try source.image(at: 0, targetSize: nil) }
        // Written as a dataset, every sample is reported as skipped instead of trapping.
        let result = try DatasetWriter.write(source, to: "\(tmp.path)/out", format: .png)
        XCTAssertEqual(result.written, 0)
        XCTAssertEqual(result.skipped.count, 2)
        XCTAssertTrue(result.skipped.allSatisfy { $0.contains("image too large") }, "\(result.skipped)")
    }

    func testTruncatedCIFARFileIsRefused() throws {
        try tmp.makeDirectory("cifar")
        // One whole record and part of a second one.
        try tmp.write(Data(repeating: 1, count: 3073 + 100), to: "cifar/test_batch.bin")
        assertDataError("test_batch.bin: size 3173 bytes is not a multiple of the 3073-byte cifar10 record") {
            try CIFARSource(directory: "\(tmp.path)/cifar", split: .val, variant: .cifar10)
        }
    }

    func testAnnotationListWithAbsurdLabelsOrPathsIsRefused() throws {
        try tmp.write(Data("a.png;9223372036854775807\n".utf8), to: "huge.txt")
        assertDataError("line 1: label 9223372036854775807 is not below the limit of 1000000 classes") {
            try AnnotationListSource(listFile: "\(tmp.path)/huge.txt")
        }
        try tmp.write(Data("a.png;1\nb.png;1000000\n".utf8), to: "limit.txt")
        assertDataError("line 2: label 1000000") { try AnnotationListSource(listFile: "\(tmp.path)/limit.txt") }
        try tmp.write(Data("a.png;99999999999999999999999\n".utf8), to: "overflow.txt")
        assertDataError("line 1: expected") { try AnnotationListSource(listFile: "\(tmp.path)/overflow.txt") }
        try tmp.write(Data("a.png\u{0}/etc/passwd;0\n".utf8), to: "nul.txt")
        assertDataError("line 1: the path contains a NUL character") { try AnnotationListSource(listFile: "\(tmp.path)/nul.txt") }
        // The largest allowed label still opens (numbered classes up to it).
        try tmp.write(Data("a.png;999999\n".utf8), to: "ok.txt")
        XCTAssertEqual(try AnnotationListSource(listFile: "\(tmp.path)/ok.txt").classNames.count, 1_000_000)
    }

    func testFileNamesWithControlCharactersAreEscapedInMessages() {
        let error = DataError(path: "/data/cat\nError: forged\t\u{1B}[31m.png", reason: "not a JPEG or PNG image")
        XCTAssertEqual(error.description, "/data/cat\\nError: forged\\t\\e[31m.png: not a JPEG or PNG image")
        XCTAssertFalse(error.description.contains("\n"))
        let garbled = DataError(path: "line:\nbad", reason: "x")
        assertDataError("line:\\nbad: x") { throw garbled }
    }

    func testOnlyDecodableExtensionsAreListed() throws {
        let image = smoothImage(width: 4, height: 4)
        // Every listed extension decodes: the format it names is one dtrain's codecs read.
        for (i, ext) in ImageFolderSource.imageExtensions.enumerated() {
            let format: ImageFormat = ext == ".png" ? .png : .jpeg
            XCTAssertTrue([".jpg", ".jpeg", ".png"].contains(ext), "\(ext) is listed but has no codec")
            try tmp.write(ImageCodec.encode(image, format: format), to: "data/a/\(i)\(ext.uppercased())")
        }
        let source = try ImageFolderSource(root: "\(tmp.path)/data")
        XCTAssertEqual(source.count, ImageFolderSource.imageExtensions.count)
        for i in 0..<source.count { XCTAssertEqual(try source.image(at: i, targetSize: nil).width, 4) }

        // torchvision's other extensions are not images to dtrain: a class of them has no images.
        for ext in [".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"] {
            XCTAssertFalse(ImageFolderSource.hasImageExtension("x" + ext), ext)
            try tmp.write(Data("BM\u{0}\u{0}\u{0}\u{0}".utf8), to: "other/b/x\(ext)")
        }
        try tmp.write(ImageCodec.encode(image, format: .png), to: "other/a/x.png")
        assertDataError("class folders without images: b") { try ImageFolderSource(root: "\(tmp.path)/other") }
    }
}
