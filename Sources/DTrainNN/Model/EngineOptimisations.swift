/// The engine's optimisations that can be switched off: to measure what each gives (`dtrain bench
/// --without`), or to keep every layer's own output for inspection. Results are the same either
/// way (Winograd's to float rounding; bf16 activation storage's to bf16 rounding). Given to `Model.build(batch:resolution:seed:engine:)`, they
/// travel in the `BuildContext` to every layer, which reads them when it is built.
public struct EngineOptimisations: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// A BatchNorm2d applies the ReLU or ReLU6 that follows it (`BatchNorm2d.fusedActivation`):
    /// one pass less each way. Off, each layer keeps its own output (inspection sees the
    /// BatchNorm's before the activation).
    public static let fuseBatchNormReLU = EngineOptimisations(rawValue: 1 << 0)
    /// Depthwise and narrow grouped convolutions run on `GroupedConvKernel` instead of im2col + GEMM.
    public static let directGroupedConvolution = EngineOptimisations(rawValue: 1 << 1)
    /// Dense 3×3 stride-1 convolutions run as Winograd F(4×4, 3×3) or F(2×2, 3×3) (`WinogradKernel`).
    public static let winograd = EngineOptimisations(rawValue: 1 << 2)
    /// Layers whose input gradients are never alive together share their memory (`SharedSlots`);
    /// off, every layer owns its dx buffer.
    public static let sharedGradientMemory = EngineOptimisations(rawValue: 1 << 3)

    /// With bf16 precision, what backward reads of activations is kept as bf16 (`BF16Copy`) and
    /// float32 outputs share memory (`BuildContext.activationSlots`), as autocast stores bf16
    /// activations; a BatchNorm then reads its input rounded to bf16, as autocast's bf16 convolution
    /// returns it. No effect at fp32.
    public static let bf16ActivationStorage = EngineOptimisations(rawValue: 1 << 4)
    /// A residual block with an identity shortcut whose main branch ends with a BatchNorm2d has
    /// that BatchNorm add the shortcut and apply the block's ReLU as it normalises, into the
    /// block's output (`BatchNorm2d.ResidualEpilogue`): one pass less forward. Off, the BatchNorm
    /// writes its own output and the block adds in a pass of its own.
    public static let fuseResidualAdd = EngineOptimisations(rawValue: 1 << 5)
    /// With bf16 precision on the float32 kernels, a BatchNorm2d after a convolution writes its
    /// input gradient (the convolution's dy) rounded to bf16, and the convolution skips its own
    /// rounding pass over dy (`Conv2d.outputGradientArrivesRounded`). Off, the convolution rounds
    /// dy itself. The same values either way; no effect at fp32.
    public static let bf16RoundingInBatchNorm = EngineOptimisations(rawValue: 1 << 6)

    /// With bf16 precision on a CPU whose VDPBF16PS does not outrun its FMAs, GEMM-based layers
    /// multiply with `BF16GEMM.Variant.widenedAVX512`, which rounds the operands as it packs them
    /// and runs float32 FMAs at their full rate. Off, they round their operands in passes of
    /// their own and call sgemm. The same values up to summation order; no effect at fp32.
    public static let bf16WidenedGEMM = EngineOptimisations(rawValue: 1 << 7)

    public static let all: EngineOptimisations = [.fuseBatchNormReLU, .directGroupedConvolution, .winograd, .sharedGradientMemory,
                                                  .bf16ActivationStorage, .fuseResidualAdd, .bf16RoundingInBatchNorm,
                                                  .bf16WidenedGEMM]

    /// The names `dtrain bench --without` takes.
    public static let names: [(name: String, option: EngineOptimisations)] = [
        ("fuse-bn-relu", .fuseBatchNormReLU),
        ("direct-grouped", .directGroupedConvolution),
        ("winograd", .winograd),
        ("shared-gradients", .sharedGradientMemory),
        ("bf16-activations", .bf16ActivationStorage),
        ("fuse-residual-add", .fuseResidualAdd),
        ("bf16-dy-in-batchnorm", .bf16RoundingInBatchNorm),
        ("bf16-widened-gemm", .bf16WidenedGEMM),
    ]
}
