import Foundation
import DTrainCore

/// torchvision's automatic augmentation policies, named as `train.py --auto-augment` names them:
/// `ra` (RandAugment), `ta_wide` (TrivialAugmentWide), `augmix` (AugMix), and `imagenet` or
/// `cifar10` (AutoAugment with that learned policy).
public enum AutoAugmentPolicy: String, CaseIterable, Equatable, Sendable {
    case randAugment = "ra"
    case trivialAugmentWide = "ta_wide"
    case augMix = "augmix"
    case imagenet
    case cifar10

    /// The names `--auto-augment` takes, for messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The settings of one policy as `ClassificationPresetTrain` builds it: RandAugment with 2 ops
/// and 31 bins at `raMagnitude`; TrivialAugmentWide with 31 bins; AugMix with `augmixSeverity`,
/// 3 chains of random depth 1–3 and α = 1 (all ops); AutoAugment with its table. Affine ops
/// sample with `interpolation` and fill with 0 (torchvision's `fill=None`).
///
/// Randomness: every draw comes from the sample's `SeededRandom`, the one
/// `ImageTransform.random(seed:epoch:index:)` keys by (seed, epoch, dataset index), after the
/// crop and flip draws; so a sample is augmented the same way on any rank or loader worker, and
/// a resumed run repeats the same augmentations with no generator state saved in checkpoints.
public struct AutoAugmentation: Equatable, Sendable {
    public var policy: AutoAugmentPolicy
    /// RandAugment's magnitude bin, 0...30 (torchvision's default 9).
    public var raMagnitude: Int
    /// AugMix's severity, 1...10: magnitudes are drawn from its first `augmixSeverity` bins of 10.
    public var augmixSeverity: Int
    public var interpolation: AffineInterpolation

    public static let randAugmentBins = 31
    public static let randAugmentOps = 2
    public static let trivialAugmentBins = 31
    public static let augMixBins = 10
    public static let augMixChains = 3
    public static let autoAugmentBins = 10

    public init(policy: AutoAugmentPolicy, raMagnitude: Int = 9, augmixSeverity: Int = 3, interpolation: AffineInterpolation = .bilinear) {
        precondition((0..<AutoAugmentation.randAugmentBins).contains(raMagnitude), "RandAugment magnitude must be in 0...30")
        precondition((1...AutoAugmentation.augMixBins).contains(augmixSeverity), "AugMix severity must be in 1...10")
        self.policy = policy
        self.raMagnitude = raMagnitude
        self.augmixSeverity = augmixSeverity
        self.interpolation = interpolation
    }

    /// Augments `image` in place, drawing from `random`. `scratch` holds AugMix's chains and the
    /// ops' spare image; `mix` (at least `image.count` floats) is AugMix's float accumulator.
    public func apply(to image: RGB8Image, random: inout SeededRandom, scratch: AugmentScratch, mix: UnsafeMutablePointer<Float>) {
        let spare = scratch.image(.spare, width: image.width, height: image.height)
        switch policy {
        case .randAugment:
            let space = AugmentationSpace.randAugment
            for _ in 0..<AutoAugmentation.randAugmentOps {
                let op = space.ops[random.int(below: space.ops.count)]
                var magnitude = space.magnitude(op, bin: raMagnitude, bins: AutoAugmentation.randAugmentBins,
                                                width: image.width, height: image.height)
                if space.isSigned(op) && random.int(below: 2) == 1 { magnitude = -magnitude }
                op.apply(to: image, magnitude: magnitude, interpolation: interpolation, spare: spare)
            }
        case .trivialAugmentWide:
            let space = AugmentationSpace.trivialAugmentWide
            let op = space.ops[random.int(below: space.ops.count)]
            var magnitude = 0.0
            if space.hasMagnitudes(op) {
                let bin = random.int(below: AutoAugmentation.trivialAugmentBins)
                magnitude = space.magnitude(op, bin: bin, bins: AutoAugmentation.trivialAugmentBins, width: image.width, height: image.height)
            }
            if space.isSigned(op) && random.int(below: 2) == 1 { magnitude = -magnitude }
            op.apply(to: image, magnitude: magnitude, interpolation: interpolation, spare: spare)
        case .augMix:
            augMix(image, random: &random, scratch: scratch, spare: spare, mix: mix)
        case .imagenet, .cifar10:
            let table = policy == .imagenet ? AutoAugmentTables.imagenet : AutoAugmentTables.cifar10
            // torchvision draws the sub-policy, both probabilities and both signs up front.
            let (first, second) = table[random.int(below: table.count)]
            let p0 = random.uniform(), p1 = random.uniform()
            let s0 = random.int(below: 2), s1 = random.int(below: 2)
            autoAugmentStep(first, draw: p0, sign: s0, image: image, spare: spare)
            autoAugmentStep(second, draw: p1, sign: s1, image: image, spare: spare)
        }
    }

