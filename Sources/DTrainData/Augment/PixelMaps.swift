extension ImageOps {
    /// `F.invert(img)`: 255 − value.
    public static func invert(_ image: RGB8Image) {
        let p = image.pixels
        for k in 0..<image.count { p[k] = 255 - p[k] }
    }

    /// `F.posterize(img, bits)`: keeps the `bits` high bits of each value (`img & −2^(8−bits)`);
    /// 0 bits gives black, as torchvision's mask does.
    public static func posterize(_ image: RGB8Image, bits: Int) {
        precondition((0...8).contains(bits), "posterize keeps 0 to 8 bits")
        let mask = UInt8(truncatingIfNeeded: -(1 << (8 - bits)))
        let p = image.pixels
        for k in 0..<image.count { p[k] &= mask }
    }

    /// `F.solarize(img, threshold)`: values at or above `threshold` (compared in float32, as the
    /// tensor comparison promotes them) are inverted.
    public static func solarize(_ image: RGB8Image, threshold: Double) {
        let t = Float(threshold)
        let p = image.pixels
        for k in 0..<image.count where Float(p[k]) >= t { p[k] = 255 - p[k] }
    }
}
