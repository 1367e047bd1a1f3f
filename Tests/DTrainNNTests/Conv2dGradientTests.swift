import XCTest
@testable import DTrainCore
@testable import DTrainNN

final class Conv2dGradientTests: XCTestCase {
    private func check(_ conv: Conv2d, _ input: FeatureShape, batch: Int = 2,
                       file: StaticString = #filePath, line: UInt = #line) {
        let errors = GradientCheck().check(conv, input: input, batch: batch, file: file, line: line)
        XCTAssertNotNil(errors["input"], file: file, line: line)
        XCTAssertNotNil(errors["weight"], file: file, line: line)
        if conv.bias != nil { XCTAssertNotNil(errors["bias"], file: file, line: line) }
    }

    func testPlain3x3Padded() {
        check(Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, bias: true),
              FeatureShape(height: 5, width: 6, channels: 3))
    }

    func testStride2() {
        check(Conv2d(inChannels: 3, outChannels: 5, kernelSize: 3, stride: 2, padding: 1, bias: true),
              FeatureShape(height: 7, width: 6, channels: 3))
    }

    func testDilation2Padding2() {
        check(Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, padding: 2, dilation: 2, bias: true),
              FeatureShape(height: 6, width: 5, channels: 2))
    }

    func testGroups2() {
        check(Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, padding: 1, groups: 2, bias: true),
              FeatureShape(height: 5, width: 5, channels: 4))
    }

    func testGroups4ResNeXtStyle() {
        check(Conv2d(inChannels: 8, outChannels: 8, kernelSize: 3, stride: 2, padding: 1, groups: 4, bias: true),
              FeatureShape(height: 6, width: 6, channels: 8))
    }

    func testDepthwise() {
        check(Conv2d(inChannels: 5, outChannels: 5, kernelSize: 3, padding: 1, groups: 5, bias: true),
              FeatureShape(height: 5, width: 4, channels: 5))
    }

    func testDepthwiseWithChannelMultiplier() {
        check(Conv2d(inChannels: 3, outChannels: 6, kernelSize: 3, padding: 1, groups: 3, bias: true),
              FeatureShape(height: 4, width: 5, channels: 3))
    }

    func testPointwiseStride1() {
        check(Conv2d(inChannels: 6, outChannels: 4, kernelSize: 1, bias: true),
              FeatureShape(height: 3, width: 4, channels: 6))
    }

    func testPointwiseStride1Grouped() {
        check(Conv2d(inChannels: 6, outChannels: 4, kernelSize: 1, groups: 2, bias: true),
              FeatureShape(height: 3, width: 4, channels: 6))
    }

    func testPointwiseStride2() {
        check(Conv2d(inChannels: 4, outChannels: 6, kernelSize: 1, stride: 2, bias: true),
              FeatureShape(height: 5, width: 6, channels: 4))
    }

    func testStem7x7Stride2() {
        check(Conv2d(inChannels: 3, outChannels: 4, kernelSize: 7, stride: 2, padding: 3, bias: true),
              FeatureShape(height: 9, width: 8, channels: 3))
    }

    func testKernelLargerThanInput() {
        check(Conv2d(inChannels: 2, outChannels: 3, kernelSize: 5, padding: 2, bias: true),
              FeatureShape(height: 3, width: 2, channels: 2))
    }

    func testFrozenWeightsGetNoGradientButInputDoes() {
        let conv = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, bias: true)
        let store = ParameterStore(layer: conv)
        defer { withExtendedLifetime(store) {} }
        store.initialize(seed: 3)
        conv.weight.trainable = false
        conv.bias!.trainable = false
        let input = FeatureShape(height: 4, width: 4, channels: 3)
        let ws = Workspace()
        let out = conv.build(input: input, maxBatch: 2, inputNeedsGradient: true, context: BuildContext(workspace: ws))
        ws.allocate()
        let x = randomStorage(2 * input.count, seed: 1)
        let dy = randomStorage(2 * out.count, seed: 2)
        _ = conv.forward(Tensor(storage: x, batch: 2, shape: input), mode: .train)
        store.zeroGrads()
        let dx = conv.backward(Tensor(storage: dy, batch: 2, shape: out))
        XCTAssertEqual(dx.count, x.count)
        XCTAssertTrue(store.grads.buffer.allSatisfy { $0 == 0 })
        XCTAssertGreaterThan(dx.buffer.map { abs($0) }.max()!, 0)
    }

    func testWithoutInputGradientReturnsNoGradient() {
        let conv = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1)
        let store = ParameterStore(layer: conv)
        defer { withExtendedLifetime(store) {} }
        store.initialize(seed: 3)
        let input = FeatureShape(height: 4, width: 4, channels: 3)
        let ws = Workspace()
        let out = conv.build(input: input, maxBatch: 2, inputNeedsGradient: false, context: BuildContext(workspace: ws))
        ws.allocate()
        let x = randomStorage(2 * input.count, seed: 1)
        let dy = randomStorage(2 * out.count, seed: 2)
        _ = conv.forward(Tensor(storage: x, batch: 2, shape: input), mode: .train)
        store.zeroGrads()
        let dx = conv.backward(Tensor(storage: dy, batch: 2, shape: out))
        XCTAssertEqual(dx.count, 0)
        XCTAssertGreaterThan(conv.weight.grads.map { abs($0) }.max()!, 0)
    }

    func testGradientsAccumulate() {
        let conv = Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1, bias: true)
        let store = ParameterStore(layer: conv)
        store.initialize(seed: 5)
        let input = FeatureShape(height: 5, width: 5, channels: 2)
        let ws = Workspace()
        let out = conv.build(input: input, maxBatch: 2, inputNeedsGradient: true, context: BuildContext(workspace: ws))
        ws.allocate()
        let x = randomStorage(2 * input.count, seed: 1)
        let dy = randomStorage(2 * out.count, seed: 2)
        let xt = Tensor(storage: x, batch: 2, shape: input), dyt = Tensor(storage: dy, batch: 2, shape: out)
        _ = conv.forward(xt, mode: .train)
        store.zeroGrads()
        _ = conv.backward(dyt)
        let once = Array(store.grads.buffer)
        _ = conv.forward(xt, mode: .train)
        _ = conv.backward(dyt)
        let twice = Array(store.grads.buffer)
        for i in 0..<once.count { XCTAssertEqual(twice[i], 2 * once[i], accuracy: 1e-5 * max(1, abs(once[i]))) }
        XCTAssertEqual(conv.macsPerSample, 3 * 3 * 3 * 2 * 9)
    }

    func testStateNames() {
        let conv = Conv2d(inChannels: 4, outChannels: 8, kernelSize: 3, groups: 2, bias: true)
        var entries: [StateEntry] = []
        conv.collectState(prefix: "layer1.0.conv1", into: &entries)
        XCTAssertEqual(entries.map(\.name), ["layer1.0.conv1.weight", "layer1.0.conv1.bias"])
        XCTAssertEqual(entries.map(\.torchShape), [[8, 2, 3, 3], [8]])
        XCTAssertEqual(conv.weight.layout, .convOHWI)
        XCTAssertEqual(conv.weight.role, .weight)
        XCTAssertEqual(conv.bias?.role, .bias)
        XCTAssertNil(Conv2d(inChannels: 4, outChannels: 8, kernelSize: 3).bias)
    }

    func testOutputSizesMatchTorch() {
        func outShape(_ conv: Conv2d, _ h: Int, _ w: Int, _ c: Int) -> FeatureShape {
            conv.build(input: FeatureShape(height: h, width: w, channels: c), maxBatch: 1,
                       inputNeedsGradient: false, context: BuildContext(workspace: Workspace()))
        }
        XCTAssertEqual(outShape(Conv2d(inChannels: 3, outChannels: 64, kernelSize: 7, stride: 2, padding: 3), 224, 224, 3),
                       FeatureShape(height: 112, width: 112, channels: 64))
        XCTAssertEqual(outShape(Conv2d(inChannels: 8, outChannels: 8, kernelSize: 3, stride: 2, padding: 1), 7, 7, 8),
                       FeatureShape(height: 4, width: 4, channels: 8))
        XCTAssertEqual(outShape(Conv2d(inChannels: 8, outChannels: 4, kernelSize: 1, stride: 2), 7, 8, 8),
                       FeatureShape(height: 4, width: 4, channels: 4))
        XCTAssertEqual(outShape(Conv2d(inChannels: 2, outChannels: 2, kernelSize: 3, padding: 2, dilation: 2), 6, 5, 2),
                       FeatureShape(height: 6, width: 5, channels: 2))
    }

    // MARK: batch and tiling

    /// Runs forward and backward on `batch` samples of a layer built for `maxBatch`, returning
    /// (y, dx, parameter gradients).
    private func run(_ make: () -> Conv2d, input: FeatureShape, maxBatch: Int, batch: Int,
                     tileRows: Int? = nil) -> (y: [Float], dx: [Float], grads: [Float]) {
        let conv = make()
        if let tileRows { conv.minTileRows = tileRows; conv.columnTileFloats = 0 }
        let store = ParameterStore(layer: conv)
        store.initialize(seed: 11)
        for i in 0..<(conv.bias?.count ?? 0) { conv.bias!.value[i] = Float(i) * 0.1 - 0.2 }
        let ws = Workspace()
        let out = conv.build(input: input, maxBatch: maxBatch, inputNeedsGradient: true, context: BuildContext(workspace: ws))
        ws.allocate()
        let x = randomStorage(maxBatch * input.count, seed: 21)
        let dy = randomStorage(maxBatch * out.count, seed: 22)
        let y = conv.forward(Tensor(storage: x, batch: batch, shape: input), mode: .train).toArray()
        store.zeroGrads()
        let dx = conv.backward(Tensor(storage: dy, batch: batch, shape: out)).toArray()
        return (y, dx, Array(store.grads.buffer))
    }

    func testSmallerBatchGivesTheSamePerSampleResults() {
        let input = FeatureShape(height: 6, width: 5, channels: 4)
        for make in [{ Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, padding: 1, bias: true) },
                     { Conv2d(inChannels: 4, outChannels: 6, kernelSize: 1, groups: 2, bias: true) }] {
            let full = run(make, input: input, maxBatch: 4, batch: 4)
            let part = run(make, input: input, maxBatch: 4, batch: 3)
            XCTAssertEqual(part.y.count * 4, full.y.count * 3)
            XCTAssertEqual(part.dx.count * 4, full.dx.count * 3)
            for i in 0..<part.y.count { XCTAssertEqual(part.y[i], full.y[i], accuracy: 1e-5) }
            for i in 0..<part.dx.count { XCTAssertEqual(part.dx[i], full.dx[i], accuracy: 1e-5) }
            // Built for 3 samples, run on 3: the same as built for 4 and run on 3.
            let exact = run(make, input: input, maxBatch: 3, batch: 3)
            for i in 0..<part.y.count { XCTAssertEqual(part.y[i], exact.y[i], accuracy: 1e-5) }
            for i in 0..<part.grads.count { XCTAssertEqual(part.grads[i], exact.grads[i], accuracy: 1e-4) }
        }
    }

    func testTiledColumnsMatchWholeBatch() {
        let input = FeatureShape(height: 7, width: 6, channels: 4)
        for make in [{ Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, padding: 1, bias: true) },
                     { Conv2d(inChannels: 4, outChannels: 8, kernelSize: 3, padding: 2, dilation: 2, groups: 4, bias: true) }] {
            let whole = run(make, input: input, maxBatch: 5, batch: 5, tileRows: 1 << 20)
            // One row per tile; 5 rows per tile (tiles straddle images; a partial last tile); one
            // image per tile; the default.
            let probe = make()
            let perImage: Int = {
                let g = ConvGeometry(input: input, kernel: probe.kernelSize, stride: probe.stride, padding: probe.padding,
                                     dilation: probe.dilation, groups: probe.groups)
                return g.outPixels
            }()
            for rows: Int? in [1, 5, perImage, nil] {
                let tiled = run(make, input: input, maxBatch: 5, batch: 5, tileRows: rows)
                for i in 0..<whole.y.count { XCTAssertEqual(tiled.y[i], whole.y[i], accuracy: 1e-5) }
                for i in 0..<whole.dx.count { XCTAssertEqual(tiled.dx[i], whole.dx[i], accuracy: 1e-5) }
                for i in 0..<whole.grads.count { XCTAssertEqual(tiled.grads[i], whole.grads[i], accuracy: 1e-4 * max(1, abs(whole.grads[i]))) }
            }
        }
    }

    func testTileSizeFollowsTheColumnTarget() {
        let threads = Compute.threads
        let input = FeatureShape(height: 4, width: 4, channels: 4)
        let conv = Conv2d(inChannels: 4, outChannels: 4, kernelSize: 3, padding: 1)
        conv.columnTileFloats = 40 * 36 + 5
        conv.minTileRows = 8
        let ws = Workspace()
        _ = conv.build(input: input, maxBatch: 8, inputNeedsGradient: true, context: BuildContext(workspace: ws))
        XCTAssertEqual(conv.tileRows, 40)
        XCTAssertEqual(conv.plannedThreads, threads)
        // A column tile per thread (whole 64-byte lines) and a partial dW per thread but the first.
        XCTAssertEqual(ws.capacity, threads * 1440 + (threads - 1) * 144)
        // The minimum wins over a small target, and no tile exceeds the batch.
        conv.columnTileFloats = 1
        _ = conv.build(input: input, maxBatch: 8, inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
        XCTAssertEqual(conv.tileRows, 8)
        conv.columnTileFloats = 1 << 30
        _ = conv.build(input: input, maxBatch: 8, inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
        XCTAssertEqual(conv.tileRows, 8 * 16)
        let pointwise = Conv2d(inChannels: 4, outChannels: 4, kernelSize: 1)
        let ws3 = Workspace()
        _ = pointwise.build(input: input, maxBatch: 8, inputNeedsGradient: true, context: BuildContext(workspace: ws3))
        XCTAssertEqual(pointwise.tileRows, 0)
        XCTAssertEqual(ws3.capacity, (threads - 1) * 16)
    }
}

fileprivate func randomStorage(_ count: Int, seed: UInt64) -> Storage {
    var rng = SeededRandom(seed: seed)
    let s = Storage(count: count)
    for i in 0..<count { s.pointer[i] = Float(rng.normal()) }
    return s
}
