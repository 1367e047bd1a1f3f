import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainNN

/// The C variants of a residual block's elementwise passes (CDTrainKernels' dtrain_add,
/// dtrain_add_relu, dtrain_relu_backward) against a scalar reference: bit for bit, on lengths that
/// are and are not multiples of the vector and of a mask byte, with ±0 and NaN among the values;
/// nothing written past the end, the last mask byte's unused bits zero. A kernel set this CPU
/// cannot run is reported as skipped, naming the missing extension; its sixteen-lane source is
/// still checked compiled for AVX2.
final class ElementwiseKernelTests: XCTestCase {

    func testAVX2Variant() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_avx2)
    }

    func testAVX512Variant() throws {
        try skipUnlessSupported(.avx512)
        check(dtrain_kernels_avx512)
    }

    /// The avx512 variant's sixteen-lane source, compiled for AVX2: checked on every machine.
    func testSixteenLaneSourceCompiledForAVX2() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_lanes16_avx2)
    }

    private func skipUnlessSupported(_ set: KernelSet) throws {
        if let missing = set.missingExtension {
            throw XCTSkip("\(set.rawValue) elementwise passes not run: this CPU lacks \(missing)")
        }
    }

    private func values(_ n: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<n).map { i in
            switch i % 11 {
            case 3: return -0.0
            case 7: return 0
            case 9 where i % 3 == 0: return .nan
            default: return Float(rng.normal())
            }
        }
    }

    private func check(_ kernels: dtrain_kernel_table) {
        var rng = SeededRandom(seed: 4)
        let sentinel = Float(-777)
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 100, 1029] {
            let a = values(n, &rng), b = values(n, &rng), dy = values(n, &rng)
            let sums = zip(a, b).map { $0 + $1 }

            var y = [Float](repeating: sentinel, count: n + 5)
            kernels.add(a, b, &y, n)
            XCTAssertEqual(y.prefix(n).map(\.bitPattern), sums.map(\.bitPattern), "add, n \(n)")
            XCTAssertTrue(y.suffix(5).allSatisfy { $0 == sentinel }, "add wrote past n \(n)")

            // In place, as the block adds the shortcut's gradient into main's dx.
            var inPlace = a
            inPlace.withUnsafeMutableBufferPointer { p in if n > 0 { kernels.add(p.baseAddress!, b, p.baseAddress!, n) } }
            XCTAssertEqual(inPlace.map(\.bitPattern), sums.map(\.bitPattern), "add in place, n \(n)")

            let relu = sums.map { max($0, 0) }
            for masked in [false, true] {
                var out = [Float](repeating: sentinel, count: n + 5)
                var bits = [UInt8](repeating: 0xA5, count: (n + 7) / 8 + 2)
                bits.withUnsafeMutableBufferPointer { pb in kernels.add_relu(a, b, &out, masked ? pb.baseAddress : nil, n) }
                XCTAssertEqual(out.prefix(n).map(\.bitPattern), relu.map(\.bitPattern), "add + ReLU, n \(n), mask \(masked)")
                XCTAssertTrue(out.suffix(5).allSatisfy { $0 == sentinel }, "add + ReLU wrote past n \(n)")
                guard masked else { continue }
                for i in 0..<((n + 7) / 8 * 8) {
                    let bit = (bits[i / 8] >> (i % 8)) & 1 == 1
                    XCTAssertEqual(bit, i < n && sums[i] > 0, "mask bit \(i), n \(n)")
                }
                XCTAssertEqual(Array(bits.suffix(2)), [0xA5, 0xA5], "mask written past its bytes, n \(n)")

                // Backward from the mask, and from the output: dy where the sum was > 0.
                let want = (0..<n).map { sums[$0] > 0 ? dy[$0] : 0 }
                for fromMask in [true, false] {
                    var dx = [Float](repeating: sentinel, count: n + 5)
                    bits.withUnsafeBufferPointer { pb in
                        out.withUnsafeBufferPointer { po in
                            kernels.relu_backward(dy, fromMask ? nil : po.baseAddress, fromMask ? pb.baseAddress : nil, &dx, n)
                        }
                    }
                    XCTAssertEqual(dx.prefix(n).map(\.bitPattern), want.map(\.bitPattern), "ReLU backward, n \(n), from mask \(fromMask)")
                    XCTAssertTrue(dx.suffix(5).allSatisfy { $0 == sentinel }, "ReLU backward wrote past n \(n)")
                }
            }
        }
    }
}
