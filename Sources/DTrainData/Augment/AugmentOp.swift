/// One of torchvision's auto-augment operations, named as in `autoaugment._apply_op`.
public enum AugmentOp: String, CaseIterable, Equatable, Sendable {
    case identity = "Identity"
    case shearX = "ShearX"
    case shearY = "ShearY"
    case translateX = "TranslateX"
    case translateY = "TranslateY"
    case rotate = "Rotate"
    case brightness = "Brightness"
    case color = "Color"
    case contrast = "Contrast"
    case sharpness = "Sharpness"
    case posterize = "Posterize"
    case solarize = "Solarize"
    case autoContrast = "AutoContrast"
    case equalize = "Equalize"
    case invert = "Invert"

    /// torchvision's `_apply_op(img, op, magnitude, interpolation, fill=None)` on `image`, in
    /// place: shears by `atan(magnitude)` about the top-left corner, translations by
    /// `int(magnitude)` pixels, rotation by `magnitude` degrees about the centre, the four
    /// enhancements with factor `1 + magnitude`, posterize to `int(magnitude)` bits, solarize at
    /// threshold `magnitude`; the rest take no magnitude. `spare` (the same size) is overwritten.
    public func apply(to image: RGB8Image, magnitude: Double, interpolation: AffineInterpolation, spare: RGB8Image) {
        switch self {
        case .identity: break
        case .shearX: ImageOps.shearX(image, magnitude: magnitude, interpolation: interpolation, spare: spare)
        case .shearY: ImageOps.shearY(image, magnitude: magnitude, interpolation: interpolation, spare: spare)
        case .translateX: ImageOps.translate(image, dx: Int(magnitude), dy: 0, interpolation: interpolation, spare: spare)
        case .translateY: ImageOps.translate(image, dx: 0, dy: Int(magnitude), interpolation: interpolation, spare: spare)
        case .rotate: ImageOps.rotate(image, degrees: magnitude, interpolation: interpolation, spare: spare)
        case .brightness: ImageOps.brightness(image, factor: 1 + magnitude)
        case .color: ImageOps.saturation(image, factor: 1 + magnitude)
        case .contrast: ImageOps.contrast(image, factor: 1 + magnitude)
        case .sharpness: ImageOps.sharpness(image, factor: 1 + magnitude, spare: spare)
        case .posterize: ImageOps.posterize(image, bits: Int(magnitude))
        case .solarize: ImageOps.solarize(image, threshold: magnitude)
        case .autoContrast: ImageOps.autoContrast(image)
        case .equalize: ImageOps.equalize(image)
        case .invert: ImageOps.invert(image)
        }
    }
}
