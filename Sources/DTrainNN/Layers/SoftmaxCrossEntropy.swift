import DTrainCore
import Foundation

/// Softmax cross-entropy over class logits, averaged over the batch, as
/// torch.nn.CrossEntropyLoss(label_smoothing: ε): per sample
/// (1 − ε)·(−log p_y) + ε·mean_k(−log p_k), with a max-shifted (stable) log-softmax.
///
/// forward computes the loss and dL/dlogits together; backward returns the latter. Buffers are
/// allocated by `build(maxBatch:)`; forward and backward allocate nothing.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    public let labelSmoothing: Float

    private var gradient: ActivationBuffer!
    /// Per sample: its loss (Double, summed in sample order), and how many logits beat its label's.
    private var losses: ScratchBuffer<Double>!
    private var rank: ScratchBuffer<Int32>!
    private var lastBatch = 0
    private var lastShape = FeatureShape(features: 0)

    public init(classes: Int, labelSmoothing: Float = 0) {
        precondition(classes > 0, "SoftmaxCrossEntropy needs at least one class")
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "label smoothing \(labelSmoothing) must lie in [0, 1]")
        self.classes = classes
        self.labelSmoothing = labelSmoothing
        lastShape = FeatureShape(features: classes)
    }

    public func build(maxBatch: Int) {
        gradient = ActivationBuffer(shape: FeatureShape(features: classes), maxBatch: maxBatch)
        losses = ScratchBuffer(count: maxBatch, fill: 0)
        rank = ScratchBuffer(count: maxBatch, fill: 0)
        lastBatch = 0
    }

    /// Mean loss over the batch, as torch.nn.CrossEntropyLoss(label_smoothing:) (reduction mean).
    /// `logits` holds `classes` values per sample (any H×W×C of that count); `labels` one class
    /// index per sample. An empty batch has loss 0.
    public func forward(logits: Tensor, labels: UnsafePointer<Int32>) -> Float {
        Profiler.measure(.loss) { forwardPass(logits: logits, labels: labels) }
    }

    private func forwardPass(logits: Tensor, labels: UnsafePointer<Int32>) -> Float {
        let K = classes, eps = Double(labelSmoothing)
        let onTarget = Float(1 - eps), offTarget = Float(eps / Double(K))
        return pass(logits: logits, label: { n in
            let label = Int(labels[n])
            precondition(label >= 0 && label < K, "label \(label) of sample \(n) is not a class in 0..<\(K)")
            return label
        }, loss: { n, z, lse in
            // −log p_y and mean_k(−log p_k) = lse − mean_k z_k.
            var sumZ = 0.0
            for k in 0..<K { sumZ += Double(z[k]) }
            return (1 - eps) * (lse - Double(z[Int(labels[n])])) + eps * (lse - sumZ / Double(K))
        }, target: { n, k in k == Int(labels[n]) ? onTarget + offTarget : offTarget })
    }

    /// Mean loss over the batch for class-probability targets (MixUp's and CutMix's mixed one-hot
    /// labels), as torch.nn.CrossEntropyLoss(label_smoothing: ε) given probabilities: per sample
    /// −Σ_k t'_k · log p_k with t' = (1 − ε) · t + ε / K. `targets` holds `classes` values per
    /// sample. `correct(topK:)` then counts against each row's most probable class (the first of
    /// equal ones), as torchvision's references compute train accuracy for mixed targets.
    public func forward(logits: Tensor, targets: UnsafePointer<Float>) -> Float {
        Profiler.measure(.loss) { forwardPass(logits: logits, targets: targets) }
    }

    private func forwardPass(logits: Tensor, targets: UnsafePointer<Float>) -> Float {
        let K = classes, eps = Double(labelSmoothing)
        let keep = Float(1 - eps), spread = Float(eps / Double(K))
        return pass(logits: logits, label: { n in
            let t = targets + n * K
            var label = 0
            for k in 0..<K where t[k] > t[label] { label = k }
            return label
        }, loss: { n, z, lse in
            let t = targets + n * K
            var loss = 0.0
            for k in 0..<K { loss += ((1 - eps) * Double(t[k]) + eps / Double(K)) * (lse - Double(z[k])) }
            return loss
        }, target: { n, k in keep * targets[n * K + k] + spread })
    }

    /// What both forwards share, per sample n of logits z: the max-shifted softmax p, the loss
    /// `loss(n, z, lse)` given log Σ exp z, dL/dz = (p_k − `target(n, k)`) / N into the gradient
    /// buffer, and how many logits beat that of class `label(n)`. Returns the batch's mean loss,
    /// summed in sample order.
    @inline(__always)
    private func pass(logits: Tensor, label: (Int) -> Int,
                      loss: (Int, UnsafePointer<Float>, Double) -> Double, target: (Int, Int) -> Float) -> Float {
        precondition(gradient != nil, "SoftmaxCrossEntropy.forward before build(maxBatch:)")
        precondition(logits.shape.count == classes, "SoftmaxCrossEntropy(\(classes)) got logits \(logits.shape)")
        let N = logits.batch, K = classes
        precondition(N <= gradient.maxBatch, "batch \(N) exceeds the \(gradient.maxBatch) the loss was built for")
        lastBatch = N
        lastShape = logits.shape
        if N == 0 { return 0 }
        let invN = 1 / Double(N), scale = Float(invN)
        let pz = UnsafePointer(logits.data), pg = gradient.storage.pointer, pl = losses.pointer, pr = rank.pointer
        parallelFor(N, minChunk: max(1, 4096 / K)) { r in
            for n in r {
                let z = pz + n * K, g = pg + n * K
                let y = label(n)
                var m = -Float.infinity
                for k in 0..<K { m = max(m, z[k]) }
                var sumExp = 0.0
                for k in 0..<K {
                    let e = expf(z[k] - m)
                    g[k] = e
                    sumExp += Double(e)
                }
                pl[n] = loss(n, z, Double(m) + log(sumExp))
                let inv = Float(1 / sumExp)
                var above: Int32 = 0
                let labelLogit = z[y]
                for k in 0..<K {
                    g[k] = (g[k] * inv - target(n, k)) * scale
                    if z[k] > labelLogit { above += 1 }
                }
                pr[n] = above
            }
        }
        var total = 0.0
        for n in 0..<N { total += pl[n] }
        return Float(total * invN)
    }

    /// dL/dlogits for the last forward (owned by the loss; already divided by the batch size).
    public func backward() -> Tensor {
        precondition(gradient != nil, "SoftmaxCrossEntropy.backward before build(maxBatch:)")
        return Tensor(data: gradient.storage.pointer, batch: lastBatch, shape: lastShape)
    }

    /// Samples of the last forward whose label is among the k largest logits (a label tied with
    /// the k-th largest counts as correct).
    public func correct(topK k: Int) -> Int {
        var count = 0
        for n in 0..<lastBatch where Int(rank.pointer[n]) < k { count += 1 }
        return count
    }
}
