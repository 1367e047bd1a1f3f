import CDTrainKernels
import DTrainCore
import Foundation

/// Batch normalisation over NHWC activations: per-channel statistics over the N·H·W rows.
///
/// Train mode normalises with the biased batch variance and updates the running statistics with
/// the unbiased one (as torch); eval mode uses the running statistics.
///
/// Each pass reads its inputs twice: once for per-channel sums, once for the elementwise result,
/// both in CDTrainKernels' variant for the model's kernel set (`BatchNormKernels`, the same values
/// bit for bit in every set). Sums are taken in Float over blocks of DTRAIN_BN_BLOCK_ROWS rows,
/// added into Double per block, over fixed row chunks combined in chunk order, so results are
/// deterministic for a thread count. Forward sums are of x − k with k the batch's first row, so that the
/// variance keeps its precision when |mean| ≫ σ.
///
/// With `fusedActivation` (set by `Sequential` when a `ReLU` or `ReLU6` follows) the output is
/// max(BN(x), 0) (for ReLU6 also at most 6) and backward masks dy where BN(x) ≤ 0 (or ≥ 6),
/// recomputing BN(x) from the kept input exactly as forward did, so the activation layer is
/// skipped in both passes and its output and gradient never touch memory.
///
/// With a `reducer` (synchronized BatchNorm) the forward statistics [Σx, Σx², count] and the
/// backward sums [Σdy, Σdy·x̂] each go through one `reducer.sum` call, so every process normalises
/// with, and back-propagates through, the statistics of all processes' batches together. A process
/// with an empty batch still makes those calls. Parameter gradients stay local (the gradient
/// allreduce sums them), as in torch's SyncBatchNorm.
///
/// Backward needs the input of the last forward: as every layer's output, it stays valid until the
/// layer before this one runs forward again. Only per-channel values are kept here, except with
/// bf16 activation storage: then forward reads x rounded to bf16 (as autocast's bf16 convolution
/// returns it), keeps those bf16 values in a `BF16Copy` as it normalises, and backward reads that
/// copy, so the output may live in shared memory.
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float

    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: StateBuffer
    public let runningVar: StateBuffer
    public let numBatchesTracked = StateCounter()
    /// Sums statistics across processes (synchronized BatchNorm); nil: the local batch only.
    public var reducer: ChannelReducer?
    /// The clamp of a following ReLU (max(·, 0)) or ReLU6 (then min(·, 6)) applied to the output,
    /// the gradient masked accordingly: that layer fused in. `.none`: the plain normalisation.
    var fusedActivation: BatchNormKernels.Activation = .none
    /// Whether backward writes dx rounded to bf16: the dy of a bf16 convolution before it, which
    /// would round it in a pass of its own (`Conv2d.outputGradientArrivesRounded`). Set by
    /// `Sequential` when it builds.
    var roundsInputGradientToBF16 = false

    /// A residual block's add and ReLU, done by the BatchNorm that ends the block's main branch as
    /// it normalises: y = act(BN(x) + shortcut), written into the block's output (which may be the
    /// memory of x itself: the pass is elementwise), with the ReLU's mask when the block keeps one.
    /// Backward is unchanged: the block masks dy before it reaches this layer.
    struct ResidualEpilogue {
        let shortcut: UnsafePointer<Float>
        let output: Tensor
        let relu: Bool
        let mask: UnsafeMutablePointer<UInt8>?
    }
    /// Set by a `Residual` (`EngineOptimisations.fuseResidualAdd`) for the next forward only.
    var residualEpilogue: ResidualEpilogue?

    /// A frozen BatchNorm (transfer learning) behaves as in eval mode even while the model
    /// trains: it normalises with the running statistics and never updates them.
    public var frozenStatistics = false

    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    /// Per channel: the mean and 1/σ the last forward normalised with.
    private let mean: Storage
    private let invstd: Storage
    /// Per channel: y = (x − mean)·scale + shift, as the last forward computed it (kept so that a
    /// fused backward recomputes exactly the values forward clamped).
    private let scale: Storage
    private let shift: Storage
    /// Per channel, backward: dx = dy·gradScale + (x − mean)·slope + offset.
    private let gradScale: Storage
    private let slope: Storage
    private let offset: Storage
    /// Per channel: the value subtracted before the forward sums (the batch's first row).
    private let pivot: Storage
    /// [Σx, Σx², count] in forward, [Σdy, Σdy·x̂] in backward: the buffer handed to the reducer.
    private let stats: ScratchBuffer<Double>
    /// Per-chunk partial sums in Double, 2·C per chunk.
    private var partials: ScratchBuffer<Double>!
    private var maxChunks = 1
    /// The passes, in the variant of the kernel set the model was built for.
    private var passes = BatchNormKernels(kernels: .best)

    private var lastInput: Tensor?
    /// With bf16 activation storage: the input of the last train-mode forward.
    private var savedInput: BF16Copy?
    private var lastMode: Mode = .train
    private var lastFused: BatchNormKernels.Activation = .none
    /// Rows the last train-mode statistics were taken over (all processes together).
    private var lastCount = 0.0

    public init(channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        precondition(channels > 0, "BatchNorm2d needs at least one channel")
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        weight = Parameter(torchShape: [channels], role: .normWeight, initializer: .constant(1))
        bias = Parameter(torchShape: [channels], role: .normBias, initializer: .constant(0))
        runningMean = StateBuffer(torchShape: [channels], fill: 0)
        runningVar = StateBuffer(torchShape: [channels], fill: 1)
        mean = Storage(count: channels)
        invstd = Storage(count: channels)
        scale = Storage(count: channels)
        shift = Storage(count: channels)
        gradScale = Storage(count: channels)
        slope = Storage(count: channels)
        offset = Storage(count: channels)
        pivot = Storage(count: channels)
        stats = ScratchBuffer(count: 2 * channels + 1, fill: 0)
    }

    /// The shape of one sample's input [H, W, C], as last built (nil before `build`).
    public var builtInputShape: FeatureShape? { output?.shape }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == channels, "BatchNorm2d(\(channels)) built for input \(input)")
        output = context.outputBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        savedInput = context.storesActivationsInBF16 ? BF16Copy(capacity: input.count * maxBatch) : nil
        maxChunks = max(1, Compute.threads)
        partials = ScratchBuffer(count: maxChunks * 2 * channels, fill: 0)
        passes = BatchNormKernels(kernels: context.kernels)
        lastInput = nil
        return input
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        entries.append(StateEntry(name: qualified(prefix, "weight"), kind: .parameter(weight)))
        entries.append(StateEntry(name: qualified(prefix, "bias"), kind: .parameter(bias)))
        entries.append(StateEntry(name: qualified(prefix, "running_mean"), kind: .buffer(runningMean)))
        entries.append(StateEntry(name: qualified(prefix, "running_var"), kind: .buffer(runningVar)))
        entries.append(StateEntry(name: qualified(prefix, "num_batches_tracked"), kind: .counter(numBatchesTracked)))
    }

    /// Fixed chunks for a reduction over `rows` rows (same rows and threads, same chunks).
    @inline(__always)
    private func chunkCount(rows: Int) -> Int {
        min(maxChunks, Compute.threads, max(1, rows * channels / 16384))
    }

    /// Per-channel sums over all rows into stats[0..<2C] (Double): `sum(rows, partial)` writes
    /// the 2·C sums of a chunk of rows into `partial`; chunks are combined in chunk order.
    @inline(__always)
    private func reduceRows(rows: Int, _ sum: (_ rows: Range<Int>, _ partial: UnsafeMutablePointer<Double>) -> Void) {
        let C = channels, chunks = chunkCount(rows: rows), part = partials.pointer
        parallelChunks(rows, chunks: chunks) { k, r in sum(r, part + k * 2 * C) }
        let st = stats.pointer
        for c in 0..<(2 * C) {
            var t = 0.0
            for k in 0..<chunks { t += part[k * 2 * C + c] }
            st[c] = t
        }
    }

    /// `rows` of `input` as the kernels take them, with the normalisation of the last forward.
    @inline(__always)
    private func kernelRows(_ input: BatchNormKernels.Input, _ rows: Range<Int>, activation: BatchNormKernels.Activation,
                            epilogue: ResidualEpilogue? = nil) -> dtrain_bn_rows {
        BatchNormKernels.rows(input, channels: channels, rows: rows, mean: mean.pointer, scale: scale.pointer,
                              shift: shift.pointer, activation: epilogue?.relu == true ? .relu : activation,
                              addend: epilogue?.shortcut, mask: epilogue?.mask, roundsInputGradient: roundsInputGradientToBF16)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.batchNorm) {
            guard let savedInput else { return forwardPass(x, mode: mode, input: .float32(x.data), save: nil) }
            // bf16 activation storage: x as autocast's bf16 convolution returns it, kept for backward.
            let save = mode == .train ? savedInput.saving(count: x.count) : nil
            if save == nil { savedInput.discard() }
            return forwardPass(x, mode: mode, input: .rounded(x.data), save: save)
        }
    }

    private func forwardPass(_ x: Tensor, mode: Mode, input: BatchNormKernels.Input, save: UnsafeMutablePointer<UInt16>?) -> Tensor {
        precondition(x.shape == output.shape, "BatchNorm2d built for \(output.shape), got \(x.shape)")
        let C = channels, rows = x.rows
        let epilogue = residualEpilogue
        residualEpilogue = nil
        if let epilogue {
            precondition(epilogue.output.batch == x.batch && epilogue.output.shape == x.shape,
                         "BatchNorm2d: residual output \(epilogue.output.shape) for input \(x.shape)")
            precondition(epilogue.mask == nil || C % 8 == 0, "BatchNorm2d: a ReLU mask needs a multiple of 8 channels")
        }
        let y = epilogue?.output ?? output.tensor(batch: x.batch)
        let pm = mean.pointer, ps = invstd.pointer, pscale = scale.pointer, pshift = shift.pointer
        let gamma = weight.value!, beta = bias.value!
        let rm = runningMean.pointer, rv = runningVar.pointer
        let mode: Mode = frozenStatistics ? .eval : mode

        if mode == .train {
            let k = pivot.pointer
            for c in 0..<C { k[c] = rows > 0 ? input.load(c) : 0 }
            let pk = UnsafePointer(k), passes = passes
            reduceRows(rows: rows) { r, partial in passes.sums(kernelRows(input, r, activation: .none), pivot: pk, into: partial) }
            // Σ(x − k), Σ(x − k)² → Σx, Σx² (the reducer sums those across processes).
            let st = stats.pointer, n0 = Double(rows)
            for c in 0..<C {
                let kc = Double(k[c]), s = st[c], q = st[C + c]
                st[c] = s + n0 * kc
                st[C + c] = q + 2 * kc * s + n0 * kc * kc
            }
            st[2 * C] = n0
            reducer?.sum(stats.buffer)
            let n = st[2 * C]
            precondition(n > 1, "BatchNorm2d in train mode needs more than one value per channel, got \(Int(n))")
            lastCount = n
            let m = Double(momentum), unbias = n / (n - 1)
            for c in 0..<C {
                let mu = st[c] / n
                let variance = max(st[C + c] / n - mu * mu, 0)
                let inv = 1 / (variance + Double(eps)).squareRoot()
                pm[c] = Float(mu)
                ps[c] = Float(inv)
                rm[c] = Float((1 - m) * Double(rm[c]) + m * mu)
                rv[c] = Float((1 - m) * Double(rv[c]) + m * variance * unbias)
                pscale[c] = Float(Double(gamma[c]) * inv)
                pshift[c] = beta[c]
            }
            numBatchesTracked.value += 1
        } else {
            for c in 0..<C {
                let inv = 1 / (Double(rv[c]) + Double(eps)).squareRoot()
                pm[c] = rm[c]
                ps[c] = Float(inv)
                pscale[c] = Float(Double(gamma[c]) * inv)
                pshift[c] = beta[c]
            }
        }

        let fused = fusedActivation, passes = passes, py = y.data
        parallelFor(rows, minChunk: max(1, 8192 / C)) { r in
            passes.normalize(kernelRows(input, r, activation: fused, epilogue: epilogue), into: py, save: save)
        }
        lastInput = x
        lastMode = mode
        lastFused = fused
        return y
    }

    /// With bf16 activation storage the layer keeps its own bf16 copy of x.
    public func readsInputInBackward(_ context: BuildContext) -> Bool { !context.storesActivationsInBF16 }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.batchNorm) {
            guard let x = lastInput else { preconditionFailure("BatchNorm2d.backward before forward") }
            let input: BatchNormKernels.Input = savedInput.map { .bf16($0.saved) } ?? .float32(x.data)
            return backwardPass(dy, fused: lastFused, input: input)
        }
    }

    private func backwardPass(_ dy: Tensor, fused: BatchNormKernels.Activation, input: BatchNormKernels.Input) -> Tensor {
        guard let x = lastInput else { preconditionFailure("BatchNorm2d.backward before forward") }
        precondition(dy.batch == x.batch && dy.shape == x.shape, "BatchNorm2d.backward: dy \(dy.batch)x\(dy.shape) for input \(x.batch)x\(x.shape)")
        let C = channels, rows = x.rows
        let wantWeight = weight.trainable, wantBias = bias.trainable
        let wantInput = inputGradient != nil
        let train = lastMode == .train
        let ps = invstd.pointer, passes = passes
        let pdy = UnsafePointer(dy.data)

        // Σdy and Σdy·x̂ (local) are needed for the parameter gradients, and in train mode for dx.
        if wantWeight || wantBias || (train && wantInput) {
            // Σdy and Σdy·(x − μ), then ·1/σ per channel.
            reduceRows(rows: rows) { r, partial in passes.gradientSums(kernelRows(input, r, activation: fused), dy: pdy, into: partial) }
            let st = stats.pointer
            for c in 0..<C { st[C + c] *= Double(ps[c]) }
            if wantWeight { let g = weight.grad!; for c in 0..<C { g[c] += Float(st[C + c]) } }
            if wantBias { let g = bias.grad!; for c in 0..<C { g[c] += Float(st[c]) } }
        }
        guard let inputGradient else { return noGradient }

        let dx = inputGradient.tensor(batch: dy.batch)
        let gamma = weight.value!, pa = gradScale.pointer, pslope = slope.pointer, poffset = offset.pointer
        if train {
            // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)), means over the global count:
            //    = a·dy + (x − μ)·slope + offset with a = γ/σ, slope = −a·k/σ, offset = −a·mdy.
            reducer?.sum(UnsafeMutableBufferPointer(start: stats.pointer, count: 2 * C))
            let st = stats.pointer, n = lastCount
            for c in 0..<C {
                let inv = Double(ps[c]), a = Double(gamma[c]) * inv
                let mdy = st[c] / n, k = st[C + c] / n
                pa[c] = Float(a)
                pslope[c] = Float(-a * k * inv)
                poffset[c] = Float(-a * mdy)
            }
        } else {
            for c in 0..<C {
                pa[c] = Float(Double(gamma[c]) * Double(ps[c]))
                pslope[c] = 0
                poffset[c] = 0
            }
        }
        let pdx = dx.data
        let ga = UnsafePointer(pa), gs = UnsafePointer(pslope), go = UnsafePointer(poffset)
        parallelFor(rows, minChunk: max(1, 8192 / C)) { r in
            passes.inputGradient(kernelRows(input, r, activation: fused), dy: pdy, a: ga, slope: gs, offset: go, into: pdx)
        }
        return dx
    }
}
