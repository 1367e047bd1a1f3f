import Foundation
import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights

/// A PyTorch reference file from Tests/DTrainNNTests/Fixtures (written by
/// Tests/FixtureScripts/layer_fixtures.py): tensors in torch's layouts.
struct LayerFixture {
    let file: SafeTensorsFile

    init(_ name: String) throws {
        guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
            throw SafeTensorsError("fixture \(name).safetensors is not in the test bundle")
        }
        file = try SafeTensorsFile(contentsOf: url)
    }

    func floats(_ name: String) throws -> [Float] { try file.floats(name) }
    func shape(_ name: String) throws -> [Int] { try file.entry(name).shape }

    /// A [N, C, H, W] tensor converted to NHWC, with its NHWC per-sample shape.
    func nhwc(_ name: String) throws -> (values: [Float], batch: Int, shape: FeatureShape) {
        let s = try shape(name)
        precondition(s.count == 4, "\(name) is not 4-d")
        let values = Layout.nchwToNHWC(try floats(name), n: s[0], c: s[1], h: s[2], w: s[3])
        return (values, s[0], FeatureShape(height: s[2], width: s[3], channels: s[1]))
    }
}

/// Asserts max |a − b| ≤ tolerance · max(1, max |b|).
func assertMatches(_ actual: [Float], _ expected: [Float], _ what: String, tolerance: Float = 1e-4,
                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): element count", file: file, line: line)
    guard actual.count == expected.count else { return }
    let scale = max(1, expected.map(abs).max() ?? 0)
    let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(what): max abs error \(worst) at scale \(scale)", file: file, line: line)
}

