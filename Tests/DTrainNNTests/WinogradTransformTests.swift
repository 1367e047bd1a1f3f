import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainNN

/// The C variants of the Winograd F(4×4, 3×3) and F(2×2, 3×3) tile transforms (CDTrainKernels'
/// dtrain_winograd4_*, dtrain_winograd2_*) against WinogradKernel's portable Swift transforms, which define them:
/// bit for bit, on images whose sides are and are not multiples of the tile, with interior and
/// border tiles, channel counts that leave a last eight-lane block in the sixteen-lane variants,
/// and ranges of tiles that start inside the batch and straddle images. The transforms must write
/// exactly the range's pixels (output) or position matrices (input, output gradient), not the
/// padding between those (`WinogradKernel.planeStride`). The input transform also reads bf16 copies
/// and, like the output-gradient transform, rounds to bf16 as it reads when asked.
///
/// Conv2dReferenceTests checks the convolutions these make against a direct reference; this pins
/// each variant to the same bits, so the avx512 variant computes what the avx2 one does. A kernel
/// set this CPU cannot run is reported as skipped, naming the missing extension; its sixteen-lane
/// source is still checked here compiled for AVX2 (`testSixteenLaneSourceCompiledForAVX2`).
final class WinogradTransformTests: XCTestCase {
    static let geometries: [(height: Int, width: Int, channels: Int)] = [
        (8, 8, 16), (7, 9, 8), (5, 5, 24), (1, 1, 16), (13, 6, 40), (32, 32, 32), (12, 4, 64), (2, 11, 8),
    ]
    static let batch = 3

