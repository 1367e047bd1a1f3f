import DTrainCore
import Foundation

/// Batch normalisation over NHWC activations: per-channel statistics over the N·H·W rows.
///
/// Train mode normalises with the biased batch variance and updates the running statistics with
/// the unbiased one (as torch); eval mode uses the running statistics. Sums are accumulated in
/// Double over fixed row chunks combined in chunk order, so results are deterministic for a thread
/// count.
///
/// With a `reducer` (synchronized BatchNorm) the forward statistics [Σx, Σx², count] and the
/// backward sums [Σdy, Σdy·x̂] each go through one `reducer.sum` call, so every process normalises
/// with, and back-propagates through, the statistics of all processes' batches together. A process
/// with an empty batch still makes those calls. Parameter gradients stay local (the gradient
/// allreduce sums them), as in torch's SyncBatchNorm.
///
/// Backward needs the input of the last forward: as every layer's output, it stays valid until the
/// layer before this one runs forward again. Only per-channel values are kept here.
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
    /// A frozen BatchNorm (transfer learning) behaves as in eval mode even while the model
    /// trains: it normalises with the running statistics and never updates them.
    public var frozenStatistics = false

    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    /// Per channel: the mean and 1/σ the last forward normalised with.
    private let mean: Storage
    private let invstd: Storage
    /// Per channel: y = (x − mean)·scale + shift in forward; dx = dy·scale + (x − mean)·slope + shift
    /// in backward. Subtracting the mean first keeps precision when |mean| ≫ σ.
    private let scale: Storage
    private let shift: Storage
    private let slope: Storage
    /// [Σx, Σx², count] in forward, [Σdy, Σdy·x̂] in backward: the buffer handed to the reducer.
    private let stats: ScratchBuffer<Double>
    /// Per-chunk partial sums, 2·C per chunk.
    private var partials: ScratchBuffer<Double>!
    private var maxChunks = 1

    private var lastInput: Tensor?
    private var lastMode: Mode = .train
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
        slope = Storage(count: channels)
        stats = ScratchBuffer(count: 2 * channels + 1, fill: 0)
    }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == channels, "BatchNorm2d(\(channels)) built for input \(input)")
        output = ActivationBuffer(shape: input, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        maxChunks = max(1, Compute.threads)
        partials = ScratchBuffer(count: maxChunks * 2 * channels, fill: 0)
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

    /// Sums `term(row pointer a, row pointer b, channel)` pairs per channel over all rows into
    /// stats[0..<C] (first) and stats[C..<2C] (second), chunk by chunk in chunk order.
    @inline(__always)
    private func reduceRows(rows: Int, _ body: (Range<Int>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        let C = channels, chunks = chunkCount(rows: rows), part = partials.pointer
        parallelChunks(rows, chunks: chunks) { k, r in
            let first = part + k * 2 * C, second = first + C
            first.update(repeating: 0, count: 2 * C)
            body(r, first, second)
        }
        let st = stats.pointer
        for c in 0..<(2 * C) {
            var t = 0.0
            for k in 0..<chunks { t += part[k * 2 * C + c] }
            st[c] = t
        }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == output.shape, "BatchNorm2d built for \(output.shape), got \(x.shape)")
        let C = channels, rows = x.rows
        let y = output.tensor(batch: x.batch)
        let pm = mean.pointer, ps = invstd.pointer, pscale = scale.pointer, pshift = shift.pointer
        let gamma = weight.value!, beta = bias.value!
        let rm = runningMean.pointer, rv = runningVar.pointer
        let mode: Mode = frozenStatistics ? .eval : mode

        if mode == .train {
            let px = x.data
            reduceRows(rows: rows) { r, s, q in
                for row in r {
                    let p = px + row * C
                    for c in 0..<C {
                        let v = Double(p[c])
                        s[c] += v
                        q[c] += v * v
                    }
                }
            }
            let st = stats.pointer
            st[2 * C] = Double(rows)
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
                let a = Double(gamma[c]) * inv
                pscale[c] = Float(a)
                pshift[c] = beta[c]
            }
            numBatchesTracked.value += 1
        } else {
            for c in 0..<C {
                let inv = 1 / (Double(rv[c]) + Double(eps)).squareRoot()
                pm[c] = rm[c]
                ps[c] = Float(inv)
                let a = Double(gamma[c]) * inv
                pscale[c] = Float(a)
                pshift[c] = beta[c]
            }
        }

        let px = x.data, py = y.data
        parallelFor(rows, minChunk: max(1, 8192 / C)) { r in
            for row in r {
                let src = px + row * C, dst = py + row * C
                for c in 0..<C { dst[c] = (src[c] - pm[c]) * pscale[c] + pshift[c] }
            }
        }
        lastInput = x
        lastMode = mode
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = lastInput else { preconditionFailure("BatchNorm2d.backward before forward") }
        precondition(dy.batch == x.batch && dy.shape == x.shape, "BatchNorm2d.backward: dy \(dy.batch)x\(dy.shape) for input \(x.batch)x\(x.shape)")
        let C = channels, rows = x.rows
        let wantWeight = weight.trainable, wantBias = bias.trainable
        let wantInput = inputGradient != nil
        let train = lastMode == .train
        let pm = mean.pointer, ps = invstd.pointer, px = x.data, pdy = dy.data

        // Σdy and Σdy·x̂ (local) are needed for the parameter gradients, and in train mode for dx.
        if wantWeight || wantBias || (train && wantInput) {
            reduceRows(rows: rows) { r, s, q in
                for row in r {
                    let xr = px + row * C, dr = pdy + row * C
                    for c in 0..<C {
                        let d = dr[c]
                        s[c] += Double(d)
                        q[c] += Double(d * ((xr[c] - pm[c]) * ps[c]))
                    }
                }
            }
            let st = stats.pointer
            if wantWeight { let g = weight.grad!; for c in 0..<C { g[c] += Float(st[C + c]) } }
            if wantBias { let g = bias.grad!; for c in 0..<C { g[c] += Float(st[c]) } }
        }
        guard let inputGradient else { return noGradient }

        let dx = inputGradient.tensor(batch: dy.batch)
        let gamma = weight.value!, pscale = scale.pointer, pslope = slope.pointer, poffset = shift.pointer
        if train {
            // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)), means over the global count:
            //    = a·dy + (x − μ)·slope + offset with a = γ/σ, slope = −a·k/σ, offset = −a·mdy.
            reducer?.sum(UnsafeMutableBufferPointer(start: stats.pointer, count: 2 * C))
            let st = stats.pointer, n = lastCount
            for c in 0..<C {
                let inv = Double(ps[c]), a = Double(gamma[c]) * inv
                let mdy = st[c] / n, k = st[C + c] / n
                pscale[c] = Float(a)
                pslope[c] = Float(-a * k * inv)
                poffset[c] = Float(-a * mdy)
            }
        } else {
            for c in 0..<C {
                pscale[c] = Float(Double(gamma[c]) * Double(ps[c]))
                pslope[c] = 0
                poffset[c] = 0
            }
        }
        let pdx = dx.data
        parallelFor(rows, minChunk: max(1, 8192 / C)) { r in
            for row in r {
                let xr = px + row * C, dr = pdy + row * C, out = pdx + row * C
                for c in 0..<C { out[c] = dr[c] * pscale[c] + (xr[c] - pm[c]) * pslope[c] + poffset[c] }
            }
        }
        return dx
    }
}
