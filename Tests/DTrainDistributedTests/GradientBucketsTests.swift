import XCTest
@testable import DTrainDistributed

final class GradientBucketsTests: XCTestCase {
    func testBucketsCoverTheBufferFromTheEndOnParameterBoundaries() {
        // 10 parameters of 1000 floats (4 KB each); first bucket ≥ 8 KB, later ones ≥ 16 KB.
        let params = (0..<10).map { (offset: $0 * 1000, count: 1000) }
        let b = GradientBuckets(parameters: params, bucketBytes: 16_000, firstBucketBytes: 8_000)
        XCTAssertEqual(b.ranges.first, 8000..<10000)
        XCTAssertEqual(b.ranges[1], 4000..<8000)
        var covered = [Int](repeating: 0, count: 10_000)
        for r in b.ranges { for i in r { covered[i] += 1 } }
        XCTAssertEqual(covered, [Int](repeating: 1, count: 10_000))
        for r in b.ranges { XCTAssertEqual(r.lowerBound % 1000, 0) }
        for (a, c) in zip(b.ranges, b.ranges.dropFirst()) { XCTAssertEqual(c.upperBound, a.lowerBound) }
    }

    func testOneSmallModelIsOneBucket() {
        let b = GradientBuckets(parameters: [(0, 10), (10, 5)])
        XCTAssertEqual(b.ranges, [0..<15])
    }
}
