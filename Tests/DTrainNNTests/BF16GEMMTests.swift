import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// BF16GEMM: the reference against Double-precision products, and every vector variant against
/// the reference on shapes that exercise whole blocks, leftover rows and columns (n not a multiple
/// of 8 or 16), odd k (a zero-padded last pair), k = 0, all four transpose combinations, beta 0
/// over a NaN-filled C, beta 1 and −0.5, and leading dimensions wider than the matrices.
///
/// A variant this CPU cannot run is reported as skipped, naming the missing extension. The
/// sixteen-lane source is still checked here compiled for AVX2 (`testSixteenLaneSourceCompiledForAVX2`),
/// and `avx512bf16` differs from it only in `dot_pairs` (templates/gemm_bf16.h).
final class BF16GEMMTests: XCTestCase {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 1, 2), (2, 3, 1), (4, 16, 8), (5, 17, 3), (8, 32, 16), (9, 33, 17), (13, 40, 9),
        (3, 70, 65), (70, 3, 64), (31, 47, 33), (64, 64, 64), (65, 63, 69), (7, 8, 70), (17, 31, 2),
        (1, 70, 70), (70, 1, 70), (33, 64, 15), (3, 5, 0), (12, 48, 7),
        // k past one or two of the widened variants' 256-element slices, odd and even.
        (9, 33, 300), (13, 65, 517), (3, 5, 257),
    ]
    static let betas: [Float] = [0, 1, -0.5]

    func testAVX2() throws { try check(.avx2) }
    func testAVX512() throws { try check(.avx512) }
    func testAVX512BF16() throws { try check(.avx512bf16) }

    /// The sixteen-lane source of the avx512 and avx512bf16 variants, compiled for AVX2: checked on
    /// every machine.
    func testSixteenLaneSourceCompiledForAVX2() throws { try check(.lanes16AVX2) }
    func testWidenedAVX512() throws { try check(.widenedAVX512) }
    /// The widened source compiled for AVX2: checked on every machine.
    func testWidenedSourceCompiledForAVX2() throws { try check(.widenedLanes16AVX2) }

    func testVariantChoice() {
        XCTAssertEqual(BF16GEMM.Variant(.avx2, cpuHasBF16: false), .avx2)
        XCTAssertEqual(BF16GEMM.Variant(.avx2, cpuHasBF16: true), .avx2)
        XCTAssertEqual(BF16GEMM.Variant(.avx512, cpuHasBF16: false), .avx512)
        XCTAssertEqual(BF16GEMM.Variant(.avx512, cpuHasBF16: true), .avx512bf16)
        // The default picks what this CPU runs.
        for set in KernelSet.allCases where set.isSupported {
            XCTAssertNil(BF16GEMM.Variant(set).missingExtension, "\(set)")
        }
        XCTAssertEqual(BF16GEMM.Variant.avx512bf16.missingExtension == nil,
                       KernelSet.avx512.isSupported && KernelSet.cpuHasBF16)
    }

    /// The reference is PyTorch's bf16 autocast product: within bf16 accuracy of the exact product
    /// of the unrounded inputs (each operand's rounding is at most 2⁻⁹ relative, so a product's at
    /// most about 2⁻⁸ < 1e−2, of Σ|a||b| per output), and within float accumulation error of the
    /// exact product of the bf16-rounded inputs ((k + 1)·2⁻²⁴ of Σ|a||b|, one rounding per step).
    /// The rounding must show: somewhere the result is farther from the unrounded product than
    /// float accumulation alone could explain.
    func testReferenceAgainstDoublePrecision() {
        var roundingSeen = false
        for shape in Self.shapes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let problem = Problem(shape, transA: transA, transB: transB, beta: 0, seed: 11)
                let c = problem.run(.reference)
                for i in 0..<shape.m {
                    for j in 0..<shape.n {
                        var exact = 0.0, rounded = 0.0, magnitude = 0.0
                        for p in 0..<shape.k {
                            let x = problem.opA(i, p), y = problem.opB(p, j)
                            exact += Double(x) * Double(y)
                            rounded += Double(BF16GEMM.float(bf16: BF16GEMM.bf16(x))) * Double(BF16GEMM.float(bf16: BF16GEMM.bf16(y)))
                            magnitude += abs(Double(x) * Double(y))
                        }
                        let got = Double(c[i * problem.ldc + j])
                        let accumulation = Double(shape.k + 1) * 0x1p-24 * magnitude
                        let what = "\(problem) at (\(i), \(j))"
                        XCTAssertEqual(got, exact, accuracy: 1e-2 * magnitude, what)
                        XCTAssertEqual(got, rounded, accuracy: accumulation * 1.01, what)
                        if abs(got - exact) > 4 * accumulation { roundingSeen = true }
                    }
                }
            }
        }
        XCTAssertTrue(roundingSeen, "the reference never differs from the fp32 product by more than accumulation error")
    }

    /// Two 1 × 1 products with known results, through the reference and every emulated variant
    /// this CPU runs (k = 3 and k = 4, so the sixteen-lane blocks are almost all padding).
    func testKnownValues() {
        // Operands rounded to nearest even: 1 + 2⁻⁸ is a tie between 1 (even) and 1 + 2⁻⁷;
        // 3·2⁻⁹ is exact; 1 + 2⁻⁷ + 2⁻⁸ is a tie between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even). So the
        // sum is 1 + 3·2⁻⁹ − (1 + 2⁻⁶) = −5·2⁻⁹ (exact in float), where the unrounded one is −2⁻⁹.
        assertProduct([1 + 0x1p-8, 3 * 0x1p-9, 1 + 0x1p-7 + 0x1p-8], [1, 1, -1], is: -5 * 0x1p-9)
        // The summation order (odd element of a pair first, pair by pair): 0 + 0 + 1 + 2⁻²⁴ − 1,
        // where 1 + 2⁻²⁴ rounds to 1 (a tie, even); in index order (1 + 0 − 1 + 2⁻²⁴) it would
        // be 2⁻²⁴.
        assertProduct([1, 0, -1, 0x1p-24], [1, 1, 1, 1], is: 0)
    }

    private func assertProduct(_ a: [Float], _ b: [Float], is expected: Float, line: UInt = #line) {
        let k = a.count
        for variant in BF16GEMM.Variant.allCases where variant != .avx512bf16 && variant.missingExtension == nil {
            for (transA, transB) in [(false, false), (true, true)] {
                var c: [Float] = [.nan]
                var pack = [UInt16](repeating: 0, count: BF16GEMM.packElements(m: 1, n: 1, k: k))
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    pack.withUnsafeMutableBufferPointer { pp in
                        // A 1 × k row is a k × 1 column with lda 1; B likewise.
                        BF16GEMM.gemm(variant, transA: transA, transB: transB, m: 1, n: 1, k: k, a: pa.baseAddress!,
                                      lda: transA ? 1 : k, b: pb.baseAddress!, ldb: transB ? k : 1, c: pc.baseAddress!,
                                      ldc: 1, pack: pp)
                    }
                } } }
                XCTAssertEqual(c[0], expected, "\(variant.rawValue) transA \(transA) transB \(transB)", line: line)
            }
        }
    }

    func testPackElementsCoverEveryVariant() {
        for (m, n, k) in [(1, 1, 1), (7, 33, 5), (64, 64, 64), (65, 1, 2)] {
            let pairs = (k + 1) / 2
            for variant in BF16GEMM.Variant.allCases where variant != .reference {
                let (rows, columns) = variant.panel
                let needed = (variant.widensWhilePacking ? 4 : 2) * pairs * ((m + rows - 1) / rows * rows + (n + columns - 1) / columns * columns)
                XCTAssertLessThanOrEqual(needed, BF16GEMM.packElements(m: m, n: n, k: k), "\(variant) \(m)x\(n)x\(k)")
            }
        }
        XCTAssertEqual(BF16GEMM.packElements(m: 0, n: 5, k: 5), 0)
        XCTAssertEqual(BF16GEMM.packElements(m: 5, n: 5, k: 0), 0)
    }

    /// A widened variant's product with op(B) packed ahead (`packB`, in two column ranges where n
    /// spans two panels, then `gemm(packedB:)`) is its product from the operands, bit for bit, over
    /// the shapes above (beta 0, all four storage orders).
    func testWidenedProductsWithBPackedAhead() throws {
        var ran = 0
        for variant in [BF16GEMM.Variant.widenedAVX512, .widenedLanes16AVX2] where variant.missingExtension == nil {
            ran += 1
            var seed: UInt64 = 900
            for shape in Self.shapes where shape.m > 0 && shape.n > 0 {
                for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                    seed += 1
                    let problem = Problem(shape, transA: transA, transB: transB, beta: 0, seed: seed)
                    let expected = problem.run(variant)
                    var got = problem.c
                    var packedB = [Float](repeating: .nan, count: BF16GEMM.packedBFloats(n: shape.n, k: shape.k))
                    var pack = [UInt16](repeating: 0x7FC1, count: BF16GEMM.packElements(m: shape.m, n: 1, k: shape.k))
                    problem.b.withUnsafeBufferPointer { pb in packedB.withUnsafeMutableBufferPointer { pp in
                        // In two calls where there are two panels of columns, as threads split it.
                        let cut = shape.n > BF16GEMM.widenedPanelColumns ? BF16GEMM.widenedPanelColumns : shape.n
                        for columns in [0..<cut, cut..<shape.n] where !columns.isEmpty {
                            BF16GEMM.packB(variant, transB: transB, n: shape.n, k: shape.k, b: pb.baseAddress!, ldb: problem.ldb,
                                           into: pp.baseAddress!, columns: columns)
                        }
                    } }
                    problem.a.withUnsafeBufferPointer { pa in packedB.withUnsafeBufferPointer { pp in
                        got.withUnsafeMutableBufferPointer { pc in pack.withUnsafeMutableBufferPointer { ps in
                            BF16GEMM.gemm(variant, transA: transA, m: shape.m, n: shape.n, k: shape.k, a: pa.baseAddress!,
                                          lda: problem.lda, packedB: pp.baseAddress!, c: pc.baseAddress!, ldc: problem.ldc,
                                          pack: ps.baseAddress!)
                        } }
                    } }
                    let what = "\(variant.rawValue) \(problem)"
                    for i in 0..<shape.m {
                        for j in 0..<shape.n {
                            XCTAssertEqual(got[i * problem.ldc + j].bitPattern, expected[i * problem.ldc + j].bitPattern,
                                           "\(what) at (\(i), \(j))")
                        }
                        // Past n, C is untouched (NaN with beta 0).
                        for j in shape.n..<problem.ldc { XCTAssertTrue(got[i * problem.ldc + j].isNaN, "\(what) wrote C(\(i), \(j))") }
                    }
                }
            }
        }
        if ran == 0 { throw XCTSkip("no widened bf16 GEMM variant runs on this CPU (it lacks avx2)") }
    }

    /// A widened variant's product with B given as bf16 values (`gemm(bBF16:)`, B not transposed,
    /// as a layer's bf16 copy of its input) is its product with those values as floats, bit for
    /// bit, for every beta.
    func testWidenedProductsWithBF16B() throws {
        var ran = 0
        for variant in [BF16GEMM.Variant.widenedAVX512, .widenedLanes16AVX2] where variant.missingExtension == nil {
            ran += 1
            var seed: UInt64 = 1700
            for shape in Self.shapes where shape.m > 0 && shape.n > 0 {
                for transA in [false, true] {
                    for beta in Self.betas {
                        seed += 1
                        let problem = Problem(shape, transA: transA, transB: false, beta: beta, seed: seed)
                        let bits = problem.b.map { BF16GEMM.bf16($0) }
                        let expected = problem.run(variant)
                        var got = problem.c
                        var pack = [UInt16](repeating: 0x7FC1, count: BF16GEMM.packElements(m: shape.m, n: shape.n, k: shape.k))
                        problem.a.withUnsafeBufferPointer { pa in bits.withUnsafeBufferPointer { pb in
                            got.withUnsafeMutableBufferPointer { pc in pack.withUnsafeMutableBufferPointer { ps in
                                BF16GEMM.gemm(variant, transA: transA, m: shape.m, n: shape.n, k: shape.k, a: pa.baseAddress!,
                                              lda: problem.lda, bBF16: pb.baseAddress!, ldb: problem.ldb, beta: beta,
                                              c: pc.baseAddress!, ldc: problem.ldc, pack: ps.baseAddress!)
                            } }
                        } }
                        for i in 0..<(shape.m * problem.ldc) {
                            XCTAssertEqual(got[i].bitPattern, expected[i].bitPattern, "\(variant.rawValue) \(problem) element \(i)")
                        }
                    }
                }
            }
        }
        if ran == 0 { throw XCTSkip("no widened bf16 GEMM variant runs on this CPU (it lacks avx2)") }
    }

    // MARK: - Variants against the reference

    private func skipUnlessSupported(_ variant: BF16GEMM.Variant) throws {
        if let missing = variant.missingExtension {
            throw XCTSkip("\(variant.rawValue) bf16 GEMM not run: this CPU lacks \(missing)")
        }
    }

    /// The emulated variants sum the same exact products in the same order as the reference, one
    /// fused rounding per step, so they must match it bit for bit. VDPBF16PS documents the same
    /// order and rounding, but also flushes denormals (none arise from these inputs); in case an
    /// implementation groups a pair's two products differently, `avx512bf16` is held to what any
    /// two float summations of the same products (and beta·C) guarantee: each is within
    /// (k + 2)·2⁻²⁴ of M = |beta·C| + Σ|a||b| of the exact sum, so they differ by at most twice that.
    private func check(_ variant: BF16GEMM.Variant, file: StaticString = #filePath, line: UInt = #line) throws {
        try skipUnlessSupported(variant)
        let exact = variant != .avx512bf16
        var seed: UInt64 = 100
        for shape in Self.shapes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta in Self.betas {
                    seed += 1
                    let problem = Problem(shape, transA: transA, transB: transB, beta: beta, seed: seed)
                    let expected = problem.run(.reference)
                    // Every other call with the scratch one element off a 4-byte boundary.
                    let got = problem.run(variant, misaligned: seed % 2 == 0)
                    for i in 0..<shape.m {
                        for j in 0..<problem.ldc {
                            let e = expected[i * problem.ldc + j], g = got[i * problem.ldc + j]
                            let what = "\(variant.rawValue) \(problem) at (\(i), \(j))"
                            if j >= shape.n || exact {
                                XCTAssertEqual(g.bitPattern, e.bitPattern, "\(what): \(g) vs \(e)", file: file, line: line)
                                continue
                            }
                            var magnitude = Double(abs(beta * problem.c[i * problem.ldc + j]))
                            for p in 0..<shape.k { magnitude += abs(Double(problem.opA(i, p)) * Double(problem.opB(p, j))) }
                            XCTAssertEqual(Double(g), Double(e), accuracy: 2 * Double(shape.k + 2) * 0x1p-24 * magnitude, what,
                                           file: file, line: line)
                        }
                    }
                }
            }
        }
    }
}

