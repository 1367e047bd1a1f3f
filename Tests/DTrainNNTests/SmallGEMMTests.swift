import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// SmallGEMM's register-blocked kernels against a Double-precision product, on shapes that
/// exercise their whole 4 × 16 blocks, the leftover rows and the last eight columns, with leading
/// dimensions wider than the matrices.
final class SmallGEMMTests: XCTestCase {
    static let shapes: [(rows: Int, n: Int, k: Int)] = [(4, 16, 1), (7, 24, 5), (13, 8, 16), (64, 32, 32), (1, 40, 3), (9, 16, 64)]

    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in Float(rng.normal()) }
    }

    func testMultiplyMatchesReference() {
        for (rows, n, k) in Self.shapes {
            let lda = k + 3, ldb = n + 5, ldc = n + 8
            let a = random(rows * lda, seed: 1), b = random(k * ldb, seed: 2)
            var c = [Float](repeating: .nan, count: rows * ldc)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                SmallGEMM.multiply(rows: rows, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                   c: pc.baseAddress!, ldc: ldc)
            } } }
            for r in 0..<rows {
                for j in 0..<ldc {
                    if j >= n { XCTAssertTrue(c[r * ldc + j].isNaN, "\(rows)x\(n)x\(k): wrote past the columns"); continue }
                    var ref = 0.0
                    for p in 0..<k { ref += Double(a[r * lda + p]) * Double(b[p * ldb + j]) }
                    XCTAssertEqual(Double(c[r * ldc + j]), ref, accuracy: 1e-5 * Double(k), "\(rows)x\(n)x\(k) at (\(r), \(j))")
                }
            }
        }
    }

    func testMultiplyTransposedMatchesReferenceAndAccumulates() {
        for (m, n, k) in Self.shapes {
            let lda = m + 2, ldb = n + 3, ldc = n + 8
            let a = random(k * lda, seed: 3), b = random(k * ldb, seed: 4), start = random(m * ldc, seed: 5)
            for accumulate in [false, true] {
                var c = start
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    SmallGEMM.multiplyTransposed(m: m, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                                 c: pc.baseAddress!, ldc: ldc, accumulate: accumulate)
                } } }
                for i in 0..<m {
                    for j in 0..<ldc {
                        if j >= n { XCTAssertEqual(c[i * ldc + j], start[i * ldc + j], "wrote past the columns"); continue }
                        var ref = accumulate ? Double(start[i * ldc + j]) : 0
                        for p in 0..<k { ref += Double(a[p * lda + i]) * Double(b[p * ldb + j]) }
                        XCTAssertEqual(Double(c[i * ldc + j]), ref, accuracy: 1e-5 * Double(k + 1),
                                       "\(m)x\(n)x\(k) accumulate \(accumulate) at (\(i), \(j))")
                    }
                }
            }
        }
    }
}
