import Foundation

/// Learning rate as a function of training progress, with optional warmup.
///
/// `step`, `multistep`, `exponential` and `constant` follow torch.optim.lr_scheduler's per-epoch
/// rules (StepLR, MultiStepLR, ExponentialLR); `cosine` anneals per iteration to `minLR` at the end
/// of training (CosineAnnealingLR's eta_min). Warmup, as torchvision's reference recipe
/// (`--lr-warmup-method`, `--lr-warmup-decay`, `--lr-warmup-epochs`): over `warmupEpochs` the rate
/// is lr × `warmupStartFactor` rising linearly per iteration to lr (LinearLR(start_factor)), or
/// lr × `warmupStartFactor` held constant (ConstantLR(factor)); the main schedule then counts
/// epochs after warmup, as SequentialLR hands over at the milestone.
public struct LRSchedule: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case step, multistep, cosine, constant, exponential
    }

    /// How the rate warms up: torchvision's `--lr-warmup-method`.
    public enum WarmupMethod: String, CaseIterable, Sendable {
        /// LinearLR: from `warmupStartFactor` × lr rising linearly to lr.
        case linear
        /// ConstantLR: `warmupStartFactor` × lr throughout the warmup.
        case constant
    }

    public var kind: Kind
    public var baseLR: Double
    public var totalEpochs: Int
    /// StepLR's step size in epochs.
    public var stepSize = 30
    /// MultiStepLR's milestones in epochs.
    public var milestones: [Int] = []
    /// The decay factor of StepLR, MultiStepLR and ExponentialLR (per epoch).
    public var gamma = 0.1
    public var warmupEpochs = 0.0
    public var warmupMethod = WarmupMethod.linear
    /// torchvision's `--lr-warmup-decay`: LinearLR's start_factor or ConstantLR's factor.
    public var warmupStartFactor = 0.01
    /// The rate `cosine` ends at (CosineAnnealingLR's eta_min, torchvision's `--lr-min`).
    public var minLR = 0.0

    public init(kind: Kind, baseLR: Double, totalEpochs: Int) {
        self.kind = kind
        self.baseLR = baseLR
        self.totalEpochs = totalEpochs
    }

    /// The rate at `epoch` (0-based, fractional: epoch + step / stepsPerEpoch).
    public func rate(at epoch: Double) -> Double {
        if epoch < warmupEpochs {
            switch warmupMethod {
            case .linear:
                let t = epoch / warmupEpochs
                return baseLR * (warmupStartFactor + (1 - warmupStartFactor) * t)
            case .constant:
                return baseLR * warmupStartFactor
            }
        }
        let e = epoch - warmupEpochs
        switch kind {
        case .constant:
            return baseLR
        case .step:
            return baseLR * pow(gamma, Double(Int(e.rounded(.down)) / max(1, stepSize)))
        case .multistep:
            let passed = milestones.filter { Double($0) <= e.rounded(.down) }.count
            return baseLR * pow(gamma, Double(passed))
        case .exponential:
            return baseLR * pow(gamma, e.rounded(.down))
        case .cosine:
            let span = max(Double(totalEpochs) - warmupEpochs, 1e-9)
            return minLR + (baseLR - minLR) * 0.5 * (1 + cos(Double.pi * min(e / span, 1)))
        }
    }
}
