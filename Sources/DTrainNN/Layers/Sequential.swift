import DTrainCore

/// Layers applied one after another. Children are named as torch names them: attribute names
/// ("conv1", "layer1") or indices ("0", "1") of an nn.Sequential. A Sequential adds no level to the
/// names itself: its parent's prefix is the one its children are named under.
///
/// Backward stops at the first child that has trainable parameters (or whose input gradient is
/// needed): children before it hold only frozen parameters, are built without input gradients, and
/// their backward is never run (`Parameter.trainable` is read when the sequence is built).
public final class Sequential: Layer, LayerContainer {
    public private(set) var children: [(name: String, layer: Layer)]
    private var inspector: LayerInspector?
    private var paths: [String] = []
    /// Called after each child's backward with the flat offset from which every parameter
    /// gradient is final (see `Model.onGradientsReady`).
    private var readyHook: ((Int) -> Void)?
    private var readyOffsets: [Int?] = []
    /// Index of the first child whose backward runs (children.count: none), set by `build`.
    private var firstBackward = 0

    public init(_ children: [(String, Layer)]) {
        self.children = children.map { (name: $0.0, layer: $0.1) }
    }

    /// Children named "0", "1", … as in an nn.Sequential.
    public convenience init(indexed layers: [Layer]) {
        self.init(layers.enumerated().map { (String($0.offset), $0.element) })
    }

