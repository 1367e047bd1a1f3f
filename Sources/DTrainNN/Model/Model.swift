import DTrainCore

/// A network from the zoo with its parameters, state and buffers.
///
/// Memory has one owner: `init` binds all parameters into one `ParameterStore`; `build(batch:resolution:)`
/// allocates every activation, gradient and the shared workspace for that batch size once. After that
/// `forward`/`backward` allocate nothing, for any batch up to the one built for (a smaller last batch
/// or evaluation batch reuses the same memory).
public final class Model {
    public let name: String
    public let options: ModelOptions
    public let spec: ModelSpec
    /// The layer tree; its state names are torchvision's state_dict keys.
    public let root: Layer
    public let store: ParameterStore
    /// Every parameter and buffer, named and ordered as torch's state_dict.
    public let state: [StateEntry]
    public let workspace = Workspace()

    public private(set) var builtBatch = 0
    public private(set) var builtResolution = 0
    /// The engine optimisations of the last build.
    public private(set) var builtEngine: EngineOptimisations = .all
    /// The kernel variants the layers were last built with.
    public private(set) var builtKernels: KernelSet = .best
    /// The precision the layers were last built with.
    public private(set) var builtPrecision: Precision = .fp32
    public private(set) var outputShape = FeatureShape(features: 0)

    public init(spec: ModelSpec, options: ModelOptions) {
        self.spec = spec
        self.name = spec.name
        self.options = options
        root = spec.make(options)
        var entries: [StateEntry] = []
        root.collectState(prefix: "", into: &entries)
        state = entries
        store = ParameterStore(entries.compactMap { if case .parameter(let p) = $0.kind { return p } else { return nil } })
    }

    /// Number of classes the head predicts.
    public var numClasses: Int { options.numClasses ?? spec.defaultClasses }
    /// Number of trainable values (torch's sum of p.numel() over parameters()).
    public var parameterCount: Int { store.count }
    public var parameters: [Parameter] { store.parameters }

    /// Initialises parameters as torchvision does, from `seed`.
    public func initialize(seed: UInt64) { store.initialize(seed: seed) }

    /// Allocates activations, gradients and workspace for batches of up to `batch` images of
    /// `resolution`² pixels (default: the model's), with the layers using the optimisations in
    /// `engine`, the `kernels` variants (this CPU's best by default) and `precision`. A no-op when
    /// already built for that.
    public func build(batch: Int, resolution: Int? = nil, seed: UInt64 = 0, engine: EngineOptimisations = .all,
                      kernels: KernelSet = .best, precision: Precision = .fp32) {
        let res = resolution ?? spec.defaultResolution
        if batch == builtBatch && res == builtResolution && engine == builtEngine && kernels == builtKernels
            && precision == builtPrecision { return }
        let context = BuildContext(workspace: workspace, seed: seed, engine: engine,
                                   sharesGradients: engine.contains(.sharedGradientMemory), kernels: kernels,
                                   precision: precision, storesActivationsInBF16: engine.contains(.bf16ActivationStorage))
        outputShape = root.build(input: FeatureShape(height: res, width: res, channels: spec.inputChannels),
                                 maxBatch: batch, inputNeedsGradient: false, context: context)
        context.allocateSharedMemory()
        precondition(outputShape.count == numClasses, "\(name): head gives \(outputShape) for \(numClasses) classes")
        workspace.allocate()
        builtBatch = batch
        builtResolution = res
        builtEngine = engine
        builtKernels = kernels
        builtPrecision = precision
    }

    /// Input shape of one image at the built resolution.
    public var inputShape: FeatureShape {
        FeatureShape(height: builtResolution, width: builtResolution, channels: spec.inputChannels)
    }

    /// images [N, R, R, 3] → logits [N, 1, 1, classes].
    public func forward(_ images: Tensor, mode: Mode) -> Tensor {
        precondition(builtBatch > 0, "\(name): build(batch:) before forward")
        return root.forward(images, mode: mode)
    }

    /// Called during backward, block by block, with the offset in the flat gradient buffer from
    /// which every gradient is final (parameters are laid out in forward order, so backward
    /// completes the buffer from its end), and once more with 0 when backward is done, whatever
    /// layer the root is. Gradient averaging uses it to start communicating while backward goes
    /// on. Installed through the root's `LayerContainer` conformance.
    public var onGradientsReady: ((Int) -> Void)? {
        didSet { (root as? LayerContainer)?.installReadyHook(onGradientsReady) }
    }

    /// Back-propagates dL/dlogits, accumulating parameter gradients.
    public func backward(_ dlogits: Tensor) {
        _ = root.backward(dlogits)
        onGradientsReady?(0)
    }

    /// Multiply-accumulates per image at the built resolution.
    public var macsPerImage: Int { root.macsPerSample }

    /// Calls `body` on every layer.
    public func visitLayers(_ body: (Layer) -> Void) { root.visit(body) }

    /// Looks a state entry up by its torch name.
    public func entry(named name: String) -> StateEntry? { state.first { $0.name == name } }

    /// The classifier head's name in the state_dict ("fc" for torchvision's ResNets, "classifier.6"
    /// for VGG): the module of the last two-dimensional (Linear) weight.
    public var headName: String {
        guard let last = state.last(where: { $0.name.hasSuffix(".weight") && $0.torchShape.count == 2 }) else { return "" }
        return String(last.name.dropLast(".weight".count))
    }

    /// The head's state entries (weight and bias).
    public var headEntries: [StateEntry] {
        let head = headName
        return state.filter { $0.name.hasPrefix(head + ".") && !$0.name.dropFirst(head.count + 1).contains(".") }
    }

    /// Number of values that train (torch's sum of p.numel() over parameters with requires_grad).
    public var trainableParameterCount: Int { store.parameters.filter(\.trainable).reduce(0) { $0 + $1.count } }

    /// Freezes the parameters whose state names `isFrozen` selects and unfreezes the others. A
    /// BatchNorm whose weight and bias are both frozen also keeps its running statistics: it
    /// normalises as in eval mode and updates nothing. Backward then stops at the first layer that
    /// trains. Takes effect at the next `build`, which it forces.
    public func freeze(where isFrozen: (String) -> Bool) {
        for entry in state {
            if case .parameter(let p) = entry.kind { p.trainable = !isFrozen(entry.name) }
        }
        visitLayers { layer in
            if let bn = layer as? BatchNorm2d { bn.frozenStatistics = !bn.weight.trainable && !bn.bias.trainable }
        }
        builtBatch = 0
        builtResolution = 0
    }
}
