import Foundation
import XCTest
import CDTrainKernels
import DTrainCore
import DTrainNN
@testable import DTrainDistributed
import DTrainTestSupport

/// Gradients sent as bf16 (`--allreduce-dtype bf16`): the conversions and the bf16 sum against
/// the scalar definition of rounding (`roundedToBFloat16`), and both synchronizers over loopback
/// ranks against the same arithmetic done here, and against the float32 average within bf16's
/// precision.
final class BF16AllreduceTests: XCTestCase {
    override func setUp() { Compute.setThreads(1) }
    override func tearDown() { Compute.setThreads(2) }

    private func bits(_ x: Float) -> UInt16 { UInt16(truncatingIfNeeded: roundedToBFloat16(x).bitPattern >> 16) }
    private func widened(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Values that exercise rounding: random magnitudes, ties, values next to ties, signed zeros,
    /// denormals, the largest floats (which round to infinity), infinities and NaNs.
    private func awkwardValues(_ count: Int) -> [Float] {
        var rng = SeededRandom(seed: 11)
        var values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude,
                               -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                               Float(bitPattern: 0x3F80_8001), Float(bitPattern: 0x3F80_7FFF),
                               Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x7F7F_8000)]
        while values.count < count {
            values.append(Float(rng.normal() * pow(10, Double(rng.int(below: 20)) - 10)))
        }
        return values
    }

    func testPackUnpackAndSumMatchTheScalarRounding() {
        let x = awkwardValues(4099)   // not a multiple of any vector width: the tails run too
        for scale: Float in [1, 0.5, 1.0 / 3] {
            var packed = [UInt16](repeating: 0xDEAD, count: x.count)
            dtrain_bf16_pack_scaled(x, scale, &packed, x.count)
            for i in x.indices {
                let expected = bits(x[i] * scale)
                let value = x[i] * scale
                if value.isNaN {
                    XCTAssertTrue(widened(packed[i]).isNaN, "[\(i)] NaN × \(scale) packed to \(packed[i])")
                } else if packed[i] != expected {
                    return XCTFail("[\(i)] bf16(\(x[i]) × \(scale)) packed to \(String(packed[i], radix: 16)), expected \(String(expected, radix: 16))")
                }
            }
            var unpacked = [Float](repeating: 7, count: x.count)
            dtrain_bf16_unpack(packed, &unpacked, packed.count)
            for i in x.indices where unpacked[i].bitPattern != UInt32(packed[i]) << 16 {
                return XCTFail("[\(i)] \(packed[i]) widened to \(unpacked[i])")
            }
        }
        let a = x.map(bits), b = x.reversed().map(bits)
        var sum = b
        dtrain_bf16_sum(a, &sum, a.count)
        for i in a.indices {
            let exact = widened(a[i]) + widened(b[i])
            if exact.isNaN {
                XCTAssertTrue(widened(sum[i]).isNaN, "[\(i)]")
            } else if sum[i] != bits(exact) {
                return XCTFail("[\(i)] \(widened(a[i])) + \(widened(b[i])) summed to \(widened(sum[i])), expected \(widened(bits(exact)))")
            }
        }
    }

    /// Parameters of a store, one of them frozen (never sent).
    private let sizes = [300, 50, 700, 200, 500]
    private let frozen = 1

    /// Rank `rank`'s gradient at flat index `i`: magnitudes over several binades, so rounding to
    /// bf16 changes most of them.
    private func gradient(_ rank: Int, _ i: Int) -> Float {
        Float(sin(Double(i * 31 + rank * 17) * 0.37)) * Float(1 + (i + rank) % 5) * 0.01 + Float(rank) * 1e-3
    }

    func testBothSynchronizersSendBF16AndAverageWithinItsPrecision() throws {
        let ranks = 3
        for overlapped in [false, true] {
            let seen = try LoopbackCommunicator.run(ranks: ranks) { comm -> (grads: [Float], records: [LoopbackCommunicator.Record], covered: Int) in
                let params = self.sizes.map { Parameter(torchShape: [$0], role: .weight, initializer: .constant(0)) }
                params[self.frozen].trainable = false
                let store = ParameterStore(params)
                for i in 0..<store.count { store.grads.pointer[i] = self.gradient(comm.rank, i) }
                let sync: GradientSynchronizer
                let buckets: GradientBuckets
                if overlapped {
                    let s = try OverlappedGradientAllreduce(store: store, communicator: comm, bucketBytes: 2000, dtype: .bf16)
                    (sync, buckets) = (s, s.buckets)
                    s.beginBackward()
                    for p in params.reversed() { s.gradientsReady(from: p.offset) }
                } else {
                    let s = AllreduceGradients(store: store, communicator: comm, bucketBytes: 2000, dtype: .bf16)
                    (sync, buckets) = (s, s.buckets)
                }
                try sync.synchronize()
                return (Array(store.grads.buffer), comm.records, buckets.count)
            }
            let label = overlapped ? "overlapped" : "blocking"
            let store = ParameterStore(sizes.map { Parameter(torchShape: [$0], role: .weight, initializer: .constant(0)) })
            let frozenRange = store.parameters[frozen].offset..<(store.parameters[frozen].offset + sizes[frozen])
            let scale = 1 / Float(ranks)
            var worst: Float = 0
            for (rank, s) in seen.enumerated() {
                // Every gradient allreduce sent bf16, 2 bytes per covered gradient.
                let sent = s.records.filter { $0.type == .bfloat16 }
                XCTAssertEqual(sent.count, s.records.filter { $0.purpose.hasPrefix("gradient bucket") }.count, "\(label) rank \(rank)")
                XCTAssertEqual(sent.reduce(0) { $0 + $1.count }, s.covered, "\(label) rank \(rank)")
                XCTAssertEqual(s.covered, store.count - sizes[frozen])
                XCTAssertFalse(s.records.contains { $0.type == .float32 }, "\(label) rank \(rank): float32 gradients sent")
                for i in 0..<store.count {
                    if frozenRange.contains(i) {
                        XCTAssertEqual(s.grads[i], gradient(rank, i), "\(label) rank \(rank): frozen gradient \(i) changed")
                        continue
                    }
                    // The loopback sums in rank order: each rank's gradient ÷ ranks rounded to
                    // bf16, every partial sum rounded to bf16.
                    let parts = (0..<ranks).map { bits(gradient($0, i) * scale) }
                    let expected = widened(parts.dropFirst().reduce(parts[0]) { bits(widened($0) + widened($1)) })
                    if s.grads[i] != expected {
                        return XCTFail("\(label) rank \(rank): gradient \(i) is \(s.grads[i]), expected \(expected)")
                    }
                    let mean = (0..<ranks).map { gradient($0, i) }.reduce(0, +) * scale
                    let magnitude = (0..<ranks).map { abs(gradient($0, i)) * scale }.reduce(0, +)
                    worst = max(worst, abs(s.grads[i] - mean) / magnitude)
                }
            }
            // Each of the 2 · ranks − 1 roundings errs by at most 2⁻⁹ of what it rounds.
            XCTAssertLessThanOrEqual(worst, Float(2 * ranks - 1) * 0x1p-9, label)
            XCTAssertGreaterThan(worst, 0, "\(label): no gradient was rounded")
        }
    }

    func testABFloat16MaxIsRefusedByEveryTransport() throws {
        var x: [UInt16] = [0x3F80, 0x4000]
        XCTAssertThrowsError(try x.withUnsafeMutableBytes {
            try SingleProcessCommunicator().allreduce($0.baseAddress!, count: 2, type: .bfloat16, op: .max)
        })
        let outcomes = try LoopbackCommunicator.run(ranks: 2) { comm -> Bool in
            var y: [UInt16] = [0x3F80]
            do {
                try y.withUnsafeMutableBytes { try comm.allreduce($0.baseAddress!, count: 1, type: .bfloat16, op: .min) }
                return false
            } catch {
                return true
            }
        }
        XCTAssertEqual(outcomes, [true, true])
    }

    func testTheFlagValues() throws {
        XCTAssertEqual(try AllreduceDType.parse("bf16"), .bf16)
        XCTAssertEqual(try AllreduceDType.parse("fp32"), .fp32)
        XCTAssertThrowsError(try AllreduceDType.parse("fp16")) { error in
            XCTAssertEqual("\(error)", "--allreduce-dtype fp16: expected fp32 or bf16")
        }
        XCTAssertEqual(AllreduceDType.bf16.bytesPerElement * 2, AllreduceDType.fp32.bytesPerElement)
    }
}