    func testAVX2Variant() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_avx2.winograd4, tile: 4)
        check(dtrain_kernels_avx2.winograd2, tile: 2)
    }

    func testAVX512Variant() throws {
        try skipUnlessSupported(.avx512)
        check(dtrain_kernels_avx512.winograd4, tile: 4)
        check(dtrain_kernels_avx512.winograd2, tile: 2)
    }

    /// The avx512 variant's sixteen-lane source, compiled for AVX2: checked on every machine.
    func testSixteenLaneSourceCompiledForAVX2() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_lanes16_avx2.winograd4, tile: 4)
        check(dtrain_kernels_lanes16_avx2.winograd2, tile: 2)
    }

    /// The kernel's own dispatch takes the C transforms exactly for whole eight-lane blocks.
    func testWhichChannelCountsRunInC() {
        XCTAssertTrue(WinogradKernel.transformsInC(channels: 8))
        XCTAssertTrue(WinogradKernel.transformsInC(channels: 128))
        XCTAssertTrue(WinogradKernel.transformsInC(channels: Int(DTRAIN_WINOGRAD_MAX_CHANNELS)))
        XCTAssertFalse(WinogradKernel.transformsInC(channels: 3))
        XCTAssertFalse(WinogradKernel.transformsInC(channels: 20))
        XCTAssertFalse(WinogradKernel.transformsInC(channels: Int(DTRAIN_WINOGRAD_MAX_CHANNELS) + 8))
    }

    private func skipUnlessSupported(_ set: KernelSet) throws {
        if let missing = set.missingExtension {
            throw XCTSkip("\(set.rawValue) Winograd transforms not run: this CPU lacks \(missing)")
        }
    }

    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in Float(rng.normal()) }
    }

    private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// How many of the `positions` position matrices' `matrix` values are still NaN, plus how many
    /// of the padding floats after each (up to `plane`) are not: 0 when exactly the matrices were written.
    private func unwrittenOrPadding(_ values: [Float], plane: Int, matrix: Int, positions: Int) -> Int {
        var wrong = 0
        for xi in 0..<positions {
            for k in 0..<plane where values[xi * plane + k].isNaN == (k < matrix) { wrong += 1 }
        }
        return wrong
    }

    /// `variant` holds the transforms of `tile`×`tile` output tiles (4 or 2).
    private func check(_ transforms: dtrain_winograd_transforms, tile: Int, file: StaticString = #filePath, line: UInt = #line) {
        let positions = (tile + 2) * (tile + 2)
        for (h, w, c) in Self.geometries {
            let geo = ConvGeometry(input: FeatureShape(height: h, width: w, channels: c), kernel: 3, stride: 1, padding: 1,
                                   dilation: 1, groups: 1)
            // Output channels = input channels, so every transform runs at `c` channels.
            guard let kernel = WinogradKernel(geo: geo, outChannels: c, tile: tile, maxBatch: Self.batch, threads: 1,
                                              blockFloats: 1 << 16, minBlockTiles: 1, kernels: .avx2) else {
                return XCTFail("no F(\(tile)×\(tile)) kernel for \(h)×\(w)×\(c)", file: file, line: line)
            }
            let total = Self.batch * kernel.tilesPerImage
            var ranges = [0..<total]
            if total > 2 { ranges.append(total / 3 ..< total - 1) }
            let pixels = Self.batch * h * w * c
            for tiles in ranges {
                let label = "F(\(tile)×\(tile)) \(h)×\(w)×\(c), tiles \(tiles)"
                var g = kernel.cTiles(tiles, channels: c)
                let transformed = positions * g.plane

                // Input: every transformed value; the image has no NaNs, so none may appear.
                let x = random(pixels, seed: UInt64(h * 100 + c))
                var expected = [Float](repeating: .nan, count: transformed), got = expected
                x.withUnsafeBufferPointer { px in
                    expected.withUnsafeMutableBufferPointer {
                        portableInput(kernel, px.baseAddress!, channels: c, tiles: tiles, into: $0.baseAddress!)
                    }
                    got.withUnsafeMutableBufferPointer { transforms.input(px.baseAddress!, &g, $0.baseAddress!) }
                }
                XCTAssertEqual(unwrittenOrPadding(expected, plane: g.plane, matrix: tiles.count * c, positions: positions), 0,
                               "\(label): portable input transform left values unwritten or wrote the padding", file: file, line: line)
                XCTAssertEqual(bits(got), bits(expected), "\(label): input transform", file: file, line: line)

                // Rounding to bf16 as they read: the same as rounding the whole tensor first, ties
                // to even included (element 0 a tie that stays, element 1 one that rounds up).
                var ties = x
                ties[0] = Float(bitPattern: 0x3F80_8000)
                if ties.count > 1 { ties[1] = Float(bitPattern: 0x3F81_8000) }
                let rounded = ties.map(roundedToBFloat16)
                var roundingTiles = g
                roundingTiles.round_to_bf16 = 1
                for transform in ["input", "output gradient"] {
                    var expected = [Float](repeating: .nan, count: transformed), got = expected
                    rounded.withUnsafeBufferPointer { pr in
                        expected.withUnsafeMutableBufferPointer {
                            if transform == "input" {
                                portableInput(kernel, pr.baseAddress!, channels: c, tiles: tiles, into: $0.baseAddress!)
                            } else {
                                portableOutputGradient(kernel, pr.baseAddress!, tiles: tiles, into: $0.baseAddress!)
                            }
                        }
                    }
                    ties.withUnsafeBufferPointer { pt in
                        got.withUnsafeMutableBufferPointer {
                            if transform == "input" {
                                transforms.input(pt.baseAddress!, &roundingTiles, $0.baseAddress!)
                            } else {
                                transforms.output_gradient(pt.baseAddress!, &roundingTiles, $0.baseAddress!)
                            }
                        }
                    }
                    XCTAssertEqual(bits(got), bits(expected), "\(label): \(transform) transform rounding to bf16 as it reads",
                                   file: file, line: line)
                }

                // From a bf16 copy: the same as from its values widened to floats.
                let halves = rounded.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
                expected = [Float](repeating: .nan, count: transformed)
                got = expected
                rounded.withUnsafeBufferPointer { pr in
                    expected.withUnsafeMutableBufferPointer {
                        portableInput(kernel, pr.baseAddress!, channels: c, tiles: tiles, into: $0.baseAddress!)
                    }
                }
                halves.withUnsafeBufferPointer { ph in
                    got.withUnsafeMutableBufferPointer { transforms.input_bf16(ph.baseAddress!, &g, $0.baseAddress!) }
                }
                XCTAssertEqual(bits(got), bits(expected), "\(label): input transform from bf16", file: file, line: line)

                // Output gradient: the same, from dy.
                expected = [Float](repeating: .nan, count: transformed)
                got = expected
                x.withUnsafeBufferPointer { pdy in
                    expected.withUnsafeMutableBufferPointer {
                        portableOutputGradient(kernel, pdy.baseAddress!, tiles: tiles, into: $0.baseAddress!)
                    }
                    got.withUnsafeMutableBufferPointer { transforms.output_gradient(pdy.baseAddress!, &g, $0.baseAddress!) }
                }
                XCTAssertEqual(unwrittenOrPadding(expected, plane: g.plane, matrix: tiles.count * c, positions: positions), 0,
                               "\(label): portable gradient transform left values unwritten or wrote the padding", file: file, line: line)
                XCTAssertEqual(bits(got), bits(expected), "\(label): output-gradient transform", file: file, line: line)

                // Output, with and without bias: exactly the range's pixels written, the rest left as they were.
                let m = random(transformed, seed: 7), bias = random(c, seed: 8)
                for withBias in [false, true] {
                    var expectedY = [Float](repeating: .nan, count: pixels), gotY = expectedY
                    m.withUnsafeBufferPointer { pm in bias.withUnsafeBufferPointer { pb in
                        let b = withBias ? pb.baseAddress : nil
                        expectedY.withUnsafeMutableBufferPointer {
                            portableOutput(kernel, pm.baseAddress!, channels: c, tiles: tiles, bias: b, into: $0.baseAddress!)
                        }
                        gotY.withUnsafeMutableBufferPointer { transforms.output(pm.baseAddress!, &g, b, $0.baseAddress!) }
                    } }
                    XCTAssertEqual(bits(gotY), bits(expectedY), "\(label), bias \(withBias): output transform", file: file, line: line)
                    var misplaced = 0
                    for n in 0..<Self.batch {
                        for yy in 0..<h {
                            for xx in 0..<w {
                                let t = n * kernel.tilesPerImage + (yy / tile) * kernel.tilesWide + xx / tile
                                for ch in 0..<c where gotY[((n * h + yy) * w + xx) * c + ch].isNaN == tiles.contains(t) {
                                    misplaced += 1
                                }
                            }
                        }
                    }
                    XCTAssertEqual(misplaced, 0, "\(label): outputs written outside the range's tiles or left unwritten inside",
                                   file: file, line: line)
                }
            }
        }
    }

    // The portable Swift transforms of the kernel's tile size.

    private func portableInput(_ k: WinogradKernel, _ x: UnsafePointer<Float>, channels: Int, tiles: Range<Int>,
                               into v: UnsafeMutablePointer<Float>) {
        if k.tile == 4 { k.transformInput4Portable(x, channels: channels, tiles: tiles, into: v) }
        else { k.transformInput2Portable(x, channels: channels, tiles: tiles, into: v) }
    }

    private func portableOutputGradient(_ k: WinogradKernel, _ dy: UnsafePointer<Float>, tiles: Range<Int>,
                                        into dm: UnsafeMutablePointer<Float>) {
        if k.tile == 4 { k.transformOutputGradient4Portable(dy, tiles: tiles, into: dm) }
        else { k.transformOutputGradient2Portable(dy, tiles: tiles, into: dm) }
    }

    private func portableOutput(_ k: WinogradKernel, _ m: UnsafePointer<Float>, channels: Int, tiles: Range<Int>,
                                bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        if k.tile == 4 { k.transformOutput4Portable(m, channels: channels, tiles: tiles, bias: bias, into: y) }
        else { k.transformOutput2Portable(m, channels: channels, tiles: tiles, bias: bias, into: y) }
    }
}