    public func append(_ name: String, _ layer: Layer) { children.append((name: name, layer: layer)) }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        // A ReLU or ReLU6 directly after a BatchNorm2d is applied by the BatchNorm (one pass less
        // each way).
        for child in children { (child.layer as? ClampActivation)?.isFusedIntoPrevious = false }
        for (i, child) in children.enumerated() {
            guard let bn = child.layer as? BatchNorm2d else { continue }
            guard context.engine.contains(.fuseBatchNormReLU), i + 1 < children.count,
                  let clamp = children[i + 1].layer as? ClampActivation,
                  let activation = BatchNormKernels.Activation(clampingAt: clamp.upper) else {
                bn.fusedActivation = .none
                continue
            }
            bn.fusedActivation = activation
            clamp.isFusedIntoPrevious = true
        }
        let gradientSlots = context.gradientSlots.map(planGradientSlots)
        let activationSlots = context.activationSlots.map { planActivationSlots($0, context: context) }
        var shape = input
        // A child needs its input gradient once the sequence's input does or a trainable child precedes it.
        var needsGradient = inputNeedsGradient
        firstBackward = children.count
        for (i, child) in children.enumerated() {
            let trainable = child.layer.parameters.contains { $0.trainable }
            if firstBackward == children.count && (needsGradient || trainable) { firstBackward = i }
            let needs = needsGradient, inShape = shape
            let buildChild = {
                context.withActivationSlots(current: activationSlots?[i].output ?? -1, incoming: activationSlots?[i].input ?? -1,
                                            reserved: context.activationSlots?.reserved ?? []) {
                    child.layer.build(input: inShape, maxBatch: maxBatch, inputNeedsGradient: needs, context: context)
                }
            }
            if let slots = context.gradientSlots, let plan = gradientSlots {
                shape = slots.with(current: plan[i].dx, incoming: plan[i].dy, reserved: slots.reserved, buildChild)
            } else {
                shape = buildChild()
            }
            needsGradient = needsGradient || trainable
        }
        // At bf16 on the float32 kernels, a convolution followed by a BatchNorm has the BatchNorm
        // write its input gradient (the convolution's dy) rounded to bf16, and skips its own
        // rounding pass over dy: the same values, one pass less.
        for child in children { (child.layer as? BatchNorm2d)?.roundsInputGradientToBF16 = false }
        for (i, child) in children.enumerated() {
            guard let conv = child.layer as? Conv2d else { continue }
            let bn = i + 1 < children.count ? children[i + 1].layer as? BatchNorm2d : nil
            let folds = bn != nil && context.engine.contains(.bf16RoundingInBatchNorm) && conv.roundsOutputGradientInPass
            conv.outputGradientArrivesRounded = folds
            bn?.roundsInputGradientToBF16 = folds
        }
        return shape
    }

    /// The gradient slot of each child's dx and dy. Backward runs from the last child, whose dy is
    /// the container's incoming one; the first child's dx is the container's (slot `current`).
    /// Other children take the lowest slot that is neither their dy's, the container's nor
    /// reserved, so consecutive gradients alternate between two slots. A ReLU applied by the
    /// BatchNorm before it returns its dy as its dx, so its dx slot is its dy's.
    private func planGradientSlots(_ slots: SharedSlots) -> [(dx: Int, dy: Int)] {
        var plan = [(dx: Int, dy: Int)](repeating: (0, 0), count: children.count)
        var dy = slots.incoming
        for i in children.indices.reversed() {
            let passesThrough = (children[i].layer as? ClampActivation)?.isFusedIntoPrevious == true
            let dx = passesThrough ? dy : (i == 0 ? slots.current : slots.free(excluding: [dy, slots.current]))
            plan[i] = (dx, dy)
            dy = dx
        }
        return plan
    }

    /// The activation slot of each child's input and output, in forward order (shared activation
    /// memory, `BuildContext.activationSlots`). The last child's output is the container's
    /// (`current`). Another child's output gets a slot only when the next child that computes
    /// does not read its input in backward, else its own memory (−1); the slot is the lowest that
    /// is neither the child's input's, the container's output's nor reserved, so consecutive
    /// outputs alternate between two slots. A ReLU applied by the BatchNorm before it passes its
    /// input through: its output slot is its input's, and the BatchNorm's consumer is the layer
    /// after the ReLU.
    private func planActivationSlots(_ slots: SharedSlots, context: BuildContext) -> [(input: Int, output: Int)] {
        let passes = children.map { ($0.layer as? ClampActivation)?.isFusedIntoPrevious == true }
        var plan = [(input: Int, output: Int)](repeating: (-1, -1), count: children.count)
        var input = slots.incoming
        for i in children.indices {
            var output = input
            if !passes[i] {
                var next = i + 1
                while next < children.count && passes[next] { next += 1 }
                if next == children.count { output = slots.current }
                else if children[next].layer.readsInputInBackward(context) { output = -1 }
                else { output = slots.free(excluding: [input, slots.current]) }
            }
            plan[i] = (input, output)
            input = output
        }
        return plan
    }

    /// Whether the first child reads the sequence's input in backward (a sequence whose backward
    /// stops before its first child never reads it, but the plan does not rely on that).
    public func readsInputInBackward(_ context: BuildContext) -> Bool {
        children.first?.layer.readsInputInBackward(context) ?? true
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var y = x
        if let inspector {
            for (i, child) in children.enumerated() {
                y = measuredForward(child.layer, y, mode: mode)
                inspector.inspectForward(paths[i], y)
            }
            return y
        }
        for child in children { y = measuredForward(child.layer, y, mode: mode) }
        return y
    }

    /// Runs the children's backward from the last to the first that needs it. After each child,
    /// the inspector (if attached) sees its input gradient and the ready hook (if installed) is
    /// told from which offset the parameter gradients are final; the two work together.
    public func backward(_ dy: Tensor) -> Tensor {
        var d = dy
        for i in (firstBackward..<children.count).reversed() {
            d = measuredBackward(children[i].layer, d)
            if let inspector, d.batch > 0 { inspector.inspectBackward(paths[i], d) }
            if let readyHook, let offset = readyOffsets[i] { readyHook(offset) }
        }
        // Stopped early: nothing before needs a gradient, the sequence's input included.
        return firstBackward == 0 ? d : noGradient
    }

    /// Installs `hook` here and in nested containers (a `Residual` keeps it out of its branches).
    /// It is called after each child that holds parameters, with the child's lowest offset: the
    /// children before it come earlier in the flat buffer, so everything from there on is final.
    func installReadyHook(_ hook: ((Int) -> Void)?) {
        readyHook = hook
        readyOffsets = children.map { child in child.layer.parameters.map(\.offset).min() }
        for child in children { (child.layer as? LayerContainer)?.installReadyHook(hook) }
    }

    func attach(_ inspector: LayerInspector?, prefix: String) {
        self.inspector = inspector
        paths = children.map { qualified(prefix, $0.name) }
        for (i, child) in children.enumerated() {
            (child.layer as? LayerContainer)?.attach(inspector, prefix: paths[i])
        }
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        for child in children { child.layer.collectState(prefix: qualified(prefix, child.name), into: &entries) }
    }

    public var macsPerSample: Int { children.reduce(0) { $0 + $1.layer.macsPerSample } }

    public func visit(_ body: (Layer) -> Void) {
        body(self)
        for child in children { child.layer.visit(body) }
    }
}
