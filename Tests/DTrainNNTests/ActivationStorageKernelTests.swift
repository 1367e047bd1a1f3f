import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// The two stores of bf16 activation storage against their definitions: `BF16Copy` keeps
/// `roundedToBFloat16(x)` exactly, and `ReLUMask`'s add + ReLU gives max(a + b, 0) as the
/// unmasked residual block does (NaN kept, −0 as +0) and its backward passes dy exactly where that
/// sum was positive, for lengths with and without a partial last byte, split across threads.
final class ActivationStorageKernelTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    private func values(_ n: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<n).map { i in
            switch i % 13 {
            case 0: return .nan
            case 1: return -0.0
            case 2: return 0
            case 3: return .infinity
            case 4: return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            default: return Float(rng.normal())
            }
        }
    }

    /// Saved alone, or while writing the rounded float32 values for a layer's kernels.
    func testBF16CopyKeepsTheRoundedValues() {
        var rng = SeededRandom(seed: 3)
        for n in [0, 1, 7, 8, 9, 100, 40_003] {
            let x = values(n, &rng)
            for alsoRounding in [false, true] {
                let copy = BF16Copy(capacity: n + 5)
                var rounded = [Float](repeating: 1, count: n)
                x.withUnsafeBufferPointer { px in rounded.withUnsafeMutableBufferPointer { pr in
                    if alsoRounding { copy.save(px.baseAddress!, count: n, rounding: pr.baseAddress!) } else { copy.save(px.baseAddress!, count: n) }
                } }
                var back = [Float](repeating: 1, count: n)
                back.withUnsafeMutableBufferPointer { _ = copy.restore(into: $0.baseAddress!) }
                let bits = copy.saved
                for i in 0..<n {
                    let want = roundedToBFloat16(x[i])
                    var got = [back[i], Float(bitPattern: UInt32(bits[i]) << 16)]
                    if alsoRounding { got.append(rounded[i]) }
                    for value in got {
                        if want.isNaN { XCTAssertTrue(value.isNaN, "n \(n), \(i)") } else {
                            XCTAssertEqual(value.bitPattern, want.bitPattern, "n \(n), \(i): \(x[i])")
                        }
                    }
                }
            }
        }
    }

    func testReLUMaskMatchesTheUnmaskedBlock() {
        var rng = SeededRandom(seed: 5)
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 50_001] {
            let a = values(n, &rng), b = values(n, &rng), dy = values(n, &rng)
            let mask = ReLUMask(capacity: n + 3)
            var y = [Float](repeating: 7, count: n), dx = [Float](repeating: 7, count: n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in y.withUnsafeMutableBufferPointer { py in
                mask.addReLU(pa.baseAddress!, pb.baseAddress!, into: py.baseAddress!, count: n)
            } } }
            dy.withUnsafeBufferPointer { pdy in dx.withUnsafeMutableBufferPointer { pdx in
                mask.mask(pdy.baseAddress!, into: pdx.baseAddress!, count: n)
            } }
            for i in 0..<n {
                let sum = a[i] + b[i], want = max(sum, 0)
                if want.isNaN { XCTAssertTrue(y[i].isNaN, "n \(n), \(i)") } else {
                    XCTAssertEqual(y[i].bitPattern, want.bitPattern, "n \(n), \(i): \(a[i]) + \(b[i])")
                }
                let wantDx: Float = sum > 0 ? dy[i] : 0
                if wantDx.isNaN { XCTAssertTrue(dx[i].isNaN, "n \(n), \(i)") } else {
                    XCTAssertEqual(dx[i].bitPattern, wantDx.bitPattern, "n \(n), \(i): dy \(dy[i]) after \(sum)")
                }
            }
        }
    }
}
