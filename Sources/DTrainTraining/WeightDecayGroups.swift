import DTrainNN

extension TrainConfig {
    /// The weight decay of a parameter of role `role`, as torchvision's `utils.set_weight_decay`
    /// groups parameters: a bias (of any layer, BatchNorm's included) takes `--bias-weight-decay`
    /// when given; otherwise a normalization layer's weight and bias take `--norm-weight-decay`
    /// when given; everything else takes `--weight-decay`. `--no-bn-weight-decay` is
    /// `--norm-weight-decay 0 --bias-weight-decay 0` (no decay on BatchNorm parameters and biases).
    public func weightDecay(for role: ParameterRole) -> Double {
        let norm = noBNWeightDecay ? 0 : normWeightDecay
        let bias = noBNWeightDecay ? 0 : biasWeightDecay
        switch role {
        case .weight: return weightDecay
        case .bias: return bias ?? weightDecay
        case .normWeight: return norm ?? weightDecay
        case .normBias: return bias ?? norm ?? weightDecay
        }
    }
}
