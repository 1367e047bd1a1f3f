import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Behaviour beyond gradients: dropout masks, shapes, index orders, state names.
final class LayerBehaviourTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    private func build(_ layer: Layer, _ input: FeatureShape, batch: Int, needsGradient: Bool = true, seed: UInt64 = 3) -> FeatureShape {
        let workspace = Workspace()
        let out = layer.build(input: input, maxBatch: batch, inputNeedsGradient: needsGradient,
                              context: BuildContext(workspace: workspace, seed: seed))
        workspace.allocate()
        return out
    }

    /// Storages behind the tensors a test makes, alive until the test ends.
    private var retained: [Storage] = []

    private func tensor(_ values: [Float], batch: Int, shape: FeatureShape) -> (Storage, Tensor) {
        let s = Storage(count: values.count)
        _ = s.buffer.update(fromContentsOf: values)
        retained.append(s)
        return (s, Tensor(storage: s, batch: batch, shape: shape))
    }

    override func tearDown() { retained.removeAll() }

    func testDropoutMaskIsFixedWithinAStepAndChangesAcrossSteps() {
        let shape = FeatureShape(height: 4, width: 4, channels: 16)
        let dropout = Dropout(p: 0.25)
        _ = build(dropout, shape, batch: 4)
        let (storage, x) = tensor([Float](repeating: 1, count: 4 * shape.count), batch: 4, shape: shape)
        dropout.step = 9
        let first = dropout.forward(x, mode: .train).toArray()
        let again = dropout.forward(x, mode: .train).toArray()
        XCTAssertEqual(first, again)
        dropout.step = 10
        let next = dropout.forward(x, mode: .train).toArray()
        XCTAssertNotEqual(first, next)

        // Kept elements are scaled by 1/(1−p); about p of them are dropped.
        let keep: Float = 1 / 0.75
        XCTAssertTrue(first.allSatisfy { $0 == 0 || $0 == keep })
        let dropped = Double(first.filter { $0 == 0 }.count) / Double(first.count)
        XCTAssertEqual(dropped, 0.25, accuracy: 0.06)

        // Backward applies the same mask.
        let dx = dropout.backward(dropout.forward(x, mode: .train)).toArray()
        XCTAssertEqual(dx, next.map { $0 * $0 })

        // Eval is the identity, forward and backward.
        for i in 0..<storage.count { storage.pointer[i] = Float(i) }
        let y = dropout.forward(x, mode: .eval)
        XCTAssertEqual(y.toArray(), x.toArray())
        XCTAssertEqual(dropout.backward(x).toArray(), x.toArray())

        // A different build seed draws a different mask for the same step.
        let other = Dropout(p: 0.25)
        _ = build(other, shape, batch: 4, seed: 4)
        other.step = 10
        for i in 0..<storage.count { storage.pointer[i] = 1 }
        XCTAssertNotEqual(other.forward(x, mode: .train).toArray(), next)
    }

    func testFlattenUsesTorchOrder() {
        let shape = FeatureShape(height: 2, width: 3, channels: 4)
        let flatten = Flatten()
        XCTAssertEqual(build(flatten, shape, batch: 2), FeatureShape(features: 24))
        let nchw = (0..<48).map(Float.init)
        let (_, x) = tensor(Layout.nchwToNHWC(nchw, n: 2, c: 4, h: 2, w: 3), batch: 2, shape: shape)
        let y = flatten.forward(x, mode: .train)
        XCTAssertEqual(y.toArray(), nchw)
        XCTAssertEqual(flatten.backward(y).toArray(), x.toArray())
    }

    func testPadShortcutMatchesTorchSlicingAndPadding() {
        // in 3 → out 8: extra 5, 2 zero channels before and 3 after; stride 2 on a 5×5 input keeps rows/cols 0, 2, 4.
        let shape = FeatureShape(height: 5, width: 5, channels: 3)
        let layer = PadShortcut(inChannels: 3, outChannels: 8, stride: 2)
        XCTAssertEqual(build(layer, shape, batch: 2), FeatureShape(height: 3, width: 3, channels: 8))
        let values = (0..<(2 * shape.count)).map { Float($0 + 1) }
        let (_, x) = tensor(values, batch: 2, shape: shape)
        let y = layer.forward(x, mode: .train).toArray()
        for n in 0..<2 { for i in 0..<3 { for j in 0..<3 { for c in 0..<8 {
            let expected: Float = (2..<5).contains(c) ? values[((n * 5 + 2 * i) * 5 + 2 * j) * 3 + c - 2] : 0
            XCTAssertEqual(y[((n * 3 + i) * 3 + j) * 8 + c], expected)
        } } } }
        let dy = (0..<y.count).map { Float($0) }
        let (_, dyt) = tensor(dy, batch: 2, shape: FeatureShape(height: 3, width: 3, channels: 8))
        let dx = layer.backward(dyt).toArray()
        for n in 0..<2 { for h in 0..<5 { for w in 0..<5 { for c in 0..<3 {
            let expected: Float = h % 2 == 0 && w % 2 == 0 ? dy[((n * 3 + h / 2) * 3 + w / 2) * 8 + c + 2] : 0
            XCTAssertEqual(dx[((n * 5 + h) * 5 + w) * 3 + c], expected)
        } } } }
    }

    func testBatchNormStateNamesFollowTorch() {
        let bn = BatchNorm2d(channels: 4)
        var entries: [StateEntry] = []
        bn.collectState(prefix: "layer1.0.bn1", into: &entries)
        XCTAssertEqual(entries.map(\.name), ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map { "layer1.0.bn1." + $0 })
        XCTAssertEqual(bn.weight.role, .normWeight)
        XCTAssertEqual(bn.bias.role, .normBias)
        XCTAssertEqual(Array(bn.runningVar.storage.buffer), [1, 1, 1, 1])
    }

    func testLayersWithoutInputGradientReturnNoGradient() {
        let shape = FeatureShape(height: 4, width: 4, channels: 2)
        let layers: [Layer] = [BatchNorm2d(channels: 2), ReLU(), ReLU6(), MaxPool2d(kernelSize: 2, stride: 2),
                               AdaptiveAvgPool2d(outputSize: 1), Linear(inFeatures: 32, outFeatures: 3), Dropout(p: 0.5),
                               Flatten(), PadShortcut(inChannels: 2, outChannels: 4, stride: 2)]
        for layer in layers {
            let store = ParameterStore(layer: layer)
            store.initialize(seed: 1)
            let out = build(layer, shape, batch: 2, needsGradient: false)
            let (_, x) = tensor((0..<64).map { Float($0 % 7) - 3 }, batch: 2, shape: shape)
            let y = layer.forward(x, mode: .train)
            XCTAssertEqual(y.shape, out)
            let dyStorage = Storage(count: 2 * out.count)
            dyStorage.buffer.update(repeating: 1)
            let dx = layer.backward(Tensor(storage: dyStorage, batch: 2, shape: out))
            XCTAssertEqual(dx.batch, 0, "\(type(of: layer))")
            withExtendedLifetime(store) {}
        }
    }

    func testSmallerBatchThanBuiltFor() {
        // Built for 4, run on 3: outputs and gradients cover exactly the 3 samples.
        let shape = FeatureShape(height: 3, width: 3, channels: 2)
        let pool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        let out = build(pool, shape, batch: 4)
        let (_, x) = tensor((0..<(3 * shape.count)).map { Float(($0 * 7) % 11) }, batch: 3, shape: shape)
        let y = pool.forward(x, mode: .train)
        XCTAssertEqual(y.batch, 3)
        XCTAssertEqual(y.count, 3 * out.count)
        let dx = pool.backward(y)
        XCTAssertEqual(dx.batch, 3)
    }

    /// Large enough for the row reduction to run in several chunks: compare with a Double reference.
    func testBatchNormMatchesDoubleReferenceOnALargerBatch() {
        let shape = FeatureShape(height: 16, width: 16, channels: 32), batch = 5
        let bn = BatchNorm2d(channels: 32)
        let store = ParameterStore(layer: bn)
        store.initialize(seed: 0)
        for c in 0..<32 { bn.weight.value[c] = 1 + 0.01 * Float(c); bn.bias.value[c] = 0.02 * Float(c) }
        _ = build(bn, shape, batch: batch)
        var rng = SeededRandom(seed: 8)
        let count = batch * shape.count, rows = count / 32
        let xv = (0..<count).map { i in Float(rng.normal() * 3 + Double(i % 32) * 0.5) }
        let dyv = (0..<count).map { _ in Float(rng.normal()) }
        let (_, x) = tensor(xv, batch: batch, shape: shape)
        let (_, dy) = tensor(dyv, batch: batch, shape: shape)
        store.zeroGrads()
        let y = bn.forward(x, mode: .train).toArray()
        let dx = bn.backward(dy).toArray()
        var worstY = 0.0, worstDx = 0.0
        for c in 0..<32 {
            var mean = 0.0, variance = 0.0
            for r in 0..<rows { mean += Double(xv[r * 32 + c]) }
            mean /= Double(rows)
            for r in 0..<rows { variance += (Double(xv[r * 32 + c]) - mean) * (Double(xv[r * 32 + c]) - mean) }
            variance /= Double(rows)
            let inv = 1 / (variance + 1e-5).squareRoot(), gamma = Double(bn.weight.value[c])
            var sdy = 0.0, sdyx = 0.0
            for r in 0..<rows {
                let xhat = (Double(xv[r * 32 + c]) - mean) * inv
                sdy += Double(dyv[r * 32 + c]); sdyx += Double(dyv[r * 32 + c]) * xhat
                worstY = max(worstY, abs(Double(y[r * 32 + c]) - (gamma * xhat + Double(bn.bias.value[c]))))
            }
            for r in 0..<rows {
                let xhat = (Double(xv[r * 32 + c]) - mean) * inv
                let ref = gamma * inv * (Double(dyv[r * 32 + c]) - sdy / Double(rows) - xhat * sdyx / Double(rows))
                worstDx = max(worstDx, abs(Double(dx[r * 32 + c]) - ref))
            }
            XCTAssertEqual(Double(bn.weight.grad[c]), sdyx, accuracy: 1e-3 * max(1, abs(sdyx)))
            XCTAssertEqual(Double(bn.bias.grad[c]), sdy, accuracy: 1e-3 * max(1, abs(sdy)))
            XCTAssertEqual(Double(bn.runningMean.pointer[c]), 0.1 * mean, accuracy: 1e-5 * max(1, abs(mean)))
            XCTAssertEqual(Double(bn.runningVar.pointer[c]), 0.9 + 0.1 * variance * Double(rows) / Double(rows - 1), accuracy: 1e-4 * max(1, variance))
        }
        XCTAssertLessThan(worstY, 1e-4)
        XCTAssertLessThan(worstDx, 1e-4)
        withExtendedLifetime(store) {}
    }

    /// A batch of one splits channels across threads in pooling backward: same results per sample.
    func testPoolingOfOneSampleMatchesItsRowInABatch() {
        let shape = FeatureShape(height: 7, width: 7, channels: 40)
        for make in [{ MaxPool2d(kernelSize: 3, stride: 2, padding: 1) as Layer }, { AdaptiveAvgPool2d(outputSize: 3) as Layer }] {
            let layer = make()
            let out = build(layer, shape, batch: 2)
            var rng = SeededRandom(seed: 4)
            let (_, x) = tensor((0..<(2 * shape.count)).map { _ in Float(rng.normal()) }, batch: 2, shape: shape)
            let (_, dy) = tensor((0..<(2 * out.count)).map { _ in Float(rng.normal()) }, batch: 2, shape: out)
            let y2 = layer.forward(x, mode: .train).toArray()
            let dx2 = layer.backward(dy).toArray()
            var x1 = x, dy1 = dy
            x1.batch = 1; dy1.batch = 1
            let y1 = layer.forward(x1, mode: .train).toArray()
            let dx1 = layer.backward(dy1).toArray()
            XCTAssertEqual(y1, Array(y2[0..<out.count]), "\(type(of: layer))")
            XCTAssertEqual(dx1, Array(dx2[0..<shape.count]), "\(type(of: layer))")
        }
    }

    /// Ties and NaNs against a direct transcription of torch's CPU kernel, on 12 channels (a block
    /// of eight and four single ones).
    func testMaxPoolTiesAndNaNsFollowTorch() {
        let H = 6, W = 5, C = 12, k = 3, st = 2, pad = 1, batch = 2
        let shape = FeatureShape(height: H, width: W, channels: C)
        let pool = MaxPool2d(kernelSize: k, stride: st, padding: pad)
        let out = build(pool, shape, batch: batch)
        var rng = SeededRandom(seed: 2)
        var xv = (0..<(batch * shape.count)).map { _ in Float(rng.int(below: 3)) }
        for _ in 0..<12 { xv[rng.int(below: xv.count)] = .nan }
        let (_, x) = tensor(xv, batch: batch, shape: shape)
        let dyv = (0..<(batch * out.count)).map { Float($0 + 1) }
        let (_, dy) = tensor(dyv, batch: batch, shape: out)
        let y = pool.forward(x, mode: .train).toArray()
        let dx = pool.backward(dy).toArray()
        var refY = [Float](repeating: 0, count: y.count), refDx = [Float](repeating: 0, count: xv.count)
        for n in 0..<batch { for oh in 0..<out.height { for ow in 0..<out.width { for c in 0..<C {
            let h0 = max(oh * st - pad, 0), h1 = min(oh * st - pad + k, H)
            let w0 = max(ow * st - pad, 0), w1 = min(ow * st - pad + k, W)
            var best = -Float.infinity, at = h0 * W + w0
            for h in h0..<h1 { for w in w0..<w1 {
                let v = xv[((n * H + h) * W + w) * C + c]
                if v > best || v.isNaN { best = v; at = h * W + w }
            } }
            let o = ((n * out.height + oh) * out.width + ow) * C + c
            refY[o] = best
            refDx[(n * H * W + at) * C + c] += dyv[o]
        } } } }
        XCTAssertEqual(y.map(\.bitPattern), refY.map(\.bitPattern))
        XCTAssertEqual(dx, refDx)
        XCTAssertTrue(y.contains { $0.isNaN })
    }
}
