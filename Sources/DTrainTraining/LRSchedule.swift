import Foundation

/// Learning rate as a function of training progress, with optional linear warmup.
///
/// `step`, `multistep` and `constant` follow torch.optim.lr_scheduler's per-epoch rules (StepLR,
/// MultiStepLR); `cosine` anneals per iteration to zero at the end of training. Warmup ramps the
/// rate linearly per iteration from `warmupStartFactor` × lr to lr over `warmupEpochs`, as
/// torchvision's reference recipe does with LinearLR; the main schedule counts epochs after warmup.
public struct LRSchedule: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case step, multistep, cosine, constant
    }

    public var kind: Kind
    public var baseLR: Double
    public var totalEpochs: Int
    /// StepLR's step size in epochs.
    public var stepSize = 30
    /// MultiStepLR's milestones in epochs.
    public var milestones: [Int] = []
    public var gamma = 0.1
    public var warmupEpochs = 0.0
    public var warmupStartFactor = 0.01

    public init(kind: Kind, baseLR: Double, totalEpochs: Int) {
        self.kind = kind
        self.baseLR = baseLR
        self.totalEpochs = totalEpochs
    }

    /// The rate at `epoch` (0-based, fractional: epoch + step / stepsPerEpoch).
    public func rate(at epoch: Double) -> Double {
        if epoch < warmupEpochs {
            let t = epoch / warmupEpochs
            return baseLR * (warmupStartFactor + (1 - warmupStartFactor) * t)
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
        case .cosine:
            let span = max(Double(totalEpochs) - warmupEpochs, 1e-9)
            return baseLR * 0.5 * (1 + cos(Double.pi * min(e / span, 1)))
        }
    }
}