    /// One AutoAugment step: applied when the draw is at most its probability; a signed
    /// magnitude is negated when its sign draw is 0.
    private func autoAugmentStep(_ step: SubPolicyStep, draw: Double, sign: Int, image: RGB8Image, spare: RGB8Image) {
        guard draw <= step.probability else { return }
        let space = AugmentationSpace.autoAugment
        var magnitude = step.bin.map {
            space.magnitude(step.op, bin: $0, bins: AutoAugmentation.autoAugmentBins, width: image.width, height: image.height)
        } ?? 0
        if space.isSigned(step.op) && sign == 0 { magnitude = -magnitude }
        step.op.apply(to: image, magnitude: magnitude, interpolation: interpolation, spare: spare)
    }

    /// torchvision's AugMix: weights m ~ Dirichlet(1, 1) for the original and the mixture, chain
    /// weights ~ Dirichlet(1, 1, 1) · m₁; each of the 3 chains applies 1–3 random ops (magnitude
    /// bin below the severity, random sign) to a copy of the original; the float32 sum
    /// `m₀·original + Σ wᵢ·chainᵢ` is truncated to uint8 as `.to(torch.uint8)` does.
    private func augMix(_ image: RGB8Image, random: inout SeededRandom, scratch: AugmentScratch, spare: RGB8Image,
                        mix: UnsafeMutablePointer<Float>) {
        let chain = scratch.image(.chain, width: image.width, height: image.height)
        let space = AugmentationSpace.augMix
        let (m0, m1) = AutoAugmentation.dirichlet2(&random)
        let (d0, d1, d2) = AutoAugmentation.dirichlet3(&random)
        let weights = (Float(d0) * Float(m1), Float(d1) * Float(m1), Float(d2) * Float(m1))
        AutoAugmentation.startMix(image, weight: Float(m0), into: mix)
        for i in 0..<AutoAugmentation.augMixChains {
            image.copy(to: chain)
            let depth = 1 + random.int(below: 3)
            for _ in 0..<depth {
                let op = space.ops[random.int(below: space.ops.count)]
                var magnitude = 0.0
                if space.hasMagnitudes(op) {
                    magnitude = space.magnitude(op, bin: random.int(below: augmixSeverity), bins: AutoAugmentation.augMixBins,
                                                width: image.width, height: image.height)
                }
                if space.isSigned(op) && random.int(below: 2) == 1 { magnitude = -magnitude }
                op.apply(to: chain, magnitude: magnitude, interpolation: interpolation, spare: spare)
            }
            AutoAugmentation.addToMix(chain, weight: i == 0 ? weights.0 : i == 1 ? weights.1 : weights.2, into: mix)
        }
        AutoAugmentation.truncate(mix, into: image)
    }

    /// AugMix's `mix = m₀ · batch` in float32.
    public static func startMix(_ image: RGB8Image, weight: Float, into mix: UnsafeMutablePointer<Float>) {
        for k in 0..<image.count { mix[k] = weight * Float(image.pixels[k]) }
    }

    /// AugMix's `mix.add_(wᵢ · aug)` in float32.
    public static func addToMix(_ chain: RGB8Image, weight: Float, into mix: UnsafeMutablePointer<Float>) {
        for k in 0..<chain.count { mix[k] += weight * Float(chain.pixels[k]) }
    }

    /// `.to(torch.uint8)` of AugMix's float mixture: truncated toward zero (the values are in
    /// [0, 255] up to rounding; clamped to stay there).
    public static func truncate(_ mix: UnsafePointer<Float>, into image: RGB8Image) {
        for k in 0..<image.count { image.pixels[k] = UInt8(min(max(mix[k], 0), 255)) }
    }

    /// A Dirichlet(1, …, 1) draw of two weights: normalised Exp(1) (= Gamma(1)) variates, as
    /// torch's `_sample_dirichlet` normalises Gamma(α) ones.
    static func dirichlet2(_ random: inout SeededRandom) -> (Double, Double) {
        let a = exponential(&random), b = exponential(&random)
        let s = a + b
        return (a / s, b / s)
    }

    /// A Dirichlet(1, 1, 1) draw of three weights.
    static func dirichlet3(_ random: inout SeededRandom) -> (Double, Double, Double) {
        let a = exponential(&random), b = exponential(&random), c = exponential(&random)
        let s = a + b + c
        return (a / s, b / s, c / s)
    }

    /// An Exp(1) variate, −log(1 − U), positive.
    static func exponential(_ random: inout SeededRandom) -> Double {
        max(-Foundation.log(1 - random.uniform()), .leastNormalMagnitude)
    }
}
