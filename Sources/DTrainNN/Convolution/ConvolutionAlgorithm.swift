import DTrainCore

/// One way of computing a `Conv2d`, chosen when the layer is built: im2col + GEMM
/// (`GEMMConvolution`), Winograd (`WinogradConvolution`) or the direct grouped kernel
/// (`DirectConvolution`). Each splits its passes across threads itself and keeps its scratch in
/// the model's workspace; the layer owns the weights, the buffers and the bias gradient.
///
/// Pointers are NHWC activations of `batch` images and the weights in `Conv2d`'s O×K×K×(I/groups)
/// layout. Passes use `threads` threads (at most those `workspaceFloats` was reserved for) and
/// are deterministic for a thread count.
protocol ConvolutionAlgorithm {
    /// Workspace floats the passes need with `threads` threads.
    func workspaceFloats(threads: Int) -> Int

    /// Whether the passes round their operands to bf16 themselves (bf16 GEMM kernels); otherwise
    /// a bf16 `Conv2d` rounds them first (`RoundedOperands`).
    var multipliesInBF16: Bool { get }

    /// Whether the passes round x and dy to bf16 as they read them (the Winograd F(4×4)
    /// transforms), so that a bf16 `Conv2d` rounds only the weight; x and dy are passed as they
    /// are, and backward reads x from its bf16 copy when given one (`xBF16`).
    var roundsActivationsToBF16: Bool { get }

    /// Whether backward reads x from its bf16 copy (`xBF16`) when the layer keeps one, instead of
    /// x widened back into float32 scratch: those that round on read, and the pointwise products
    /// of the widened bf16 GEMM kernels, which widen it as they pack it.
    var readsInputCopyInBackward: Bool { get }

    /// x: [N, H, W, C] → y: [N, OH, OW, O] = conv(x, w) (+ bias).
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 into y: UnsafeMutablePointer<Float>, batch: Int, workspace: Workspace, threads: Int)

    /// dy: [N, OH, OW, O] → dW added into `weightGradient` [O, K, K, C/groups] (when given) and
    /// dx: [N, H, W, C] written to `dx` (when given), for the x of the last forward. `xBF16`: that
    /// x as its bf16 copy, for an algorithm that `readsInputCopyInBackward`, which then does not read `x`.
    func backward(x: UnsafePointer<Float>, xBF16: UnsafePointer<UInt16>?, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  weightGradient: UnsafeMutablePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                  batch: Int, workspace: Workspace, threads: Int)
}

extension ConvolutionAlgorithm {
    var multipliesInBF16: Bool { false }
    var roundsActivationsToBF16: Bool { false }
    var readsInputCopyInBackward: Bool { roundsActivationsToBF16 }
}

/// Rounds a float count up to a whole number of 64-byte lines, so workspace slices stay aligned.
func workspaceAligned(_ floats: Int) -> Int { (floats + 15) & ~15 }
