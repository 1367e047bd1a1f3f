import Foundation
import XCTest
@testable import DTrainNN

/// float → bf16 rounding against PyTorch (`Tensor.bfloat16()`), for the scalar conversion and for
/// the packing of every bf16 GEMM variant this CPU runs (whose vector and scalar paths round
/// separately). Fixtures/bf16_rounding.txt is written by Tests/FixtureScripts/bf16_rounding_fixture.py:
/// ties with even and odd last kept bits, values either side of ties, ±0, denormals, ±inf,
/// FLT_MAX (which rounds to inf), NaNs with payloads, and random bit patterns.
///
/// NaNs are compared for being NaN: PyTorch's CPU kernel writes every NaN as 0xffff, dtrain keeps
/// the sign and high payload and sets the quiet bit (as VCVTNEPS2BF16 does).
final class BF16ConversionTests: XCTestCase {
    /// (float bits, PyTorch's bf16 bits) per fixture line.
    static func fixture() throws -> [(float: UInt32, bf16: UInt16)] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "bf16_rounding", withExtension: "txt", subdirectory: "Fixtures"),
                                "fixture bf16_rounding.txt is not in the test bundle")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, let x = UInt32(fields[0], radix: 16), let h = UInt16(fields[1], radix: 16) else {
                throw FixtureLineError(line: String(line))
            }
            return (x, h)
        }
    }

    struct FixtureLineError: Error { let line: String }

    static func isNaN(_ h: UInt16) -> Bool { h & 0x7FFF > 0x7F80 }

    private func assertRounds(_ got: UInt16, like expected: UInt16, _ what: String, file: StaticString = #filePath,
                              line: UInt = #line) {
        if Self.isNaN(expected) {
            XCTAssertTrue(Self.isNaN(got), "\(what): expected a NaN, got \(String(got, radix: 16))", file: file, line: line)
        } else {
            XCTAssertEqual(String(got, radix: 16), String(expected, radix: 16), what, file: file, line: line)
        }
    }

    func testScalarRoundingMatchesPyTorch() throws {
        let values = try Self.fixture()
        XCTAssertGreaterThan(values.count, 250)
        XCTAssertGreaterThan(values.filter { Self.isNaN($0.bf16) }.count, 5, "the fixture covers NaNs")
        for (x, h) in values {
            assertRounds(BF16GEMM.bf16(Float(bitPattern: x)), like: h, "bf16(\(String(x, radix: 16)))")
        }
    }

    /// Every bf16 widens exactly (its bits become the high half) and rounds back to itself; NaNs
    /// stay NaNs.
    func testWideningIsExactAndRoundTrips() {
        for h in UInt16.min...UInt16.max {
            let x = BF16GEMM.float(bf16: h)
            XCTAssertEqual(x.bitPattern, UInt32(h) << 16)
            if Self.isNaN(h) {
                XCTAssertTrue(x.isNaN)
                XCTAssertTrue(Self.isNaN(BF16GEMM.bf16(x)))
            } else {
                XCTAssertEqual(BF16GEMM.bf16(x), h)
            }
        }
    }

    /// The fixture's values as op(A) and op(B) of a product, in all four storage orders, through
    /// every vector variant this CPU runs; the packed words (dtrain_bf16.h's layout: pairs along
    /// k, ROWS-row panels of A, then COLUMNS-column panels of B, zero padding) must hold
    /// PyTorch's rounding of each. 13 × 37 × 37: k odd and long enough for the eight-float loads,
    /// rows and columns that leave partial panels.
    func testPackingRoundsLikePyTorch() throws {
        let values = try Self.fixture()
        let m = 13, n = 37, k = 37, pairs = (k + 1) / 2
        func value(_ index: Int) -> (x: Float, h: UInt16) {
            let v = values[index % values.count]
            return (Float(bitPattern: v.float), v.bf16)
        }
        // op(A)[i, p] = value(i·k + p), op(B)[p, j] = value(1000 + p·n + j).
        var ran = 0
        for variant in BF16GEMM.Variant.allCases where variant != .reference && variant.missingExtension == nil {
            ran += 1
            let (rows, columns) = variant.panel
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 3
                    var a = [Float](repeating: 0, count: (transA ? k : m) * lda)
                    var b = [Float](repeating: 0, count: (transB ? n : k) * ldb)
                    for i in 0..<m { for p in 0..<k { a[transA ? p * lda + i : i * lda + p] = value(i * k + p).x } }
                    for p in 0..<k { for j in 0..<n { b[transB ? j * ldb + p : p * ldb + j] = value(1000 + p * n + j).x } }
                    var c = [Float](repeating: 0, count: m * n)
                    var pack = [UInt16](repeating: 0xFFFF, count: BF16GEMM.packElements(m: m, n: n, k: k))
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        pack.withUnsafeMutableBufferPointer { pp in
                            BF16GEMM.gemm(variant, transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!,
                                          lda: lda, b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: n, pack: pp)
                        }
                    } } }
                    let what = "\(variant.rawValue) \(transA ? "T" : "N")\(transB ? "T" : "N")"
                    // Element (line, p) of a panel set: word (panel·pairs + p / 2)·width + line % width,
                    // half p % 2. The widened variants hold floats instead, element p ^ 1 of the
                    // panel's row, whose high half is the bf16 and whose low half must be zero.
                    let widened = variant.widensWhilePacking, scale = widened ? 2 : 1
                    func packed(_ base: Int, width: Int, line: Int, _ p: Int) -> UInt16 {
                        guard widened else { return pack[base + 2 * ((line / width * pairs + p / 2) * width + line % width) + p % 2] }
                        let float = base + 2 * ((line / width * 2 * pairs + (p ^ 1)) * width + line % width)
                        XCTAssertEqual(pack[float], 0, "\(what) low half of a widened bf16 (\(line), \(p))")
                        return pack[float + 1]
                    }
                    let aLines = (m + rows - 1) / rows * rows, bBase = scale * 2 * pairs * aLines
                    for i in 0..<aLines {
                        for p in 0..<(2 * pairs) {
                            let got = packed(0, width: rows, line: i, p)
                            if i < m && p < k {
                                assertRounds(got, like: value(i * k + p).h, "\(what) A(\(i), \(p))")
                            } else {
                                XCTAssertEqual(got, 0, "\(what) A padding (\(i), \(p))")
                            }
                        }
                    }
                    for j in 0..<((n + columns - 1) / columns * columns) {
                        for p in 0..<(2 * pairs) {
                            let got = packed(bBase, width: columns, line: j, p)
                            if j < n && p < k {
                                assertRounds(got, like: value(1000 + p * n + j).h, "\(what) B(\(p), \(j))")
                            } else {
                                XCTAssertEqual(got, 0, "\(what) B padding (\(p), \(j))")
                            }
                        }
                    }
                }
            }
        }
        if ran == 0 { throw XCTSkip("no vector bf16 GEMM variant runs on this CPU (it lacks avx2)") }
    }
}
