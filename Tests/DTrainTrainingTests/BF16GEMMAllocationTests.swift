import XCTest
import CAllocationCounter
@testable import DTrainNN

/// The bf16 GEMM kernels allocate nothing: all their scratch is the caller's `pack`, so a
/// training step that uses them stays allocation-free. (Here, not in DTrainNNTests, because this
/// target links the allocation counter.)
final class BF16GEMMAllocationTests: XCTestCase {
    func testKernelsAllocateNothing() throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        let m = 37, n = 45, k = 29
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: -0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        var pack = [UInt16](repeating: 0, count: BF16GEMM.packElements(m: m, n: n, k: k))
        var ran = 0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            pack.withUnsafeMutableBufferPointer { pp in
                for variant in BF16GEMM.Variant.allCases where variant.missingExtension == nil {
                    ran += 1
                    for (transA, transB) in [(false, false), (true, true)] {
                        // transA/transB reinterpret the same storage: a k × m A, an n × k B.
                        let lda = transA ? m : k, ldb = transB ? k : n
                        dtrain_allocations_start()
                        BF16GEMM.gemm(variant, transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                                      b: pb.baseAddress!, ldb: ldb, beta: 1, c: pc.baseAddress!, ldc: n, pack: pp)
                        let allocations = dtrain_allocations_stop()
                        XCTAssertEqual(allocations, 0, "\(variant.rawValue) transA \(transA) transB \(transB)")
                    }
                }
            }
        } } }
        XCTAssertGreaterThanOrEqual(ran, 1)
        // Each output got two products' worth of k sums of 0.5 · −0.25 (exact in bf16).
        XCTAssertEqual(c[0], Float(2 * ran) * Float(k) * -0.125)
    }
}
