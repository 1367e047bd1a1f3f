/// One step of an AutoAugment sub-policy: the op, the probability it is applied with, and its
/// magnitude bin (of 10; nil for ops without magnitudes).
struct SubPolicyStep: Sendable {
    let op: AugmentOp
    let probability: Double
    let bin: Int?

    init(_ op: AugmentOp, _ probability: Double, _ bin: Int?) {
        self.op = op
        self.probability = probability
        self.bin = bin
    }
}

/// The learned AutoAugment policies torchvision ships (`AutoAugment._get_policies`), as its
/// tables hold them: 25 sub-policies of two steps each.
enum AutoAugmentTables {
    /// torchvision's `AutoAugmentPolicy.IMAGENET` sub-policies.
    static let imagenet: [(SubPolicyStep, SubPolicyStep)] = [
        (SubPolicyStep(.posterize, 0.4, 8), SubPolicyStep(.rotate, 0.6, 9)),
        (SubPolicyStep(.solarize, 0.6, 5), SubPolicyStep(.autoContrast, 0.6, nil)),
        (SubPolicyStep(.equalize, 0.8, nil), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.posterize, 0.6, 7), SubPolicyStep(.posterize, 0.6, 6)),
        (SubPolicyStep(.equalize, 0.4, nil), SubPolicyStep(.solarize, 0.2, 4)),
        (SubPolicyStep(.equalize, 0.4, nil), SubPolicyStep(.rotate, 0.8, 8)),
        (SubPolicyStep(.solarize, 0.6, 3), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.posterize, 0.8, 5), SubPolicyStep(.equalize, 1.0, nil)),
        (SubPolicyStep(.rotate, 0.2, 3), SubPolicyStep(.solarize, 0.6, 8)),
        (SubPolicyStep(.equalize, 0.6, nil), SubPolicyStep(.posterize, 0.4, 6)),
        (SubPolicyStep(.rotate, 0.8, 8), SubPolicyStep(.color, 0.4, 0)),
        (SubPolicyStep(.rotate, 0.4, 9), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.equalize, 0.0, nil), SubPolicyStep(.equalize, 0.8, nil)),
        (SubPolicyStep(.invert, 0.6, nil), SubPolicyStep(.equalize, 1.0, nil)),
        (SubPolicyStep(.color, 0.6, 4), SubPolicyStep(.contrast, 1.0, 8)),
        (SubPolicyStep(.rotate, 0.8, 8), SubPolicyStep(.color, 1.0, 2)),
        (SubPolicyStep(.color, 0.8, 8), SubPolicyStep(.solarize, 0.8, 7)),
        (SubPolicyStep(.sharpness, 0.4, 7), SubPolicyStep(.invert, 0.6, nil)),
        (SubPolicyStep(.shearX, 0.6, 5), SubPolicyStep(.equalize, 1.0, nil)),
        (SubPolicyStep(.color, 0.4, 0), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.equalize, 0.4, nil), SubPolicyStep(.solarize, 0.2, 4)),
        (SubPolicyStep(.solarize, 0.6, 5), SubPolicyStep(.autoContrast, 0.6, nil)),
        (SubPolicyStep(.invert, 0.6, nil), SubPolicyStep(.equalize, 1.0, nil)),
        (SubPolicyStep(.color, 0.6, 4), SubPolicyStep(.contrast, 1.0, 8)),
        (SubPolicyStep(.equalize, 0.8, nil), SubPolicyStep(.equalize, 0.6, nil)),
    ]

    /// torchvision's `AutoAugmentPolicy.CIFAR10` sub-policies.
    static let cifar10: [(SubPolicyStep, SubPolicyStep)] = [
        (SubPolicyStep(.invert, 0.1, nil), SubPolicyStep(.contrast, 0.2, 6)),
        (SubPolicyStep(.rotate, 0.7, 2), SubPolicyStep(.translateX, 0.3, 9)),
        (SubPolicyStep(.sharpness, 0.8, 1), SubPolicyStep(.sharpness, 0.9, 3)),
        (SubPolicyStep(.shearY, 0.5, 8), SubPolicyStep(.translateY, 0.7, 9)),
        (SubPolicyStep(.autoContrast, 0.5, nil), SubPolicyStep(.equalize, 0.9, nil)),
        (SubPolicyStep(.shearY, 0.2, 7), SubPolicyStep(.posterize, 0.3, 7)),
        (SubPolicyStep(.color, 0.4, 3), SubPolicyStep(.brightness, 0.6, 7)),
        (SubPolicyStep(.sharpness, 0.3, 9), SubPolicyStep(.brightness, 0.7, 9)),
        (SubPolicyStep(.equalize, 0.6, nil), SubPolicyStep(.equalize, 0.5, nil)),
        (SubPolicyStep(.contrast, 0.6, 7), SubPolicyStep(.sharpness, 0.6, 5)),
        (SubPolicyStep(.color, 0.7, 7), SubPolicyStep(.translateX, 0.5, 8)),
        (SubPolicyStep(.equalize, 0.3, nil), SubPolicyStep(.autoContrast, 0.4, nil)),
        (SubPolicyStep(.translateY, 0.4, 3), SubPolicyStep(.sharpness, 0.2, 6)),
        (SubPolicyStep(.brightness, 0.9, 6), SubPolicyStep(.color, 0.2, 8)),
        (SubPolicyStep(.solarize, 0.5, 2), SubPolicyStep(.invert, 0.0, nil)),
        (SubPolicyStep(.equalize, 0.2, nil), SubPolicyStep(.autoContrast, 0.6, nil)),
        (SubPolicyStep(.equalize, 0.2, nil), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.color, 0.9, 9), SubPolicyStep(.equalize, 0.6, nil)),
        (SubPolicyStep(.autoContrast, 0.8, nil), SubPolicyStep(.solarize, 0.2, 8)),
        (SubPolicyStep(.brightness, 0.1, 3), SubPolicyStep(.color, 0.7, 0)),
        (SubPolicyStep(.solarize, 0.4, 5), SubPolicyStep(.autoContrast, 0.9, nil)),
        (SubPolicyStep(.translateY, 0.9, 9), SubPolicyStep(.translateY, 0.7, 9)),
        (SubPolicyStep(.autoContrast, 0.9, nil), SubPolicyStep(.solarize, 0.8, 3)),
        (SubPolicyStep(.equalize, 0.8, nil), SubPolicyStep(.invert, 0.1, nil)),
        (SubPolicyStep(.translateY, 0.7, 9), SubPolicyStep(.autoContrast, 0.9, nil)),
    ]
}
