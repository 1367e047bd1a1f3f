import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights

/// Conv2d against PyTorch: Tests/FixtureScripts/conv_fixtures.py wrote, per configuration, the
/// input, parameters, output, an upstream gradient and the autograd gradients in torch's layouts.
final class Conv2dFixtureTests: XCTestCase {
    static let cases = ["plain", "stride2", "dilation2", "groups4", "depthwise",
                        "pointwise", "pointwise_stride2", "stem7x7s2"]

    func testAllFixtureCases() throws {
        for name in Self.cases { try check(name) }
    }

    /// Built for bf16 (`Precision.bf16`), every case stays within bf16 tolerance of PyTorch's
    /// float32 results: relative 1e-2 of the reference's scale.
    func testFixturesInBF16WithinBF16Tolerance() throws {
        for name in Self.cases { try check(name, precision: .bf16) }
    }

    func testFixturesWithSmallColumnTiles() throws {
        // One row per column tile, and 7-row tiles that straddle images and leave a partial last
        // tile: the tiled path against the same references.
        for name in ["stride2", "groups4", "stem7x7s2", "dilation2"] {
            try check(name, tileRows: 1)
            try check(name, tileRows: 7)
        }
    }

    func testGroupedFixturesThroughGEMMAndDirectKernel() throws {
        for name in ["depthwise"] {
            try check(name) { $0.useDirectKernel = false }
            try check(name) { $0.directKernelMaxGroupWidth = 64 }
        }
    }

    func testFixturesAtSeveralThreadCounts() throws {
        let saved = Compute.threads
        defer { Compute.setThreads(saved) }
        for threads in [1, 2, 3] {
            Compute.setThreads(threads)
            for name in Self.cases { try check(name) }
        }
    }

    private func check(_ name: String, tileRows: Int? = nil, precision: Precision = .fp32,
                       configure: ((Conv2d) -> Void)? = nil) throws {
        let tolerance: Float = precision == .bf16 ? 1e-2 : 1e-4
        let url = try XCTUnwrap(Bundle.module.url(forResource: "conv_\(name)", withExtension: "safetensors",
                                                  subdirectory: "Fixtures"), "fixture conv_\(name) missing")
        let file = try SafeTensorsFile(contentsOf: url)
        func meta(_ key: String) throws -> Int {
            try XCTUnwrap(file.metadata[key].flatMap { Int($0) }, "\(name): metadata \(key)")
        }
        let conv = Conv2d(inChannels: try meta("in_channels"), outChannels: try meta("out_channels"),
                          kernelSize: try meta("kernel_size"), stride: try meta("stride"), padding: try meta("padding"),
                          dilation: try meta("dilation"), groups: try meta("groups"), bias: file.metadata["bias"] == "true")
        if let tileRows { conv.minTileRows = tileRows; conv.columnTileFloats = 0 }
        configure?(conv)
        let store = ParameterStore(layer: conv)
        // The parameters point into the store's buffers: keep it alive to the end.
        defer { withExtendedLifetime(store) {} }
        conv.weight.setTorchValues(try file.floats("weight"))
        if let bias = conv.bias { bias.setTorchValues(try file.floats("bias")) }

        let xs = try file.entry("x").shape, ys = try file.entry("y").shape
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3])
        let (o, oh, ow) = (ys[1], ys[2], ys[3])
        let input = FeatureShape(height: h, width: w, channels: c)
        let workspace = Workspace()
        let out = conv.build(input: input, maxBatch: n, inputNeedsGradient: true, context: BuildContext(workspace: workspace, precision: precision))
        workspace.allocate()
        XCTAssertEqual(out, FeatureShape(height: oh, width: ow, channels: o), name)

        let x = Storage(count: n * input.count)
        _ = x.buffer.update(fromContentsOf: Layout.nchwToNHWC(try file.floats("x"), n: n, c: c, h: h, w: w))
        let y = conv.forward(Tensor(storage: x, batch: n, shape: input), mode: .train)
        assertClose(Layout.nhwcToNCHW(y.toArray(), n: n, c: o, h: oh, w: ow), try file.floats("y"), "\(name): y", tolerance: tolerance)
        XCTAssertEqual(conv.macsPerSample, oh * ow * o * (c / conv.groups) * conv.kernelSize * conv.kernelSize)

        let dy = Storage(count: n * out.count)
        let dyValues = Layout.nchwToNHWC(try file.floats("dy"), n: n, c: o, h: oh, w: ow)
        _ = dy.buffer.update(fromContentsOf: dyValues)
        store.zeroGrads()
        let dx = conv.backward(Tensor(storage: dy, batch: n, shape: out))
        XCTAssertEqual(dy.buffer.elementsEqual(dyValues), true, "\(name): backward modified dy")
        assertClose(Layout.nhwcToNCHW(dx.toArray(), n: n, c: c, h: h, w: w), try file.floats("dx"), "\(name): dx", tolerance: tolerance)
        let k = conv.kernelSize
        assertClose(Layout.ohwiToOIHW(Array(conv.weight.grads), o: o, i: c / conv.groups, kh: k, kw: k),
                    try file.floats("dweight"), "\(name): dweight", tolerance: tolerance)
        if let bias = conv.bias { assertClose(Array(bias.grads), try file.floats("dbias"), "\(name): dbias", tolerance: tolerance) }
    }

    /// Max absolute error within `tolerance` of the reference's scale (its largest magnitude, at least 1).
    private func assertClose(_ actual: [Float], _ expected: [Float], _ what: String, tolerance: Float = 1e-4,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
        guard actual.count == expected.count else { return }
        let scale = max(1, expected.map { abs($0) }.max() ?? 0)
        var worst: Float = 0
        for i in 0..<actual.count { worst = max(worst, abs(actual[i] - expected[i])) }
        XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(what): max abs error \(worst) at scale \(scale)", file: file, line: line)
    }
}
