import XCTest
@testable import DTrainData

final class DecodedImageTests: XCTestCase {
    func testHoldsInterleavedRGB() {
        let image = DecodedImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(image.pixels.count, 6)
        XCTAssertEqual("\(DataError(path: "a.jpg", reason: "empty file"))", "a.jpg: empty file")
    }
}
