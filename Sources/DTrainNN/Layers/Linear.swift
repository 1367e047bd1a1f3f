import DTrainCore
import Foundation

/// A fully connected layer, y = x·Wᵀ + b, with torch's weight [out, in] in torch's order.
///
/// The input is read as a flat vector of `inFeatures` per sample (any H×W×C with that count, in
/// NHWC order; put a `Flatten` first to take torch's NCHW flatten order). Output: 1×1×out.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?

    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastInput: Tensor?
    private var workspace: Workspace!
    /// bf16 copies of x, the weight and dy (`Precision.bf16` with sgemm); nil otherwise.
    private var roundedOperands: RoundedOperands?
    /// sgemm, or the bf16 kernels (which round while packing, into the workspace).
    private var products = LayerGEMM.sgemm

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear(\(inFeatures), \(outFeatures)): sizes must be positive")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(torchShape: [outFeatures, inFeatures], layout: .identity, role: .weight,
                           initializer: .uniform(bound: bound))
        self.bias = bias ? Parameter(torchShape: [outFeatures], role: .bias, initializer: .uniform(bound: bound)) : nil
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.count == inFeatures, "Linear(\(inFeatures), \(outFeatures)) built for input \(input) of \(input.count) features")
        let out = FeatureShape(features: outFeatures)
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        workspace = context.workspace
        let n = max(1, maxBatch), i = inFeatures, o = outFeatures
        products = context.precision == .bf16 && context.bf16GEMM != nil
            ? LayerGEMM(bf16: context.bf16GEMM, products: [(n, o, i), (o, i, n), (n, i, o)]) : .sgemm
        roundedOperands = context.precision == .bf16 && products.bf16 == nil
            ? RoundedOperands(offset: 0, input: inFeatures * maxBatch, weight: weight.count, outputGradient: outFeatures * maxBatch)
            : nil
        if let roundedOperands { context.workspace.reserve(roundedOperands.workspaceFloats) }
        if products.bf16 != nil { context.workspace.reserve(products.packFloats) }
        lastInput = nil
        return out
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        entries.append(StateEntry(name: qualified(prefix, "weight"), kind: .parameter(weight)))
        if let bias { entries.append(StateEntry(name: qualified(prefix, "bias"), kind: .parameter(bias))) }
    }

    public var macsPerSample: Int { inFeatures * outFeatures }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.linear) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == inFeatures, "Linear(\(inFeatures), \(outFeatures)) got input \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let N = x.batch, I = inFeatures, O = outFeatures
        let py = y.data
        if let b = bias?.value {
            parallelFor(N, minChunk: max(1, 4096 / O)) { r in
                for n in r { (py + n * O).update(from: b, count: O) }
            }
        }
        var px = UnsafePointer(x.data), pw = UnsafePointer(weight.value!)
        if let rounded = roundedOperands, N > 0 {
            px = rounded.rounded(.input, px, count: x.count, workspace: workspace)
            pw = rounded.rounded(.weight, pw, count: weight.count, workspace: workspace)
        }
        products.gemmAcrossThreads(transB: true, m: N, n: O, k: I, a: px, lda: I, b: pw, ldb: I,
                      beta: bias == nil ? 0 : 1, c: py, ldc: O, pack: pack)
        lastInput = x
        return y
    }

    /// Whether the last build multiplies with the bf16 GEMM kernels (`BuildContext.bf16GEMM`).
    var multipliesInBF16: Bool { products.bf16 != nil }

    /// The bf16 kernels' packing scratch (nil for sgemm).
    private var pack: UnsafeMutablePointer<Float>? {
        products.bf16 == nil ? nil : workspace.pointer(count: products.packFloats)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.linear) { backwardPass(dy) }
    }

    private func backwardPass(_ dy: Tensor) -> Tensor {
        guard let x = lastInput else { preconditionFailure("Linear.backward before forward") }
        precondition(dy.batch == x.batch && dy.shape.count == outFeatures, "Linear.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let N = x.batch, I = inFeatures, O = outFeatures
        var px = UnsafePointer(x.data), pdy = UnsafePointer(dy.data), pw = UnsafePointer(weight.value!)
        if let rounded = roundedOperands, N > 0 {
            px = rounded.rounded(.input, px, count: x.count, workspace: workspace)
            pdy = rounded.rounded(.outputGradient, pdy, count: dy.count, workspace: workspace)
            pw = rounded.rounded(.weight, pw, count: weight.count, workspace: workspace)
        }
        if weight.trainable, N > 0 {
            // dW[O×I] += dyᵀ · x
            products.gemmAcrossThreads(transA: true, m: O, n: I, k: N, a: pdy, lda: O, b: px, ldb: I,
                          beta: 1, c: weight.grad, ldc: I, pack: pack)
        }
        if let bias, bias.trainable {
            // The bias is added, not multiplied: its gradient sums the float32 dy at either precision.
            let g = bias.grad!, bias32 = UnsafePointer(dy.data)
            parallelFor(O, minChunk: 256) { r in
                for o in r {
                    var s: Float = 0
                    for n in 0..<N { s += bias32[n * O + o] }
                    g[o] += s
                }
            }
        }
        guard let inputGradient else { return noGradient }
        let dx = inputGradient.tensor(batch: dy.batch)
        // dx[N×I] = dy · W
        products.gemmAcrossThreads(m: N, n: I, k: O, a: pdy, lda: O, b: pw, ldb: I, beta: 0, c: dx.data, ldc: I, pack: pack)
        return dx
    }
}
