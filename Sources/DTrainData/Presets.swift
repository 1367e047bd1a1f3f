/// The standard train and evaluation pipelines for a dataset family.
///
/// - `imagenet`: train = `RandomResizedCrop(r, scale 0.08–1, ratio 3/4–4/3)` + flip; eval =
///   `Resize(round(r·256/224))` + `CenterCrop(r)`; resolution r defaults to 224.
/// - `cifar`: train = `RandomCrop(r, padding r/8)` + flip (pad 4 at 32); eval = identity at r
///   (an input of another size — e.g. the 32×32 digits at another resolution — is resized:
///   `Resize(r)` + `CenterCrop(r)`); r defaults to 32.
///
/// Normalisation uses the family's mean/std unless others are given; resizes are bilinear unless
/// another interpolation is given, and the evaluation resize can be given (torchvision's
/// `--val-resize-size`).
public enum Preset: String, CaseIterable, Sendable {
    case imagenet
    case cifar

    /// 224 for ImageNet, 32 for CIFAR.
    public var defaultResolution: Int {
        switch self {
        case .imagenet: return 224
        case .cifar: return 32
        }
    }

    /// Per-channel mean (R, G, B) of values in [0, 1].
    public var mean: [Float] {
        switch self {
        case .imagenet: return [0.485, 0.456, 0.406]
        case .cifar: return [0.4914, 0.4822, 0.4465]
        }
    }

    /// Per-channel standard deviation (R, G, B) of values in [0, 1].
    public var std: [Float] {
        switch self {
        case .imagenet: return [0.229, 0.224, 0.225]
        case .cifar: return [0.2470, 0.2435, 0.2616]
        }
    }

    /// The evaluation resize for ImageNet at `resolution`: `round(resolution · 256 / 224)`.
    public static func imagenetEvalResize(resolution: Int) -> Int {
        Int((Double(resolution) * 256 / 224).rounded())
    }

    /// The evaluation resize at `resolution` when none is given: `round(r·256/224)` for ImageNet,
    /// `r` (no resize of an `r × r` input) for CIFAR.
    public func evalResize(resolution: Int) -> Int {
        switch self {
        case .imagenet: return Preset.imagenetEvalResize(resolution: resolution)
        case .cifar: return resolution
        }
    }

    /// The training transform at `resolution` (the preset's default when nil).
    public func train(resolution: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil,
                      interpolation: Interpolation = .bilinear) -> ImageTransform {
        let r = resolution ?? defaultResolution
        let geometry: ImageTransform.Geometry
        switch self {
        case .imagenet: geometry = .randomResizedCrop(size: r, scale: 0.08...1.0, ratio: (3.0 / 4.0)...(4.0 / 3.0))
        case .cifar: geometry = .paddedRandomCrop(size: r, padding: max(1, (r + 4) / 8))
        }
        return ImageTransform(geometry: geometry, flipProbability: 0.5, mean: mean ?? self.mean, std: std ?? self.std,
                              interpolation: interpolation)
    }

    /// The evaluation transform at `resolution` (the preset's default when nil): `Resize(resize)`
    /// (`evalResize(resolution:)` when nil) + `CenterCrop(resolution)`.
    public func eval(resolution: Int? = nil, resize: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil,
                     interpolation: Interpolation = .bilinear) -> ImageTransform {
        let r = resolution ?? defaultResolution
        return ImageTransform(geometry: .resizeCenterCrop(resize: resize ?? evalResize(resolution: r), crop: r),
                              mean: mean ?? self.mean, std: std ?? self.std, interpolation: interpolation)
    }
}
