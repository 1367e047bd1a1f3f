import DTrainCore

/// A residual block: y = act(main(x) + shortcut(x)), with an identity shortcut when none is given.
///
/// `main`'s children are named directly under the block (torchvision: "layer1.0.conv1"); the
/// shortcut under `shortcutName` ("downsample" in torchvision). The add and the optional ReLU are
/// fused into one pass, and backward masks with the stored output (with bf16 activation storage,
/// with a bit per output: `ReLUMask`). The block's dx is main's dx with the shortcut's gradient
/// added in place.
///
/// With an identity shortcut and a main branch that ends with a BatchNorm2d, that BatchNorm does
/// the add and the ReLU as it normalises, into the block's output (`EngineOptimisations
/// .fuseResidualAdd`, `BatchNorm2d.ResidualEpilogue`): the same values, one pass less. Not while
/// an inspector is attached, which is to see the BatchNorm's own output.
public final class Residual: Layer, LayerContainer {
    public let main: Sequential
    public let shortcut: Layer?
    public let shortcutName: String
    public let reluAfterAdd: Bool

    private var output: ActivationBuffer!
    private var dsum: ActivationBuffer?
    private var needsInputGradient = false
    private var lastOutput: Tensor?
    /// With bf16 activation storage: which outputs the ReLU passed, one bit each, since the
    /// output itself may live in shared memory.
    private var reluMask: ReLUMask?
    /// The BatchNorm that ends `main` and does the add (nil: the block adds in a pass of its own).
    private var fusedBatchNorm: BatchNorm2d?
    private var inspected = false
    /// The add, add + ReLU and ReLU backward passes, in the model's kernel set.
    private var passes = ElementwiseKernels(kernels: .best)

    /// Whether main's last BatchNorm does the add (as built, with no inspector attached).
    var addsInBatchNorm: Bool { fusedBatchNorm != nil && !inspected }

    public init(main: Sequential, shortcut: Layer? = nil, shortcutName: String = "downsample", reluAfterAdd: Bool = true) {
        self.main = main
        self.shortcut = shortcut
        self.shortcutName = shortcutName
        self.reluAfterAdd = reluAfterAdd
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        needsInputGradient = inputNeedsGradient
        // Shared activation memory: x stays in its slot while main runs (the shortcut reads it
        // next), and main's output in its own while the shortcut runs (the add reads both).
        let a = context.activationSlots
        let aIn = a?.incoming ?? -1, aOut = a?.current ?? -1, aOuter = a?.reserved ?? []
        let mainOut = a?.free(excluding: [aIn, aOut]) ?? -1
        let shortcutOut = a?.free(excluding: [aIn, aOut, mainOut]) ?? -1
        func buildMain() -> FeatureShape {
            context.withActivationSlots(current: mainOut, incoming: aIn, reserved: aOuter.union([aIn])) {
                main.build(input: input, maxBatch: maxBatch, inputNeedsGradient: inputNeedsGradient, context: context)
            }
        }
        func buildShortcut() -> FeatureShape {
            context.withActivationSlots(current: shortcutOut, incoming: aIn, reserved: aOuter.union([mainOut])) {
                shortcut?.build(input: input, maxBatch: maxBatch, inputNeedsGradient: inputNeedsGradient, context: context)
            } ?? input
        }
        guard let slots = context.gradientSlots else {
            let out = buildMain()
            let sc = buildShortcut()
            precondition(sc == out, "residual branches disagree: main gives \(out), shortcut \(sc)")
            return finishBuild(out, maxBatch: maxBatch, context: context,
                               dsum: reluAfterAdd ? ActivationBuffer(shape: out, maxBatch: maxBatch) : nil)
        }
        // Gradient slots: dx in `current` (main's dx, to which the shortcut's is added); with the
        // ReLU, the masked dy (dsum) in a slot of its own; both branches read the branch dy, so it
        // is reserved while main runs, and main's dx is reserved while the shortcut runs.
        let dxSlot = slots.current, dySlot = slots.incoming, outer = slots.reserved
        let dsumSlot = reluAfterAdd ? slots.free(excluding: [dxSlot, dySlot]) : -1
        let branchDy = reluAfterAdd ? dsumSlot : dySlot
        let out = slots.with(current: dxSlot, incoming: branchDy, reserved: outer.union([branchDy]), buildMain)
        let sc = slots.with(current: slots.free(excluding: [dxSlot, branchDy]), incoming: branchDy, reserved: outer.union([dxSlot]),
                            buildShortcut)
        precondition(sc == out, "residual branches disagree: main gives \(out), shortcut \(sc)")
        let dsum = reluAfterAdd ? slots.with(current: dsumSlot, incoming: dySlot, reserved: outer) {
            context.inputGradientBuffer(shape: out, maxBatch: maxBatch)
        } : nil
        return finishBuild(out, maxBatch: maxBatch, context: context, dsum: dsum)
    }

