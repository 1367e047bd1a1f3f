import DTrainCore

/// Training or evaluation behaviour (BatchNorm statistics, dropout).
public enum Mode: Sendable {
    case train, eval
}

/// What a layer needs while it is built for a batch size.
public final class BuildContext {
    /// Scratch memory shared by all layers of the model.
    public let workspace: Workspace
    /// Seed for layers that draw random numbers while running (dropout).
    public let seed: UInt64
    /// The engine optimisations layers may use (BatchNorm+ReLU fusion, the convolution algorithms).
    public let engine: EngineOptimisations
    /// Where input gradients live, when they share memory (see `inputGradientBuffer`).
    public let gradientSlots: SharedSlots?
    /// Where layer outputs live when they share memory (see `outputBuffer`): only with bf16
    /// activation storage (`storesActivationsInBF16`), where a layer that needs its input in
    /// backward keeps a bf16 copy of it, so that a float32 output is only read by the next
    /// layer's forward. Slot −1 is a layer's own memory.
    public let activationSlots: SharedSlots?
    /// The instruction set of the kernels layers call (CDTrainKernels' variants).
    public let kernels: KernelSet
    /// The arithmetic of convolutions and linear layers (bf16: `RoundedOperands`).
    public let precision: Precision
    /// With bf16 precision, the bf16 GEMM kernels that GEMM-based layers multiply with (nil: they
    /// round their operands and use sgemm): with the avx512 set, VDPBF16PS on a CPU with
    /// AVX512_BF16 that runs it faster than float32 FMAs (`KernelSet.bf16DotProductsPayOff`),
    /// otherwise the widened kernels (`EngineOptimisations.bf16WidenedGEMM`). Tests set an
    /// emulated variant to run the same path on any CPU.
    var bf16GEMM: BF16GEMM.Variant?

    /// - Parameters:
    ///   - engine: what layers built with this context may use; all by default.
    ///   - sharesGradients: plan shared input-gradient memory (`SharedSlots`); the builder then
    ///     calls `allocateSharedMemory()` once every layer is built. `Model.build` sets it from
    ///     `engine.contains(.sharedGradientMemory)`; a single layer built on its own owns its dx.
    ///   - kernels: the kernel variants layers use; this CPU's best by default.
    ///   - precision: fp32, or bf16 operands for convolutions and linear layers.
    ///   - storesActivationsInBF16: with bf16 precision, keep what backward reads of activations as
    ///     bf16 and share the float32 outputs' memory (`activationSlots`); the builder then calls
    ///     `allocateSharedMemory()`. `Model.build` sets it from `engine.contains(.bf16ActivationStorage)`.
    public init(workspace: Workspace, seed: UInt64 = 0, engine: EngineOptimisations = .all, sharesGradients: Bool = false,
                kernels: KernelSet = .best, precision: Precision = .fp32, storesActivationsInBF16: Bool = false) {
        self.precision = precision
        // VDPBF16PS where it outruns the FMAs; otherwise, with AVX-512, the widened kernels (the
        // FMAs at full rate, rounding while packing) unless switched off; else rounding copies for
        // sgemm. The emulated variants are for tests.
        let variant = BF16GEMM.Variant(kernels)
        if precision != .bf16 || kernels != .avx512 {
            bf16GEMM = nil
        } else if variant == .avx512bf16 && KernelSet.bf16DotProductsPayOff {
            bf16GEMM = variant
        } else {
            bf16GEMM = engine.contains(.bf16WidenedGEMM) ? .widenedAVX512 : nil
        }
        self.workspace = workspace
        self.seed = seed
        self.engine = engine
        self.kernels = kernels
        gradientSlots = sharesGradients ? SharedSlots() : nil
        activationSlots = precision == .bf16 && storesActivationsInBF16 ? SharedSlots(current: -1) : nil
    }

    /// Whether layers keep the activations backward reads as bf16 copies (`BF16Copy`) and their
    /// float32 outputs in shared slots.
    public var storesActivationsInBF16: Bool { activationSlots != nil }

    /// The buffer a layer writes its output into: its own, or, with shared activation memory, a
    /// view of the slot its container assigned to it (`activationSlots.current`), which the
    /// container only does when nothing reads the output after the next layer's forward. Layers
    /// whose own backward reads their output keep their own buffer instead.
    public func outputBuffer(shape: FeatureShape, maxBatch: Int) -> ActivationBuffer {
        guard let slots = activationSlots, slots.current >= 0 else { return ActivationBuffer(shape: shape, maxBatch: maxBatch) }
        return ActivationBuffer(shape: shape, maxBatch: maxBatch, in: slots.slab(slots.current))
    }

    /// Runs `body` with the activation plan set to (current, incoming, reserved) when outputs share
    /// memory, else just runs it.
    public func withActivationSlots<T>(current: Int, incoming: Int, reserved: Set<Int>, _ body: () -> T) -> T {
        guard let slots = activationSlots else { return body() }
        return slots.with(current: current, incoming: incoming, reserved: reserved, body)
    }

