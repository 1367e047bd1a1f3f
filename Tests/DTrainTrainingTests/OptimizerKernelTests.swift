import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainTraining

/// The C variants of the optimizers' update passes (CDTrainKernels' dtrain_optimizer.h) against
/// the update written out in Swift from the header, bit for bit: SGD with and without momentum
/// history and Nesterov, AdamW, on lengths with and without a vector tail, nothing written past n.
/// A kernel set this CPU cannot run is reported as skipped, naming the missing extension; its
/// sixteen-lane source is still checked compiled for AVX2.
final class OptimizerKernelTests: XCTestCase {
    typealias Mutable = UnsafeMutablePointer<Float>
    typealias Pointer = UnsafePointer<Float>

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
            throw XCTSkip("\(set.rawValue) optimizer passes not run: this CPU lacks \(missing)")
        }
    }

    private func check(_ kernels: dtrain_kernel_table) {
        var rng = SeededRandom(seed: 7)
        func values(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal() * scale) } }
        let sentinel = Float(-777)
        for n in [0, 1, 7, 8, 15, 16, 17, 40, 1001] {
            let grad = values(n), decay = (0..<n).map { $0 % 5 == 0 ? Float(0) : Float(1e-4) }
            for (first, nesterov) in [(true, false), (false, false), (false, true), (true, true)] {
                let w0 = values(n), buf0 = values(n, scale: 0.1)
                var wantW = w0, wantBuf = buf0
                let lr: Float = 0.05, mu: Float = 0.9
                for i in 0..<n {
                    let g = grad[i] + decay[i] * wantW[i]
                    let b = first ? g : mu * wantBuf[i] + g
                    wantBuf[i] = b
                    wantW[i] -= lr * (nesterov ? g + mu * b : b)
                }
                var w = w0 + [sentinel], buf = buf0 + [sentinel]
                kernels.sgd_step(&w, grad, &buf, decay, n, lr, mu, first ? 1 : 0, nesterov ? 1 : 0)
                let what = "SGD n \(n), first \(first), nesterov \(nesterov)"
                XCTAssertEqual(w.map(\.bitPattern), (wantW + [sentinel]).map(\.bitPattern), "\(what): w")
                XCTAssertEqual(buf.map(\.bitPattern), (wantBuf + [sentinel]).map(\.bitPattern), "\(what): momentum buffer")
            }

            let w0 = values(n), m0 = values(n, scale: 0.1), v0 = values(n, scale: 0.1).map { $0 * $0 }
            let (lr, b1, b2, c1, sqrtC2, eps): (Float, Float, Float, Float, Float, Float) = (1e-3, 0.9, 0.999, 0.271, 0.0547, 1e-8)
            var wantW = w0, wantM = m0, wantV = v0
            for i in 0..<n {
                let g = grad[i]
                wantW[i] -= lr * decay[i] * wantW[i]
                wantM[i] = b1 * wantM[i] + (1 - b1) * g
                wantV[i] = b2 * wantV[i] + (1 - b2) * g * g
                wantW[i] -= lr * (wantM[i] / c1) / (wantV[i].squareRoot() / sqrtC2 + eps)
            }
            var w = w0 + [sentinel], m = m0 + [sentinel], v = v0 + [sentinel]
            kernels.adamw_step(&w, grad, &m, &v, decay, n, lr, b1, b2, c1, sqrtC2, eps)
            XCTAssertEqual(w.map(\.bitPattern), (wantW + [sentinel]).map(\.bitPattern), "AdamW n \(n): w")
            XCTAssertEqual(m.map(\.bitPattern), (wantM + [sentinel]).map(\.bitPattern), "AdamW n \(n): exp_avg")
            XCTAssertEqual(v.map(\.bitPattern), (wantV + [sentinel]).map(\.bitPattern), "AdamW n \(n): exp_avg_sq")
        }
    }
}