/// One product for the tests: random operands (normal, so no denormal products), stored with
/// leading dimensions wider than the matrices; C random, or all NaN when beta is 0.
struct Problem: CustomStringConvertible {
    let m: Int, n: Int, k: Int
    let transA: Bool, transB: Bool, beta: Float
    let lda: Int, ldb: Int, ldc: Int
    let a: [Float], b: [Float], c: [Float]

    init(_ shape: (m: Int, n: Int, k: Int), transA: Bool, transB: Bool, beta: Float, seed: UInt64) {
        (m, n, k) = shape
        (self.transA, self.transB, self.beta) = (transA, transB, beta)
        lda = (transA ? m : k) + 3
        ldb = (transB ? k : n) + 5
        ldc = n + 4
        var rng = SeededRandom(seed: seed)
        a = (0..<((transA ? k : m) * lda)).map { _ in Float(rng.normal()) }
        b = (0..<((transB ? n : k) * ldb)).map { _ in Float(rng.normal()) }
        c = (0..<(m * ldc)).map { _ in beta == 0 ? .nan : Float(rng.normal()) }
    }

    func opA(_ i: Int, _ p: Int) -> Float { transA ? a[p * lda + i] : a[i * lda + p] }
    func opB(_ p: Int, _ j: Int) -> Float { transB ? b[j * ldb + p] : b[p * ldb + j] }

