import XCTest
@testable import DTrainCore

final class ParallelTests: XCTestCase {
    func testChunksCoverRangeExactlyOnce() {
        for count in [0, 1, 7, 100, 1001] {
            for chunks in 1...9 {
                var covered = [Int](repeating: 0, count: count)
                for i in 0..<chunks { for j in chunkRange(i, of: chunks, count: count) { covered[j] += 1 } }
                XCTAssertEqual(covered, [Int](repeating: 1, count: count), "count \(count) chunks \(chunks)")
            }
        }
    }

    func testParallelForVisitsEveryIndex() {
        Compute.setThreads(2)
        let n = 10_000
        let s = Storage(count: n)
        let p = s.pointer
        parallelFor(n) { r in for i in r { p[i] += Float(i) } }
        for i in 0..<n { XCTAssertEqual(s.pointer[i], Float(i)) }
    }

    func testStorageIsAlignedZeroedAndAccounted() {
        let before = Storage.liveBytes
        do {
            let s = Storage(count: 1000)
            XCTAssertEqual(Int(bitPattern: s.pointer) % 64, 0)
            XCTAssertTrue(s.buffer.allSatisfy { $0 == 0 })
            XCTAssertEqual(Storage.liveBytes - before, 4000)
        }
        XCTAssertEqual(Storage.liveBytes, before)
    }

    func testSeededRandomIsReproducibleAndRoughlyNormal() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xs = (0..<20_000).map { _ in a.normal() }
        XCTAssertEqual(xs, (0..<20_000).map { _ in b.normal() })
        XCTAssertNotEqual(xs[0], c.normal())
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.04)
        XCTAssertNotEqual(SeededRandom(keys: 1, 2, 3).state, SeededRandom(keys: 1, 2, 4).state)
    }

    func testGemmMatchesNaiveProduct() {
        var rng = SeededRandom(seed: 1)
        let m = 5, n = 7, k = 3
        let a = (0..<(k * m)).map { _ in Float(rng.normal()) }   // stored k×m, used transposed
        let b = (0..<(k * n)).map { _ in Float(rng.normal()) }
        var c = [Float](repeating: 1, count: m * n)
        BLAS.gemm(transA: true, m: m, n: n, k: k, alpha: 2, a: a, lda: m, b: b, ldb: n, beta: 0.5, c: &c, ldc: n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for t in 0..<k { s += a[t * m + i] * b[t * n + j] }
            XCTAssertEqual(c[i * n + j], 2 * s + 0.5, accuracy: 1e-5)
        } }
    }
}
