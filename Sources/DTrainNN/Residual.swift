import DTrainCore

/// A residual block: y = act(main(x) + shortcut(x)), with an identity shortcut when none is given.
///
/// `main`'s children are named directly under the block (torchvision: "layer1.0.conv1"); the
/// shortcut under `shortcutName` ("downsample" in torchvision). The add and the optional ReLU are
/// fused into one pass, and backward masks with the stored output.
public final class Residual: Layer, InspectableContainer {
    public let main: Sequential
    public let shortcut: Layer?
    public let shortcutName: String
    public let reluAfterAdd: Bool

    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var dsum: ActivationBuffer?
    private var lastOutput: Tensor?

    public init(main: Sequential, shortcut: Layer? = nil, shortcutName: String = "downsample", reluAfterAdd: Bool = true) {
        self.main = main
        self.shortcut = shortcut
        self.shortcutName = shortcutName
        self.reluAfterAdd = reluAfterAdd
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        let out = main.build(input: input, maxBatch: maxBatch, inputNeedsGradient: inputNeedsGradient, context: context)
        let sc = shortcut?.build(input: input, maxBatch: maxBatch, inputNeedsGradient: inputNeedsGradient, context: context) ?? input
        precondition(sc == out, "residual branches disagree: main gives \(out), shortcut \(sc)")
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        dsum = reluAfterAdd ? ActivationBuffer(shape: out, maxBatch: maxBatch) : nil
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let a = main.forward(x, mode: mode)
        let b = shortcut.map { measuredForward($0, x, mode: mode) } ?? x
        let y = output.tensor(batch: x.batch)
        let pa = a.data, pb = b.data, py = y.data, relu = reluAfterAdd
        Profiler.measure(.elementwise) {
            parallelFor(y.count, minChunk: 8192) { r in
                if relu { for i in r { py[i] = max(pa[i] + pb[i], 0) } }
                else { for i in r { py[i] = pa[i] + pb[i] } }
            }
        }
        lastOutput = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var d = dy
        if reluAfterAdd, let dsum, let y = lastOutput {
            d = dsum.tensor(batch: dy.batch)
            let pd = d.data, pdy = dy.data, py = y.data
            Profiler.measure(.elementwise) {
                parallelFor(d.count, minChunk: 8192) { r in for i in r { pd[i] = py[i] > 0 ? pdy[i] : 0 } }
            }
        }
        let dMain = main.backward(d)
        let dShort = shortcut.map { measuredBackward($0, d) } ?? d
        guard let inputGradient else { return noGradient }
        let dx = inputGradient.tensor(batch: dy.batch)
        let p = dx.data, pa = dMain.data, pb = dShort.data
        Profiler.measure(.elementwise) {
            parallelFor(dx.count, minChunk: 8192) { r in for i in r { p[i] = pa[i] + pb[i] } }
        }
        return dx
    }

    func attach(_ inspector: LayerInspector?, prefix: String) {
        main.attach(inspector, prefix: prefix)
        (shortcut as? InspectableContainer)?.attach(inspector, prefix: qualified(prefix, shortcutName))
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        main.collectState(prefix: prefix, into: &entries)
        shortcut?.collectState(prefix: qualified(prefix, shortcutName), into: &entries)
    }

    public var macsPerSample: Int { main.macsPerSample + (shortcut?.macsPerSample ?? 0) }

    public func visit(_ body: (Layer) -> Void) {
        body(self)
        main.visit(body)
        shortcut?.visit(body)
    }
}