    /// The buffer a layer writes its input gradient dx into: its own, or, when gradients share
    /// memory, a view of the slot its container assigned to it (`SharedSlots.current`).
    public func inputGradientBuffer(shape: FeatureShape, maxBatch: Int) -> ActivationBuffer {
        guard let slots = gradientSlots else { return ActivationBuffer(shape: shape, maxBatch: maxBatch) }
        return ActivationBuffer(shape: shape, maxBatch: maxBatch, in: slots.slab(slots.current))
    }

    /// Allocates the shared gradient and activation memory once every layer is built.
    public func allocateSharedMemory() {
        gradientSlots?.slabs.forEach { $0.allocate() }
        activationSlots?.slabs.forEach { $0.allocate() }
    }
}

/// Memory shared between buffers that are never alive together: layers' input gradients, and with
/// bf16 activation storage their outputs.
///
/// During backward a layer's dx is read only by the layer before it, so gradients need a few
/// slots, not one buffer per layer. Containers assign the slots while building: `current` is the
/// slot the next layer's dx goes into, `incoming` the slot its dy will be in (−1: memory outside
/// the plan), and `reserved` the slots an enclosing container still needs while the layer runs
/// (a residual block's dy, read by both branches). A layer's dx slot is never its dy's slot or a
/// reserved one. Each slot is a `SharedSlab` sized to its largest user.
///
/// Forward outputs are planned the same way, in forward order: `current` is where the layer's
/// output goes (−1: its own memory), `incoming` the slot of its input, and `reserved` the slots
/// still read later (a residual block's input, read again by its shortcut).
public final class SharedSlots {
    public var current: Int
    public var incoming = -1
    public var reserved: Set<Int> = []
    public private(set) var slabs: [SharedSlab] = []

    /// A plan whose first layer's memory is slot `current`.
    public init(current: Int = 0) { self.current = current }

    /// The memory of slot `i`.
    public func slab(_ i: Int) -> SharedSlab {
        while slabs.count <= i { slabs.append(SharedSlab()) }
        return slabs[i]
    }

    /// The lowest slot not in `excluded` and not reserved.
    public func free(excluding excluded: Set<Int>) -> Int {
        var i = 0
        while excluded.contains(i) || reserved.contains(i) { i += 1 }
        return i
    }

    /// Runs `body` with the plan set to (current, incoming, reserved), then restores it.
    public func with<T>(current: Int, incoming: Int, reserved: Set<Int>, _ body: () -> T) -> T {
        let saved = (self.current, self.incoming, self.reserved)
        self.current = current
        self.incoming = incoming
        self.reserved = reserved
        defer { (self.current, self.incoming, self.reserved) = saved }
        return body()
    }
}

/// A network layer: forward and backward side by side over NHWC tensors.
///
/// Life cycle: construct (declares parameters), bind parameters (`ParameterStore`), then `build`
/// for an input shape and the largest batch, which allocates the layer's output and input-gradient
/// buffers and reserves workspace. After that `forward` and `backward` allocate nothing, for any
/// batch up to the one built for.
///
/// Conventions: `forward` returns a view of memory the layer owns, valid until its next forward.
/// `backward` takes dL/dy for the last forward and returns dL/dx (owned by the layer; not computed,
/// and an empty tensor returned, when built with `inputNeedsGradient == false`). Parameter gradients
/// are accumulated (+=) into `Parameter.grad`, so gradient accumulation over micro-batches is free
/// and the optimizer zeroes them.
public protocol Layer: AnyObject {
    /// Allocates buffers for inputs of `input` per sample and up to `maxBatch` samples; returns the
    /// output shape. Called again with a different shape, it reallocates.
    func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape

    /// x: [N, H, W, C] → y: [N, H', W', C'].
    func forward(_ x: Tensor, mode: Mode) -> Tensor

    /// dy: [N, H', W', C'] → dx: [N, H, W, C].
    func backward(_ dy: Tensor) -> Tensor

    /// Appends this layer's parameters and buffers, named under `prefix` as torch names them.
    func collectState(prefix: String, into entries: inout [StateEntry])

    /// Multiply-accumulates per sample of the last build (convolutions and linear layers).
    var macsPerSample: Int { get }

    /// Calls `body` on this layer and every layer inside it, depth first.
    func visit(_ body: (Layer) -> Void)

    /// Whether backward reads the float32 input of the last forward, so that its producer must
    /// keep it (true unless the layer says otherwise): containers give a layer's output shared
    /// memory (`BuildContext.outputBuffer`) only when the layer after it answers false.
    func readsInputInBackward(_ context: BuildContext) -> Bool
}

extension Layer {
    public func collectState(prefix: String, into entries: inout [StateEntry]) {}
    public var macsPerSample: Int { 0 }
    public func visit(_ body: (Layer) -> Void) { body(self) }
    public func readsInputInBackward(_ context: BuildContext) -> Bool { true }

    /// Every parameter, in state order.
    public var parameters: [Parameter] {
        var entries: [StateEntry] = []
        collectState(prefix: "", into: &entries)
        return entries.compactMap { if case .parameter(let p) = $0.kind { return p } else { return nil } }
    }
}

/// An empty tensor, returned as dx by layers built without an input gradient.
public let noGradient = Tensor(data: UnsafeMutablePointer<Float>(bitPattern: 64)!, batch: 0, shape: FeatureShape(height: 0, width: 0, channels: 0))
