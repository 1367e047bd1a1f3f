import Foundation
import DTrainCore

/// MixUp and CutMix of a training batch (`--mixup-alpha`, `--cutmix-alpha`), as torchvision's
/// references/classification train.py applies them to each collated batch: `get_mixup_cutmix`
/// makes RandomMixUp and RandomCutMix with p = 1 (or, with `--use-v2`, transforms.v2 MixUp and
/// CutMix, the same arithmetic), and RandomChoice picks one of them per batch with probability ½
/// each when both alphas are positive.
///
/// - MixUp: λ ~ Beta(α, α); image n becomes λ · x[n] + (1 − λ) · x[n − 1] (the batch rolled by 1,
///   so image 0 pairs with the last), in float32 as PyTorch computes it.
/// - CutMix: λ ~ Beta(α, α); a box centred at a uniform pixel (r_x in 0..<W, r_y in 0..<H) with
///   half-sides int(½ √(1 − λ) · W) and int(½ √(1 − λ) · H), clipped to the image, is pasted from
///   image n − 1 into image n; λ becomes 1 − box area ÷ image area.
/// - Targets: one-hot labels mixed the same way, λ · onehot(y[n]) + (1 − λ) · onehot(y[n − 1]),
///   for the soft-target cross-entropy (`SoftmaxCrossEntropy.forward(logits:targets:)`).
///
/// Each rank mixes its own batch, with draws from `random(seed:rank:epoch:step:)`, so a run is
/// reproducible and a resumed one draws what the uninterrupted one drew, without saved RNG state.
/// Images are mixed in place, NHWC, in the batch's own memory; the image the roll needs once it
/// has been overwritten is kept in one scratch image. Everything is allocated once, so mixing
/// allocates nothing.
public final class BatchMixing {
    public enum Kind: String, Sendable { case mixup, cutmix }

    /// What one batch was given: the kind, the λ its targets were mixed with (CutMix's adjusted
    /// one) and CutMix's box (x1, y1, x2, y2), pixels x1..<x2 of rows y1..<y2.
    public struct Draw: Equatable, Sendable {
        public var kind: Kind
        public var lambda: Double
        public var box: (x1: Int, y1: Int, x2: Int, y2: Int)?

        public init(kind: Kind, lambda: Double, box: (x1: Int, y1: Int, x2: Int, y2: Int)? = nil) {
            self.kind = kind
            self.lambda = lambda
            self.box = box
        }

        public static func == (a: Draw, b: Draw) -> Bool {
            a.kind == b.kind && a.lambda == b.lambda && a.box?.x1 == b.box?.x1 && a.box?.y1 == b.box?.y1
                && a.box?.x2 == b.box?.x2 && a.box?.y2 == b.box?.y2
        }
    }

    public let mixupAlpha: Double
    public let cutmixAlpha: Double
    public let classes: Int
    public let maxBatch: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    private let scratch: Storage
    /// Mixed targets, `classes` per sample.
    public let targets: Storage

    /// Mixing for batches of up to `maxBatch` images of `height × width × channels` and labels in
    /// 0..<classes. An alpha of 0 leaves that method out; at least one must be positive.
    public init(mixupAlpha: Double, cutmixAlpha: Double, classes: Int, maxBatch: Int, height: Int, width: Int, channels: Int = 3) {
        precondition(mixupAlpha >= 0 && cutmixAlpha >= 0 && mixupAlpha.isFinite && cutmixAlpha.isFinite && (mixupAlpha > 0 || cutmixAlpha > 0),
                     "mixup alpha \(mixupAlpha) and cutmix alpha \(cutmixAlpha): both finite and not negative, one positive")
        precondition(classes > 0 && maxBatch > 0 && height > 0 && width > 0 && channels > 0, "empty mixing shape")
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixAlpha
        self.classes = classes
        self.maxBatch = maxBatch
        self.height = height
        self.width = width
        self.channels = channels
        scratch = Storage(count: height * width * channels)
        targets = Storage(count: maxBatch * classes)
    }

    /// The draws of step `step` (from 0 within the epoch) of epoch `epoch` on `rank`.
    public static func random(seed: UInt64, rank: Int, epoch: Int, step: Int) -> SeededRandom {
        SeededRandom(keys: seed, 0x6D69_7875_7063_7574, UInt64(rank), UInt64(epoch), UInt64(step))  // "mixupcut"
    }

    /// Draws the method, λ and (CutMix) the box for one batch.
    public func draw(random: inout SeededRandom) -> Draw {
        let useMixup: Bool
        if mixupAlpha > 0 && cutmixAlpha > 0 { useMixup = random.uniform() < 0.5 } else { useMixup = mixupAlpha > 0 }
        if useMixup { return Draw(kind: .mixup, lambda: random.beta(mixupAlpha, mixupAlpha), box: nil) }
        let lambda = random.beta(cutmixAlpha, cutmixAlpha)
        let rx = random.int(below: width), ry = random.int(below: height)
        let (box, adjusted) = BatchMixing.cutmixBox(lambda: lambda, centreX: rx, centreY: ry, height: height, width: width)
        return Draw(kind: .cutmix, lambda: adjusted, box: box)
    }

