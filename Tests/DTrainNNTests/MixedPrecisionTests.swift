import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// bf16 precision (`Precision.bf16`, PyTorch's CPU autocast): the rounding equals PyTorch's, and
/// a convolution or linear layer built for bf16 computes exactly what the float32 layer computes
/// on bf16-rounded input, weight and output gradient, for every convolution algorithm. These run
/// on every CPU: the bf16 arithmetic is defined by this rounding and float32 accumulation.
final class MixedPrecisionTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    /// The layers' rounding (scalar, and the bulk pass of eight lanes and a scalar rest) against
    /// PyTorch on BF16ConversionTests' fixture, and bit for bit against the bf16 GEMM kernels'
    /// conversion, NaNs included: one definition of bf16 for Swift and C.
    func testRoundingEqualsPyTorchAndTheKernels() throws {
        let table = try BF16ConversionTests.fixture()
        let inputs = [1, 2, 3] + table.map { Float(bitPattern: $0.float) }
        var bulk = [Float](repeating: 0, count: inputs.count)
        inputs.withUnsafeBufferPointer { src in bulk.withUnsafeMutableBufferPointer { dst in
            roundToBFloat16(src.baseAddress!, into: dst.baseAddress!, count: inputs.count)
        } }
        for (i, (bits, expected)) in table.enumerated() {
            let x = Float(bitPattern: bits), what = String(format: "0x%08X", bits)
            let scalar = roundedToBFloat16(x).bitPattern
            XCTAssertEqual(scalar & 0xFFFF, 0, what)
            XCTAssertEqual(scalar >> 16, UInt32(BF16GEMM.bf16(x)), "\(what): the kernels' conversion")
            XCTAssertEqual(bulk[i + 3].bitPattern, scalar, "\(what): bulk")
            if BF16ConversionTests.isNaN(expected) {
                XCTAssertTrue(Float(bitPattern: scalar).isNaN, what)
            } else {
                XCTAssertEqual(scalar, UInt32(expected) << 16, what)
            }
        }
    }

    func testEightLaneRoundingEqualsScalarOnRandomBits() {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<20000 {
            var v = SIMD8<Float>()
            for lane in 0..<8 { v[lane] = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            let rounded = roundedToBFloat16(v)
            for lane in 0..<8 {
                XCTAssertEqual(rounded[lane].bitPattern, roundedToBFloat16(v[lane]).bitPattern)
            }
        }
    }

    /// Each Conv2d algorithm: im2col + GEMM (3×3 stride 2), the pointwise GEMM, Winograd
    /// F(4×4) and F(2×2), and the direct grouped kernel.
    func testConvolutionsComputeOnRoundedOperands() throws {
        let cases: [(String, () -> Conv2d)] = [
            ("im2col 3x3 stride 2", { Conv2d(inChannels: 8, outChannels: 16, kernelSize: 3, stride: 2, padding: 1) }),
            ("pointwise", { Conv2d(inChannels: 24, outChannels: 16, kernelSize: 1, bias: true) }),
            ("winograd F4", { let c = Conv2d(inChannels: 16, outChannels: 24, kernelSize: 3, padding: 1); c.winogradTile = 4; return c }),
            ("winograd F2", { let c = Conv2d(inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1); c.winogradTile = 2; return c }),
            ("depthwise direct", { Conv2d(inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1, groups: 16) }),
        ]
        for (name, make) in cases {
            try checkRoundedOperands(name, input: FeatureShape(height: 9, width: 10, channels: make().inChannels), batch: 3,
                                     make: make)
        }
    }

    func testLinearComputesOnRoundedOperands() throws {
        try checkRoundedOperands("linear", input: FeatureShape(features: 40), batch: 5) {
            Linear(inFeatures: 40, outFeatures: 12)
        }
    }

    /// The GEMM-based layers (im2col and pointwise convolutions, grouped ones through im2col, and
    /// Linear) with the bf16 GEMM kernels, as a CPU with AVX512_BF16 runs them, here through the
    /// emulated variants this CPU has (the same packing and blocking as VDPBF16PS's): within
    /// float summation error of the same layers rounding their operands for sgemm.
    func testBF16KernelsMatchTheRoundingPath() throws {
        let cases: [(String, FeatureShape, () -> Layer)] = [
            ("im2col 3x3 stride 2", FeatureShape(height: 9, width: 10, channels: 8),
             { Conv2d(inChannels: 8, outChannels: 16, kernelSize: 3, stride: 2, padding: 1) }),
            ("im2col 3x3 small tiles", FeatureShape(height: 7, width: 6, channels: 5),
             { let c = Conv2d(inChannels: 5, outChannels: 12, kernelSize: 3, padding: 1, bias: true)
               c.useWinograd = false; c.minTileRows = 7; c.columnTileFloats = 0; return c }),
            ("pointwise", FeatureShape(height: 9, width: 10, channels: 24),
             { Conv2d(inChannels: 24, outChannels: 16, kernelSize: 1, bias: true) }),
            ("pointwise, more rows than a block", FeatureShape(height: 20, width: 16, channels: 8),
             { Conv2d(inChannels: 8, outChannels: 8, kernelSize: 1) }),
            ("grouped through im2col", FeatureShape(height: 8, width: 8, channels: 16),
             { let c = Conv2d(inChannels: 16, outChannels: 32, kernelSize: 3, padding: 1, groups: 4); c.useDirectKernel = false; return c }),
            ("linear", FeatureShape(features: 40), { Linear(inFeatures: 40, outFeatures: 12) }),
        ]
        var ran = 0
        for variant in [BF16GEMM.Variant.avx2, .lanes16AVX2, .avx512, .avx512bf16, .widenedLanes16AVX2, .widenedAVX512] where variant.missingExtension == nil {
            for (name, input, make) in cases {
                try checkBF16Kernels("\(name), \(variant.rawValue)", input: input, batch: 3, variant: variant, make: make)
            }
            ran += 1
        }
        XCTAssertGreaterThan(ran, 0, "no bf16 GEMM variant runs on this CPU")
    }

    /// With bf16 activation storage a layer keeps x as bf16 and widens it for backward; the bf16
    /// GEMM kernels (here through the variants this CPU runs) round x while packing anyway, so
    /// output and gradients are bit-identical to the layer without storage.
    func testBF16KernelsWithActivationStorage() throws {
        let cases: [(String, FeatureShape, () -> Conv2d)] = [
            ("im2col 3x3 stride 2", FeatureShape(height: 9, width: 10, channels: 8),
             { Conv2d(inChannels: 8, outChannels: 16, kernelSize: 3, stride: 2, padding: 1) }),
            ("pointwise", FeatureShape(height: 9, width: 10, channels: 24),
             { Conv2d(inChannels: 24, outChannels: 16, kernelSize: 1, bias: true) }),
        ]
        var ran = 0
        for variant in [BF16GEMM.Variant.avx2, .lanes16AVX2, .avx512, .avx512bf16, .widenedLanes16AVX2, .widenedAVX512] where variant.missingExtension == nil {
            for (name, input, make) in cases {
                var rng = SeededRandom(seed: 17)
                func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
                let layers = [make(), make()]
                let stores = layers.map { ParameterStore(layer: $0) }
                defer { withExtendedLifetime(stores) {} }
                let weights = randoms(stores[0].count)
                for store in stores { for i in 0..<store.count { store.values.pointer[i] = weights[i] } }
                var out = FeatureShape(features: 0)
                for (layer, stored) in zip(layers, [false, true]) {
                    let workspace = Workspace()
                    let context = BuildContext(workspace: workspace, precision: .bf16, storesActivationsInBF16: stored)
                    context.bf16GEMM = variant
                    out = layer.build(input: input, maxBatch: 3, inputNeedsGradient: true, context: context)
                    context.allocateSharedMemory()
                    workspace.allocate()
                }
                let x = randoms(3 * input.count), dy = randoms(3 * out.count)
                let plain = Pass(layers[0], stores[0], input: input, out: out, batch: 3, x: x, dy: dy)
                let stored = Pass(layers[1], stores[1], input: input, out: out, batch: 3, x: x, dy: dy)
                XCTAssertEqual(layers.map(\.multipliesInBF16), [true, true], "\(name), \(variant.rawValue)")
                for (what, a, b) in [("y", stored.y, plain.y), ("dx", stored.dx, plain.dx), ("weight gradient", stored.weight, plain.weight)] {
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(name), \(variant.rawValue): \(what)")
                }
            }
            ran += 1
        }
        XCTAssertGreaterThan(ran, 0, "no bf16 GEMM variant runs on this CPU")
    }

    /// A bf16 Winograd F(4×4) convolution whose transforms round x and dy as they read them gives
    /// output and gradients bit-identical to the same layer rounding them in passes first, with
    /// and without bf16 activation storage, on a shape with partial tiles; with a channel count
    /// the C transforms do not take, it rounds in passes.
    func testWinogradRoundingOnReadEqualsRoundingPasses() throws {
        let input = FeatureShape(height: 9, width: 10, channels: 16)
        for stored in [false, true] {
            var rng = SeededRandom(seed: 23)
            func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
            let layers = [Conv2d(inChannels: 16, outChannels: 24, kernelSize: 3, padding: 1, bias: true),
                          Conv2d(inChannels: 16, outChannels: 24, kernelSize: 3, padding: 1, bias: true)]
            layers[1].roundsOnRead = false
            let stores = layers.map { ParameterStore(layer: $0) }
            defer { withExtendedLifetime(stores) {} }
            let weights = randoms(stores[0].count)
            for store in stores { for i in 0..<store.count { store.values.pointer[i] = weights[i] } }
            var out = FeatureShape(features: 0)
            for layer in layers {
                let workspace = Workspace()
                let context = BuildContext(workspace: workspace, precision: .bf16, storesActivationsInBF16: stored)
                out = layer.build(input: input, maxBatch: 3, inputNeedsGradient: true, context: context)
                context.allocateSharedMemory()
                workspace.allocate()
            }
            XCTAssertEqual(layers.map(\.winogradOutputTile), [4, 4])
            XCTAssertEqual(layers.map(\.roundsActivationsWhileReading), [true, false], "storage \(stored)")
            let x = randoms(3 * input.count), dy = randoms(3 * out.count)
            let onRead = Pass(layers[0], stores[0], input: input, out: out, batch: 3, x: x, dy: dy)
            let inPasses = Pass(layers[1], stores[1], input: input, out: out, batch: 3, x: x, dy: dy)
            for (what, a, b) in [("y", onRead.y, inPasses.y), ("dx", onRead.dx, inPasses.dx),
                                 ("weight gradient", onRead.weight, inPasses.weight)] {
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "storage \(stored): \(what)")
            }
        }
        let narrow = Conv2d(inChannels: 12, outChannels: 24, kernelSize: 3, padding: 1)
        narrow.winogradMinChannels = 8
        let workspace = Workspace()
        _ = narrow.build(input: FeatureShape(height: 8, width: 8, channels: 12), maxBatch: 2, inputNeedsGradient: true,
                         context: BuildContext(workspace: workspace, precision: .bf16))
        XCTAssertEqual(narrow.winogradOutputTile, 4)
        XCTAssertFalse(narrow.roundsActivationsWhileReading, "12 channels take the portable transforms, which do not round")
    }

    private func checkBF16Kernels(_ name: String, input: FeatureShape, batch: Int, variant: BF16GEMM.Variant,
                                  make: () -> Layer, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededRandom(seed: 13)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        let kernel = make(), rounding = make()
        let stores = [kernel, rounding].map { ParameterStore(layer: $0) }
        defer { withExtendedLifetime(stores) {} }
        let weights = randoms(stores[0].count)
        for store in stores { for i in 0..<store.count { store.values.pointer[i] = weights[i] } }
        var out = FeatureShape(features: 0)
        for (layer, gemm) in [(kernel, variant), (rounding, nil)] as [(Layer, BF16GEMM.Variant?)] {
            let workspace = Workspace()
            let context = BuildContext(workspace: workspace, precision: .bf16)
            context.bf16GEMM = gemm
            out = layer.build(input: input, maxBatch: batch, inputNeedsGradient: true, context: context)
            workspace.allocate()
        }
        let x = randoms(batch * input.count), dy = randoms(batch * out.count)
        let got = Pass(kernel, stores[0], input: input, out: out, batch: batch, x: x, dy: dy)
        let want = Pass(rounding, stores[1], input: input, out: out, batch: batch, x: x, dy: dy)
        for (what, a, b) in [("y", got.y, want.y), ("dx", got.dx, want.dx), ("weight gradient", got.weight, want.weight),
                             ("bias gradient", got.bias, want.bias)] {
            assertMatches(a, b, "\(name): \(what)", tolerance: 1e-5, file: file, line: line)
        }
        let used = [kernel, rounding].map { ($0 as? Conv2d)?.multipliesInBF16 ?? ($0 as? Linear)?.multipliesInBF16 }
        XCTAssertEqual(used, [true, false], "\(name): which layers ran the bf16 kernels", file: file, line: line)
    }

    /// Builds `make()` for bf16 (on the rounding path, not the bf16 GEMM kernels) and twice for
    /// fp32: one fp32 copy gets bf16-rounded weights, x and dy, the bf16 one the float32 values. Output, dx and the weight gradient must be equal bit
    /// for bit (the same kernels on the same values), the bias gradient equal to the plain fp32
    /// layer's, and the output must differ from the fp32 layer's (the rounding happens).
    private func checkRoundedOperands(_ name: String, input: FeatureShape, batch: Int, make: () -> Layer,
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededRandom(seed: 11)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        let mixed = make(), reference = make(), plain = make()
        let stores = [mixed, reference, plain].map { ParameterStore(layer: $0) }
        defer { withExtendedLifetime(stores) {} }
        let weights = randoms(stores[0].count)
        for store in stores {
            for i in 0..<store.count { store.values.pointer[i] = weights[i] }
        }
        // The reference gets bf16 weights; biases are added, not multiplied, and stay float32.
        for p in stores[1].parameters where p.role == .weight {
            for i in 0..<p.count { p.value![i] = roundedToBFloat16(p.value![i]) }
        }
        func build(_ layer: Layer, _ precision: Precision) -> FeatureShape {
            let workspace = Workspace()
            let context = BuildContext(workspace: workspace, precision: precision)
            // The rounding path (float32 kernels on rounded operands) on every CPU; the bf16 GEMM
            // kernels sum products in another order and are held to this path within float
            // summation error by testBF16KernelsMatchTheRoundingPath.
            context.bf16GEMM = nil
            let out = layer.build(input: input, maxBatch: batch, inputNeedsGradient: true, context: context)
            workspace.allocate()
            return out
        }
        let out = build(mixed, .bf16)
        _ = build(reference, .fp32)
        _ = build(plain, .fp32)

        let x = randoms(batch * input.count), dy = randoms(batch * out.count)
        let got = Pass(mixed, stores[0], input: input, out: out, batch: batch, x: x, dy: dy)
        let want = Pass(reference, stores[1], input: input, out: out, batch: batch, x: x.map(roundedToBFloat16),
                        dy: dy.map(roundedToBFloat16))
        let fp32 = Pass(plain, stores[2], input: input, out: out, batch: batch, x: x, dy: dy)
        for pass in [got, want, fp32] {
            XCTAssertFalse(pass.changedInputs, "\(name): the layer changed x or dy", file: file, line: line)
        }
        XCTAssertEqual(got.y.map(\.bitPattern), want.y.map(\.bitPattern), "\(name): y", file: file, line: line)
        XCTAssertEqual(got.dx.map(\.bitPattern), want.dx.map(\.bitPattern), "\(name): dx", file: file, line: line)
        XCTAssertEqual(got.weight.map(\.bitPattern), want.weight.map(\.bitPattern), "\(name): weight gradient",
                       file: file, line: line)
        // A bias is added, not multiplied: its gradient sums the float32 dy, as in the fp32 layer.
        XCTAssertEqual(got.bias.map(\.bitPattern), fp32.bias.map(\.bitPattern), "\(name): bias gradient", file: file, line: line)
        XCTAssertNotEqual(got.y, fp32.y, "\(name): bf16 gave the float32 output", file: file, line: line)
        XCTAssertEqual(Array(stores[0].values.buffer), weights,
                       "\(name): the master weights changed", file: file, line: line)
    }
}

/// One forward and backward of a built layer on copies of `x` and `dy`: the output, dx, and the
/// gradients of its weights and of its biases.
private struct Pass {
    let y, dx, weight, bias: [Float]
    /// Whether the pass wrote into its x or dy.
    let changedInputs: Bool

    init(_ layer: Layer, _ store: ParameterStore, input: FeatureShape, out: FeatureShape, batch: Int, x: [Float], dy: [Float]) {
        let xs = Storage(count: x.count), dys = Storage(count: dy.count)
        _ = xs.buffer.update(fromContentsOf: x)
        _ = dys.buffer.update(fromContentsOf: dy)
        y = layer.forward(Tensor(storage: xs, batch: batch, shape: input), mode: .train).toArray()
        store.zeroGrads()
        dx = layer.backward(Tensor(storage: dys, batch: batch, shape: out)).toArray()
        changedInputs = Array(xs.buffer) != x || Array(dys.buffer) != dy
        func grads(_ role: ParameterRole) -> [Float] { store.parameters.filter { $0.role == role }.flatMap { Array($0.grads) } }
        weight = grads(.weight)
        bias = grads(.bias)
    }
}
