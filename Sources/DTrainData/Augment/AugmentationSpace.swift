/// The operations a policy draws from and their magnitude bins: torchvision's
/// `_augmentation_space` of RandAugment, TrivialAugmentWide, AugMix (with `all_ops`) and
/// AutoAugment, in its dictionary order (the order ops are drawn by index).
///
/// Bins are `torch.linspace(low, high, bins)` in float32 (torch computes element i as a fused
/// multiply-add, `low + step·i` in the first half and `high − step·(bins − 1 − i)` in the second,
/// reproduced here), posterize's are `base − round(i / ((bins − 1) / range))`; magnitudes are
/// computed one at a time so drawing one allocates nothing.
public enum AugmentationSpace: Equatable, Sendable {
    case randAugment
    case trivialAugmentWide
    case augMix
    case autoAugment

    static let randAugmentOps: [AugmentOp] = [
        .identity, .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness,
        .posterize, .solarize, .autoContrast, .equalize,
    ]
    static let augMixOps: [AugmentOp] = [
        .shearX, .shearY, .translateX, .translateY, .rotate, .posterize, .solarize, .autoContrast, .equalize,
        .brightness, .color, .contrast, .sharpness,
    ]
    static let autoAugmentOps: [AugmentOp] = [
        .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness,
        .posterize, .solarize, .autoContrast, .equalize, .invert,
    ]

    /// The ops, in torchvision's order.
    public var ops: [AugmentOp] {
        switch self {
        case .randAugment, .trivialAugmentWide: return AugmentationSpace.randAugmentOps
        case .augMix: return AugmentationSpace.augMixOps
        case .autoAugment: return AugmentationSpace.autoAugmentOps
        }
    }

    /// Whether `op` has magnitude bins (Identity, AutoContrast, Equalize and Invert have none and
    /// take magnitude 0).
    public func hasMagnitudes(_ op: AugmentOp) -> Bool {
        switch op {
        case .identity, .autoContrast, .equalize, .invert: return false
        default: return true
        }
    }

    /// Whether `op`'s magnitude takes a random sign (the geometric ops and the enhancements).
    public func isSigned(_ op: AugmentOp) -> Bool {
        switch op {
        case .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness: return true
        default: return false
        }
    }

    /// Magnitude `bin` of `bins` for `op` on a `width × height` image (0 for ops without bins),
    /// as the float32 value torchvision's table holds.
    public func magnitude(_ op: AugmentOp, bin: Int, bins: Int, width: Int, height: Int) -> Double {
        precondition(bins >= 2 && (0..<bins).contains(bin), "magnitude bin \(bin) outside 0..<\(bins)")
        let wide = self == .trivialAugmentWide
        switch op {
        case .identity, .autoContrast, .equalize, .invert: return 0
        case .shearX, .shearY: return AugmentationSpace.linspace(0, wide ? 0.99 : 0.3, bins, bin)
        case .translateX, .translateY:
            let side = Double(op == .translateX ? width : height)
            let high: Double
            switch self {
            case .trivialAugmentWide: high = 32
            case .augMix: high = side / 3.0
            case .randAugment, .autoAugment: high = 150.0 / 331.0 * side
            }
            return AugmentationSpace.linspace(0, high, bins, bin)
        case .rotate: return AugmentationSpace.linspace(0, wide ? 135 : 30, bins, bin)
        case .brightness, .color, .contrast, .sharpness: return AugmentationSpace.linspace(0, wide ? 0.99 : 0.9, bins, bin)
        case .posterize:
            let (base, range): (Int, Float) = self == .augMix ? (4, 4) : (8, wide ? 6 : 4)
            let divisor = Float(Double(bins - 1) / Double(range))
            return Double(base - Int((Float(bin) / divisor).rounded(.toNearestOrEven)))
        case .solarize: return AugmentationSpace.linspace(255, 0, bins, bin)
        }
    }

    /// Element `i` of `torch.linspace(low, high, count)` in float32.
    static func linspace(_ low: Double, _ high: Double, _ count: Int, _ i: Int) -> Double {
        let start = Float(low), end = Float(high)
        let step = (end - start) / Float(count - 1)
        if i < count / 2 { return Double(start.addingProduct(step, Float(i))) }
        return Double(end.addingProduct(-step, Float(count - 1 - i)))
    }
}