final class LayerFixtureTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    /// Builds `layer` for the fixture's x, runs forward and backward with its dy, and compares y and
    /// dx (both converted from NCHW). Returns the layer's parameter store (gradients zeroed first).
    @discardableResult
    private func forwardBackward(_ layer: Layer, _ f: LayerFixture, mode: Mode, setParameters: (() throws -> Void)? = nil,
                                 line: UInt = #line) throws -> ParameterStore {
        let store = ParameterStore(layer: layer)
        try setParameters?()
        let x = try f.nhwc("x")
        let out = layer.build(input: x.shape, maxBatch: x.batch, inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
        let xs = Storage(count: x.values.count)
        _ = xs.buffer.update(fromContentsOf: x.values)
        let y = layer.forward(Tensor(storage: xs, batch: x.batch, shape: x.shape), mode: mode)
        let expectedY = try f.nhwc("y")
        XCTAssertEqual(out, expectedY.shape, line: line)
        assertMatches(y.toArray(), expectedY.values, "y", line: line)

        let dy = try f.nhwc("dy")
        let dys = Storage(count: dy.values.count)
        _ = dys.buffer.update(fromContentsOf: dy.values)
        store.zeroGrads()
        let dx = layer.backward(Tensor(storage: dys, batch: dy.batch, shape: dy.shape))
        assertMatches(dx.toArray(), try f.nhwc("dx").values, "dx", line: line)
        return store
    }

    // MARK: BatchNorm2d

    private func batchNorm(_ name: String, mode: Mode) throws {
        let f = try LayerFixture(name)
        let channels = try f.shape("weight")[0]
        let bn = BatchNorm2d(channels: channels)
        let store = try forwardBackward(bn, f, mode: mode) {
            bn.weight.setTorchValues(try f.floats("weight"))
            bn.bias.setTorchValues(try f.floats("bias"))
            _ = bn.runningMean.storage.buffer.update(fromContentsOf: try f.floats("running_mean_before"))
            _ = bn.runningVar.storage.buffer.update(fromContentsOf: try f.floats("running_var_before"))
        }
        assertMatches(Array(bn.weight.grads), try f.floats("dweight"), "dweight")
        assertMatches(Array(bn.bias.grads), try f.floats("dbias"), "dbias")
        assertMatches(Array(bn.runningMean.storage.buffer), try f.floats("running_mean"), "running_mean", tolerance: 1e-5)
        assertMatches(Array(bn.runningVar.storage.buffer), try f.floats("running_var"), "running_var", tolerance: 1e-5)
        XCTAssertEqual(bn.numBatchesTracked.value, mode == .train ? 1 : 0)
        withExtendedLifetime(store) {}
    }

    func testBatchNormTrainStep() throws { try batchNorm("bn_train", mode: .train) }
    func testBatchNormEval() throws { try batchNorm("bn_eval", mode: .eval) }

    // MARK: Pooling

    private func maxPool(_ name: String) throws {
        let f = try LayerFixture(name)
        let p = try f.floats("params").map { Int($0) }
        try forwardBackward(MaxPool2d(kernelSize: p[0], stride: p[1], padding: p[2]), f, mode: .train)
    }

    func testMaxPool3x3Stride2Pad1() throws { try maxPool("maxpool_k3s2p1") }
    func testMaxPool2x2Stride2OddInput() throws { try maxPool("maxpool_k2s2") }
    func testMaxPoolTiesGoToTheFirstMaximum() throws { try maxPool("maxpool_ties") }

    func testAdaptiveAvgPoolToOne() throws {
        let f = try LayerFixture("avgpool_to1")
        try forwardBackward(AdaptiveAvgPool2d(outputSize: Int(try f.floats("output_size")[0])), f, mode: .train)
    }

    func testAdaptiveAvgPoolNonDividingBins() throws {
        let f = try LayerFixture("avgpool_5x7to3")
        try forwardBackward(AdaptiveAvgPool2d(outputSize: Int(try f.floats("output_size")[0])), f, mode: .train)
    }

    // MARK: Linear

    func testLinear() throws { try linear(precision: .fp32) }

    /// Built for bf16, within bf16 tolerance (relative 1e-2) of PyTorch's float32 results.
    func testLinearInBF16WithinBF16Tolerance() throws { try linear(precision: .bf16) }

    private func linear(precision: Precision) throws {
        let tolerance: Float = precision == .bf16 ? 1e-2 : 1e-4
        let f = try LayerFixture("linear")
        let w = try f.shape("weight")
        let linear = Linear(inFeatures: w[1], outFeatures: w[0])
        let store = ParameterStore(layer: linear)
        linear.weight.setTorchValues(try f.floats("weight"))
        linear.bias!.setTorchValues(try f.floats("bias"))
        let xShape = try f.shape("x")
        let batch = xShape[0]
        let workspace = Workspace()
        _ = linear.build(input: FeatureShape(features: w[1]), maxBatch: batch, inputNeedsGradient: true,
                         context: BuildContext(workspace: workspace, precision: precision))
        workspace.allocate()
        let xs = Storage(count: batch * w[1])
        _ = xs.buffer.update(fromContentsOf: try f.floats("x"))
        let y = linear.forward(Tensor(storage: xs, batch: batch, shape: FeatureShape(features: w[1])), mode: .train)
        assertMatches(y.toArray(), try f.floats("y"), "y", tolerance: tolerance)
        let dys = Storage(count: batch * w[0])
        _ = dys.buffer.update(fromContentsOf: try f.floats("dy"))
        store.zeroGrads()
        let dx = linear.backward(Tensor(storage: dys, batch: batch, shape: FeatureShape(features: w[0])))
        assertMatches(dx.toArray(), try f.floats("dx"), "dx", tolerance: tolerance)
        assertMatches(Array(linear.weight.grads), try f.floats("dweight"), "dweight", tolerance: tolerance)
        assertMatches(Array(linear.bias!.grads), try f.floats("dbias"), "dbias", tolerance: tolerance)
        withExtendedLifetime(store) {}
    }

    /// Flatten then Linear with torch's weights unchanged: torch.flatten(x, 1) order.
    func testFlattenThenLinearTakesTorchWeights() throws {
        let f = try LayerFixture("linear_flatten")
        let w = try f.shape("weight")
        let flatten = Flatten(), linear = Linear(inFeatures: w[1], outFeatures: w[0])
        let model = Sequential([("flatten", flatten), ("fc", linear)])
        let store = ParameterStore(layer: model)
        XCTAssertEqual(model.parameters.count, 2)
        linear.weight.setTorchValues(try f.floats("weight"))
        linear.bias!.setTorchValues(try f.floats("bias"))
        let x = try f.nhwc("x")
        let out = model.build(input: x.shape, maxBatch: x.batch, inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
        XCTAssertEqual(out, FeatureShape(features: w[0]))
        let xs = Storage(count: x.values.count)
        _ = xs.buffer.update(fromContentsOf: x.values)
        let y = model.forward(Tensor(storage: xs, batch: x.batch, shape: x.shape), mode: .train)
        assertMatches(y.toArray(), try f.floats("y"), "y")
        let dys = Storage(count: x.batch * w[0])
        _ = dys.buffer.update(fromContentsOf: try f.floats("dy"))
        store.zeroGrads()
        let dx = model.backward(Tensor(storage: dys, batch: x.batch, shape: out))
        assertMatches(dx.toArray(), try f.nhwc("dx").values, "dx")
        assertMatches(Array(linear.weight.grads), try f.floats("dweight"), "dweight")
        assertMatches(Array(linear.bias!.grads), try f.floats("dbias"), "dbias")
        withExtendedLifetime(store) {}
    }

    // MARK: Cross-entropy

    private func crossEntropy(_ name: String) throws {
        let f = try LayerFixture(name)
        let s = try f.shape("logits")
        let batch = s[0], classes = s[1]
        let loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: try f.floats("label_smoothing")[0])
        loss.build(maxBatch: batch)
        let logits = Storage(count: batch * classes)
        _ = logits.buffer.update(fromContentsOf: try f.floats("logits"))
        let labels = try f.file.int64s("labels").map { Int32($0) }
        let value = labels.withUnsafeBufferPointer {
            loss.forward(logits: Tensor(storage: logits, batch: batch, shape: FeatureShape(features: classes)), labels: $0.baseAddress!)
        }
        assertMatches([value], try f.floats("loss"), "loss", tolerance: 1e-5)
        assertMatches(loss.backward().toArray(), try f.floats("dlogits"), "dlogits", tolerance: 1e-5)
    }

    func testCrossEntropy() throws { try crossEntropy("ce_plain") }
    func testCrossEntropyWithLabelSmoothing() throws { try crossEntropy("ce_smooth") }
}
