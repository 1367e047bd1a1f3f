import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainNN

/// The C variants of the direct grouped and depthwise convolution passes (CDTrainKernels'
/// dtrain_grouped_conv.h) against a scalar reference written from the header, bit for bit: group
/// widths that share a vector in each set (4, 8, 16 inputs and outputs) and that do not (4 → 8,
/// 12 → 24), group counts that leave groups over after the shared vectors, pixel steps wider than
/// the channels, channel counts with vector and scalar tails; nothing written outside the outputs.
/// A kernel set this CPU cannot run is reported as skipped, naming the missing extension; its
/// sixteen-lane source is still checked compiled for AVX2.
final class GroupedConvPassTests: XCTestCase {
    typealias Pointer = UnsafePointer<Float>
    typealias Mutable = UnsafeMutablePointer<Float>

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
            throw XCTSkip("\(set.rawValue) grouped convolution passes not run: this CPU lacks \(missing)")
        }
    }

    private func values(_ n: Int, _ rng: inout SeededRandom) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }

    private func check(_ kernels: dtrain_kernel_table) {
        var rng = SeededRandom(seed: 11)
        let sentinel = Float(-777)
        // (groups, inputs per group, outputs per group)
        let shapes = [(1, 4, 4), (2, 4, 4), (3, 4, 4), (5, 4, 4), (8, 4, 4), (1, 8, 8), (2, 8, 8), (3, 8, 8),
                      (1, 16, 16), (3, 16, 16), (4, 4, 8), (3, 8, 4), (2, 12, 24)]
        for (groups, inWidth, outWidth) in shapes {
            for count in [0, 1, 5] {
                let what = "groups \(groups), \(inWidth) → \(outWidth), \(count) pixels"
                let inChannels = groups * inWidth, outChannels = groups * outWidth
                // Pixels further apart than their channels (a strided convolution's input).
                let inStep = inChannels + 3, outStep = outChannels + 5
                let input = values(max(1, count * inStep), &rng)
                let matrixStride = outChannels + 2
                let matrix = values(inWidth * matrixStride, &rng)
                let start = values(max(1, count * outStep), &rng)

                var want = start
                for p in 0..<count { for g in 0..<groups { for b in 0..<outWidth {
                    let x = { (a: Int) in input[p * inStep + g * inWidth + a] }
                    let m = { (a: Int) in matrix[a * matrixStride + g * outWidth + b] }
                    var acc = x(0) * m(0)
                    for a in 1..<inWidth { acc.addProduct(x(a), m(a)) }
                    want[p * outStep + g * outWidth + b] += acc
                } } }
                var out = start
                kernels.grouped_conv_pass(count, input, inStep, &out, outStep, groups, inWidth, outWidth, matrix, matrixStride)
                XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern), "grouped pass, \(what)")

                // Weight pass: x as the input, dy as the outputs.
                let dy = values(max(1, count * outStep), &rng)
                let partialStride = inChannels + 4
                let partialStart = values(outWidth * partialStride, &rng)
                var wantPartial = partialStart
                for g in 0..<groups { for j in 0..<outWidth { for i in 0..<inWidth {
                    var acc: Float = 0
                    for p in 0..<count { acc.addProduct(input[p * inStep + g * inWidth + i], dy[p * outStep + g * outWidth + j]) }
                    wantPartial[j * partialStride + g * inWidth + i] += acc
                } } }
                var partial = partialStart
                kernels.grouped_conv_weight_pass(count, input, inStep, dy, outStep, groups, inWidth, outWidth, &partial, partialStride)
                XCTAssertEqual(partial.map(\.bitPattern), wantPartial.map(\.bitPattern), "grouped weight pass, \(what)")
            }
        }
        for channels in [1, 3, 4, 5, 13, 16, 24, 37, 64, 100] {
            for count in [0, 1, 6] {
                let what = "depthwise, \(channels) channels, \(count) pixels"
                let inStep = channels + 2, outStep = channels + 7
                let input = values(max(1, count * inStep), &rng), weights = values(channels, &rng)
                var out = values(count * outStep + 4, &rng)
                // Past the last pixel's channels: must stay as they are.
                for i in 0..<4 { out[count * outStep + i] = sentinel }
                var want = out
                for p in 0..<count { for c in 0..<channels {
                    want[p * outStep + c].addProduct(input[p * inStep + c], weights[c])
                } }
                kernels.depthwise_conv_pass(count, input, inStep, &out, outStep, weights, channels)
                XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern), "depthwise pass, \(what)")

                let dy = values(max(1, count * outStep), &rng)
                var partial = values(channels + 3, &rng)
                var wantPartial = partial
                for c in 0..<channels {
                    var acc: Float = 0
                    for p in 0..<count { acc.addProduct(input[p * inStep + c], dy[p * outStep + c]) }
                    wantPartial[c] += acc
                }
                kernels.depthwise_conv_weight_pass(count, input, inStep, dy, outStep, &partial, channels)
                XCTAssertEqual(partial.map(\.bitPattern), wantPartial.map(\.bitPattern), "depthwise weight pass, \(what)")
            }
        }
    }
}