    /// torchvision's CutMix box for λ and the centre (r_x, r_y), and λ adjusted to its area.
    public static func cutmixBox(lambda: Double, centreX rx: Int, centreY ry: Int, height H: Int, width W: Int)
        -> (box: (x1: Int, y1: Int, x2: Int, y2: Int), lambda: Double) {
        let r = 0.5 * (1.0 - lambda).squareRoot()
        let halfW = Int(r * Double(W)), halfH = Int(r * Double(H))
        let x1 = max(rx - halfW, 0), y1 = max(ry - halfH, 0)
        let x2 = min(rx + halfW, W), y2 = min(ry + halfH, H)
        let adjusted = 1.0 - Double((x2 - x1) * (y2 - y1)) / Double(W * H)
        return ((x1, y1, x2, y2), adjusted)
    }

    /// Mixes the first `count` images of `images` (NHWC, `height × width × channels` each) and
    /// writes their mixed targets from `labels`, with the draws of `random`; returns what was drawn.
    @discardableResult
    public func apply(images: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, count: Int, random: inout SeededRandom) -> Draw {
        let d = draw(random: &random)
        apply(d, images: images, labels: labels, count: count)
        return d
    }

    /// Mixes batch `step` (from 0 within the epoch) of `epoch` on `rank` in place, with that
    /// batch's draws, and returns its soft targets (`targets`, `classes` per image).
    public func mix(images: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, count: Int,
                    seed: UInt64, rank: Int, epoch: Int, step: Int) -> UnsafePointer<Float> {
        var random = BatchMixing.random(seed: seed, rank: rank, epoch: epoch, step: step)
        apply(images: images, labels: labels, count: count, random: &random)
        return UnsafePointer(targets.pointer)
    }

    /// Mixes the first `count` images and writes their targets as `draw` says.
    public func apply(_ draw: Draw, images: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, count: Int) {
        precondition(count >= 0 && count <= maxBatch, "batch \(count) exceeds the \(maxBatch) mixing was made for")
        guard count > 0 else { return }
        if let box = draw.box {
            paste(box, images: images, count: count)
        } else {
            blend(lambda: draw.lambda, images: images, count: count)
        }
        mixTargets(lambda: draw.lambda, labels: labels, count: count)
    }

    /// x[n] = λ · x[n] + (1 − λ) · x[n − 1], from the last image down, image 0 with the saved last.
    private func blend(lambda: Double, images: UnsafeMutablePointer<Float>, count: Int) {
        let size = height * width * channels
        let a = Float(lambda), b = Float(1.0 - lambda)
        let last = scratch.pointer
        last.update(from: images + (count - 1) * size, count: size)
        for n in stride(from: count - 1, through: 0, by: -1) {
            let x = images + n * size
            let rolled = n > 0 ? UnsafePointer(images + (n - 1) * size) : UnsafePointer(last)
            for i in 0..<size { x[i] = x[i] * a + rolled[i] * b }
        }
    }

    /// Copies the box of image n − 1 into image n, from the last image down.
    private func paste(_ box: (x1: Int, y1: Int, x2: Int, y2: Int), images: UnsafeMutablePointer<Float>, count: Int) {
        let size = height * width * channels, C = channels
        guard box.x2 > box.x1 && box.y2 > box.y1 else { return }
        let last = scratch.pointer
        last.update(from: images + (count - 1) * size, count: size)
        let run = (box.x2 - box.x1) * C
        for n in stride(from: count - 1, through: 0, by: -1) {
            let x = images + n * size
            let rolled = n > 0 ? UnsafePointer(images + (n - 1) * size) : UnsafePointer(last)
            for y in box.y1..<box.y2 {
                let offset = (y * width + box.x1) * C
                (x + offset).update(from: rolled + offset, count: run)
            }
        }
    }

    /// targets[n] = onehot(y[n − 1]) · (1 − λ) + onehot(y[n]) · λ, in float32 as torchvision's
    /// `label.roll(1, 0).mul_(1 - lam).add_(label.mul(lam))`.
    private func mixTargets(lambda: Double, labels: UnsafePointer<Int32>, count: Int) {
        let a = Float(lambda), b = Float(1.0 - lambda), K = classes
        let t = targets.pointer
        for n in 0..<count {
            let own = Int(labels[n]), rolled = Int(labels[n > 0 ? n - 1 : count - 1])
            precondition(own >= 0 && own < K && rolled >= 0 && rolled < K, "label \(own) of sample \(n) is not a class in 0..<\(K)")
            let row = t + n * K
            for k in 0..<K { row[k] = (k == rolled ? 1 : 0) * b + (k == own ? 1 : 0) * a }
        }
    }
}

extension SeededRandom {
    /// A Gamma(shape, 1) variate (Marsaglia and Tsang; shape < 1 by Gamma(shape + 1) · U^(1/shape)).
    public mutating func gamma(_ shape: Double) -> Double {
        precondition(shape > 0 && shape.isFinite, "gamma shape \(shape) must be a positive number")
        if shape < 1 {
            var u = uniform()
            while u == 0 { u = uniform() }
            return gamma(shape + 1) * Foundation.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            let x = normal()
            var v = 1 + c * x
            if v <= 0 { continue }
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if u > 0 && Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }

    /// A Beta(a, b) variate in [0, 1], as X / (X + Y) of X ~ Gamma(a), Y ~ Gamma(b).
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        while true {
            let x = gamma(a), y = gamma(b)
            if x + y > 0 { return x / (x + y) }
        }
    }
}
