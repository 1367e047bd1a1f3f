/// torchvision's training augmentations after the crop and the flip, as
/// `references/classification/presets.py` (`ClassificationPresetTrain`) orders them: an
/// auto-augment policy on the uint8 image, then `ToTensor` + `Normalize`, then `RandomErasing`.
/// The flags `dtrain train --auto-augment`, `--ra-magnitude`, `--augmix-severity` and
/// `--random-erase` set it, with torchvision's names, defaults and meanings.
///
/// Randomness: every draw comes from the per-sample `SeededRandom` keyed by (seed, epoch, dataset
/// index) (`ImageTransform.random(seed:epoch:index:)`), after the crop and flip draws, so runs stay
/// reproducible across ranks, workers and resumes, and checkpoints need no generator state.
public struct Augmentation: Equatable, Sendable, CustomStringConvertible {
    /// The auto-augment policy (`--auto-augment`); nil: none.
    public var autoAugment: AutoAugmentPolicy?
    /// RandAugment's magnitude (`--ra-magnitude`), 0...30; torchvision's default 9.
    public var raMagnitude = 9
    /// AugMix's severity (`--augmix-severity`), 1...10; torchvision's default 3.
    public var augmixSeverity = 3
    /// How the policies' affine ops sample: train.py passes its `--interpolation` (bilinear by
    /// default) to every policy, so bilinear here. `--interpolation bicubic` leaves it bilinear:
    /// torchvision's tensor affine ops, which these match, have no bicubic mode.
    public var interpolation: AffineInterpolation = .bilinear
    /// `RandomErasing` probability (`--random-erase`), in [0, 1]; 0: none.
    public var randomErase = 0.0

    /// No augmentation past the crop and flip.
    public init() {}

    public init(autoAugment: AutoAugmentPolicy?, raMagnitude: Int = 9, augmixSeverity: Int = 3,
                interpolation: AffineInterpolation = .bilinear, randomErase: Double = 0) {
        self.autoAugment = autoAugment
        self.raMagnitude = raMagnitude
        self.augmixSeverity = augmixSeverity
        self.interpolation = interpolation
        self.randomErase = randomErase
    }

    /// Nothing to do: the transform keeps its single fused pass.
    public var isNone: Bool { autoAugment == nil && randomErase == 0 }

    /// The policy with its settings, when one is chosen.
    public var policy: AutoAugmentation? {
        autoAugment.map {
            AutoAugmentation(policy: $0, raMagnitude: raMagnitude, augmixSeverity: augmixSeverity, interpolation: interpolation)
        }
    }

    /// `RandomErasing(p)` when `randomErase` > 0.
    public var erasing: RandomErasing? { randomErase > 0 ? RandomErasing(probability: randomErase) : nil }

    /// The first setting out of range, as a one-line message naming its flag; nil when all are valid.
    public var problem: String? {
        if !(0...30).contains(raMagnitude) { return "--ra-magnitude must be in 0...30, got \(raMagnitude)" }
        if !(1...10).contains(augmixSeverity) { return "--augmix-severity must be in 1...10, got \(augmixSeverity)" }
        if !(randomErase >= 0 && randomErase <= 1) { return "--random-erase must be a probability in [0, 1], got \(randomErase)" }
        return nil
    }

    /// What is on, for run.json, the checkpoint's settings and the ranks' agreement check, e.g.
    /// "ta_wide (bilinear), random erase 0.25", or "none".
    public var description: String {
        var parts: [String] = []
        if let a = autoAugment {
            switch a {
            case .randAugment: parts.append("ra (magnitude \(raMagnitude), \(interpolation.rawValue))")
            case .augMix: parts.append("augmix (severity \(augmixSeverity), \(interpolation.rawValue))")
            default: parts.append("\(a.rawValue) (\(interpolation.rawValue))")
            }
        }
        if randomErase > 0 { parts.append("random erase \(randomErase)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
