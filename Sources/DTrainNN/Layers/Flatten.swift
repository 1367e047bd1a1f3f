import DTrainCore

/// [N, H, W, C] → [N, 1, 1, H·W·C] in torch's NCHW flatten order (feature c·H·W + h·W + w), so a
/// Linear that follows takes torchvision's weights unchanged.
public final class Flatten: Layer {
    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var lastBatch = -1

    public init() {}

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        inputShape = input
        let out = FeatureShape(features: input.count)
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        lastBatch = -1
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        Profiler.measure(.elementwise) { forwardPass(x, mode: mode) }
    }

    private func forwardPass(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape == inputShape, "Flatten built for \(inputShape), got \(x.shape)")
        let y = output.tensor(batch: x.batch)
        let plane = x.height * x.width, C = x.channels, features = x.shape.count
        let px = x.data, py = y.data
        parallelFor(x.batch) { r in
            for n in r {
                let src = px + n * features, dst = py + n * features
                for s in 0..<plane { for c in 0..<C { dst[c * plane + s] = src[s * C + c] } }
            }
        }
        lastBatch = x.batch
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        Profiler.measure(.elementwise) { backwardPass(dy) }
    }

    private func backwardPass(_ dy: Tensor) -> Tensor {
        guard let inputGradient else { return noGradient }
        precondition(dy.batch == lastBatch && dy.shape == output.shape, "Flatten.backward: dy \(dy.batch)x\(dy.shape) for the last forward")
        let dx = inputGradient.tensor(batch: dy.batch)
        let plane = inputShape.height * inputShape.width, C = inputShape.channels, features = inputShape.count
        let pdx = dx.data, pdy = dy.data
        parallelFor(dy.batch) { r in
            for n in r {
                let src = pdy + n * features, dst = pdx + n * features
                for s in 0..<plane { for c in 0..<C { dst[s * C + c] = src[c * plane + s] } }
            }
        }
        return dx
    }
}