    private func finishBuild(_ out: FeatureShape, maxBatch: Int, context: BuildContext, dsum: ActivationBuffer?) -> FeatureShape {
        output = context.outputBuffer(shape: out, maxBatch: maxBatch)
        passes = ElementwiseKernels(kernels: context.kernels)
        reluMask = reluAfterAdd && context.storesActivationsInBF16
            ? ReLUMask(capacity: out.count * maxBatch, kernels: context.kernels) : nil
        // main's last layer, inside nested Sequentials (MobileNetV2's "conv"). A BatchNorm there
        // writes the block's output in place of its own, which may share its input's memory (elementwise,
        // so safe); it writes the mask row by row, so a row must be whole bytes of it.
        var end: Layer? = main
        while let sequence = end as? Sequential { end = sequence.children.last?.layer }
        let last = end as? BatchNorm2d
        fusedBatchNorm = context.engine.contains(.fuseResidualAdd) && shortcut == nil && last?.fusedActivation == BatchNormKernels.Activation.none
            && (reluMask == nil || out.channels % 8 == 0) ? last : nil
        self.dsum = dsum
        lastOutput = nil
        return out
    }

    /// Whether main's or the shortcut's first layer reads the block's input in backward.
    public func readsInputInBackward(_ context: BuildContext) -> Bool {
        main.readsInputInBackward(context) || (shortcut?.readsInputInBackward(context) ?? false)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if addsInBatchNorm, let bn = fusedBatchNorm {
            let y = output.tensor(batch: x.batch)
            bn.residualEpilogue = BatchNorm2d.ResidualEpilogue(shortcut: x.data, output: y, relu: reluAfterAdd,
                                                               mask: reluMask?.writing(count: y.count))
            let a = main.forward(x, mode: mode)
            precondition(a.data == y.data && bn.residualEpilogue == nil, "Residual: the fused BatchNorm did not write the block's output")
            lastOutput = y
            return y
        }
        let a = main.forward(x, mode: mode)
        let b = shortcut.map { measuredForward($0, x, mode: mode) } ?? x
        let y = output.tensor(batch: x.batch)
        let pa = a.data, pb = b.data, py = y.data, relu = reluAfterAdd
        Profiler.measure(.elementwise) {
            if let reluMask {
                reluMask.addReLU(pa, pb, into: py, count: y.count)
                return
            }
            if relu { passes.addReLU(pa, pb, into: py, bits: nil, count: y.count) } else { passes.add(pa, pb, into: py, count: y.count) }
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
                if let reluMask { reluMask.mask(pdy, into: pd, count: d.count); return }
                passes.reluBackward(pdy, output: py, bits: nil, into: pd, count: d.count)
            }
        }
        // dx = dMain + dShort, summed into main's dx (no longer needed by anything else).
        let dMain = main.backward(d)
        let dShort = shortcut.map { measuredBackward($0, d) } ?? d
        guard needsInputGradient else { return noGradient }
        let p = dMain.data, pb = dShort.data
        Profiler.measure(.elementwise) {
            passes.add(p, pb, into: p, count: dMain.count)
        }
        return dMain
    }

    func attach(_ inspector: LayerInspector?, prefix: String) {
        inspected = inspector != nil
        main.attach(inspector, prefix: prefix)
        (shortcut as? LayerContainer)?.attach(inspector, prefix: qualified(prefix, shortcutName))
    }

    /// Not passed on: inside the block, the shortcut's gradients (later in the flat buffer than
    /// main's) are only final once the whole block is, so the block reports as one, through the
    /// container it is in (or `Model.backward` when it is the root).
    func installReadyHook(_ hook: ((Int) -> Void)?) {}

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
