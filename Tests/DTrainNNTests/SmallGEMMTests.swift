import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainNN

/// SmallGEMM's register-blocked kernels, every variant, against a Double-precision product, on
/// shapes that exercise their whole 4- and 8-row blocks of two vectors, the one-vector blocks
/// (sixteen lanes), the leftover rows and the last eight columns, with leading dimensions wider
/// than the matrices.
///
/// A kernel set this CPU cannot run is reported as skipped, naming the missing extension; its
/// source is still checked here compiled for AVX2 (`testSixteenLaneSourceCompiledForAVX2`).
final class SmallGEMMTests: XCTestCase {
    static let shapes: [(rows: Int, n: Int, k: Int)] = [
        (4, 16, 1), (7, 24, 5), (13, 8, 16), (64, 32, 32), (1, 40, 3), (9, 16, 64),
        (5, 48, 7), (6, 56, 9), (3, 72, 2), (8, 64, 4), (15, 32, 3), (12, 16, 5), (17, 48, 6),
    ]

    /// c = A · b (+ c) with A's element (i, p) at a[i·rowStep + p·depthStep]: one variant.
    typealias Kernel = (_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ rowStep: Int, _ depthStep: Int,
                        _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                        _ accumulate: Bool) -> Void

    func testAVX2Kernels() throws { try check(set: .avx2) }
    func testAVX512Kernels() throws { try check(set: .avx512) }

    /// The AVX-512 variant's sixteen-lane blocking, compiled for AVX2: checked on every machine.
    func testSixteenLaneSourceCompiledForAVX2() throws {
        try skipUnlessSupported(.avx2)
        check { m, n, k, a, rowStep, depthStep, b, ldb, c, ldc, accumulate in
            dtrain_kernels_lanes16_avx2.small_gemm(m, n, k, a, rowStep, depthStep, b, ldb, c, ldc, accumulate ? 1 : 0)
        }
    }

    private func skipUnlessSupported(_ set: KernelSet) throws {
        if let missing = set.missingExtension {
            throw XCTSkip("\(set.rawValue) kernels not run: this CPU lacks \(missing)")
        }
    }

    /// Through SmallGEMM's entry points with `set`.
    private func check(set: KernelSet) throws {
        try skipUnlessSupported(set)
        check { m, n, k, a, rowStep, depthStep, b, ldb, c, ldc, accumulate in
            if depthStep == 1 {
                precondition(!accumulate)
                SmallGEMM.multiply(set, rows: m, n: n, k: k, a: a, lda: rowStep, b: b, ldb: ldb, c: c, ldc: ldc)
            } else {
                SmallGEMM.multiplyTransposed(set, m: m, n: n, k: k, a: a, lda: depthStep, b: b, ldb: ldb, c: c, ldc: ldc,
                                             accumulate: accumulate)
            }
        }
    }

    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in Float(rng.normal()) }
    }

    private func check(_ kernel: Kernel, file: StaticString = #filePath, line: UInt = #line) {
        for (rows, n, k) in Self.shapes {
            // c = a · b, a row-major (rows × k, lda): columns past n untouched.
            let lda = k + 3, ldb = n + 5, ldc = n + 8
            let a = random(rows * lda, seed: 1), b = random(k * ldb, seed: 2)
            var c = [Float](repeating: .nan, count: rows * ldc)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                kernel(rows, n, k, pa.baseAddress!, lda, 1, pb.baseAddress!, ldb, pc.baseAddress!, ldc, false)
            } } }
            for r in 0..<rows {
                for j in 0..<ldc {
                    if j >= n { XCTAssertTrue(c[r * ldc + j].isNaN, "\(rows)x\(n)x\(k): wrote past the columns", file: file, line: line); continue }
                    var ref = 0.0
                    for p in 0..<k { ref += Double(a[r * lda + p]) * Double(b[p * ldb + j]) }
                    XCTAssertEqual(Double(c[r * ldc + j]), ref, accuracy: 1e-5 * Double(k), "\(rows)x\(n)x\(k) at (\(r), \(j))",
                                   file: file, line: line)
                }
            }
            // c (+)= aᵀ b, a is k × m (lda2).
            let m = rows, lda2 = m + 2
            let at = random(k * lda2, seed: 3), start = random(m * ldc, seed: 5)
            for accumulate in [false, true] {
                var c2 = start
                at.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c2.withUnsafeMutableBufferPointer { pc in
                    kernel(m, n, k, pa.baseAddress!, 1, lda2, pb.baseAddress!, ldb, pc.baseAddress!, ldc, accumulate)
                } } }
                for i in 0..<m {
                    for j in 0..<ldc {
                        if j >= n { XCTAssertEqual(c2[i * ldc + j], start[i * ldc + j], "wrote past the columns", file: file, line: line); continue }
                        var ref = accumulate ? Double(start[i * ldc + j]) : 0
                        for p in 0..<k { ref += Double(at[p * lda2 + i]) * Double(b[p * ldb + j]) }
                        XCTAssertEqual(Double(c2[i * ldc + j]), ref, accuracy: 1e-5 * Double(k + 1),
                                       "\(m)x\(n)x\(k) accumulate \(accumulate) at (\(i), \(j))", file: file, line: line)
                    }
                }
            }
        }
    }
}
