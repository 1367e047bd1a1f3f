import DTrainCore

/// The parameter-free shortcut of CIFAR ResNets ("option A"): subsample by `stride` and pad the
/// channels with zeros, (out − in)/2 before and the rest after. In torch:
/// F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, extra // 2, extra − extra // 2)).
public final class PadShortcut: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int

    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastBatch = -1

    public init(inChannels: Int, outChannels: Int, stride: Int) {
        precondition(inChannels > 0 && outChannels >= inChannels && stride > 0,
                     "PadShortcut: in \(inChannels), out \(outChannels), stride \(stride)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
    }

    /// Zero channels before the input's.
    public var padBefore: Int { (outChannels - inChannels) / 2 }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == inChannels, "PadShortcut(\(inChannels)→\(outChannels)) built for input \(input)")
        let out = FeatureShape(height: (input.height + stride - 1) / stride, width: (input.width + stride - 1) / stride,
                               channels: outChannels)
        inputShape = input
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        lastBatch = -1
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.elementwise) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == inputShape, "PadShortcut built for \(inputShape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let H = x.height, W = x.width, CI = inChannels, CO = outChannels, OH = y.height, OW = y.width
        let s = stride, before = padBefore
        let px = x.data, py = y.data
        parallelFor(x.batch * OH) { r in
            for unit in r {
                let n = unit / OH, i = unit % OH
                for j in 0..<OW {
                    let dst = py + ((n * OH + i) * OW + j) * CO
                    let src = px + ((n * H + i * s) * W + j * s) * CI
                    dst.update(repeating: 0, count: before)
                    (dst + before).update(from: src, count: CI)
                    (dst + before + CI).update(repeating: 0, count: CO - before - CI)
                }
            }
        }
        lastBatch = x.batch
        return y
    }

    /// Backward only slices dy: the input is not read.
    public func readsInputInBackward(_ context: BuildContext) -> Bool { false }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.elementwise) { backwardPass(dy) }
    }

    private func backwardPass(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        precondition(dy.batch == lastBatch && dy.shape == output.shape, "PadShortcut.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let dx = inputGradient.tensor(batch: dy.batch)
        let H = inputShape.height, W = inputShape.width, CI = inChannels, CO = outChannels
        let s = stride, before = padBefore
        let pdx = dx.data, pdy = dy.data
        parallelFor(dy.batch * H) { r in
            for unit in r {
                let n = unit / H, h = unit % H
                let row = pdx + (n * H + h) * W * CI
                if h % s != 0 { row.update(repeating: 0, count: W * CI); continue }
                let i = h / s
                for w in 0..<W {
                    let dst = row + w * CI
                    if w % s != 0 { dst.update(repeating: 0, count: CI); continue }
                    let src = pdy + ((n * dy.height + i) * dy.width + w / s) * CO + before
                    dst.update(from: src, count: CI)
                }
            }
        }
        return dx
    }
}