    var description: String {
        "\(m)x\(n)x\(k) \(transA ? "T" : "N")\(transB ? "T" : "N") beta \(beta)"
    }

    /// C after the product with `variant`. The scratch starts as garbage (bf16 NaNs), is exactly
    /// `packElements` long between guard elements that must stay untouched, and starts one element
    /// past a 4-byte boundary when `misaligned`.
    func run(_ variant: BF16GEMM.Variant, misaligned: Bool = false) -> [Float] {
        var out = c
        let count = BF16GEMM.packElements(m: m, n: n, k: k), guardCount = 64, start = guardCount + (misaligned ? 1 : 0)
        var scratch = [UInt16](repeating: 0x7FC1, count: count + 2 * guardCount + 1)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in out.withUnsafeMutableBufferPointer { pc in
            scratch.withUnsafeMutableBufferPointer { ps in
                let pack = UnsafeMutableBufferPointer(rebasing: ps[start..<(start + count)])
                BF16GEMM.gemm(variant, transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                              b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc, pack: pack)
            }
        } } }
        let untouched = scratch[..<start].allSatisfy { $0 == 0x7FC1 } && scratch[(start + count)...].allSatisfy { $0 == 0x7FC1 }
        XCTAssertTrue(untouched, "\(variant.rawValue) \(self): wrote outside its \(count)-element scratch")
        return out
    }
}
