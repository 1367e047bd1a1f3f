/// torchvision's colour operations on uint8 images (`transforms.functional` on tensors, which
/// AutoAugment, RandAugment, TrivialAugmentWide and AugMix call): each blends the image with a
/// second one as `_blend` does, `(ratio·a + (1 − ratio)·b).clamp(0, 255).to(uint8)`, in float32
/// and truncating toward zero as the cast does. The float32 steps are those of torch's kernels:
/// a Python float factor is used as float32, and every product and sum is rounded on its own
/// (no fused multiply-add), so the results are equal byte for byte.
public enum ImageOps {}

extension ImageOps {
    /// torchvision's `_blend` of one value: `ratio·a + (1 − ratio)·b` in float32, clamped to
    /// [0, 255] and truncated.
    @inline(__always)
    static func blend(_ a: Float, _ b: Float, ratio: Float, complement: Float) -> UInt8 {
        let v = ratio * a + complement * b
        return UInt8(min(max(v, 0), 255))
    }

    /// `F.adjust_brightness(img, factor)`: a blend with black.
    public static func brightness(_ image: RGB8Image, factor: Double) {
        precondition(factor >= 0, "brightness factor must not be negative")
        let ratio = Float(factor), complement = Float(1 - factor)
        let p = image.pixels
        for k in 0..<image.count { p[k] = blend(Float(p[k]), 0, ratio: ratio, complement: complement) }
    }

    /// torchvision's `rgb_to_grayscale` of one pixel: `(0.2989·r + 0.587·g + 0.114·b).to(uint8)`
    /// in float32, left to right, truncated.
    @inline(__always)
    static func gray(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        let v = Float(0.2989) * Float(r) + Float(0.587) * Float(g) + Float(0.114) * Float(b)
        return UInt8(v)
    }

    /// `F.adjust_saturation(img, factor)` (AutoAugment's "Color"): a blend with the image's
    /// grayscale version.
    public static func saturation(_ image: RGB8Image, factor: Double) {
        precondition(factor >= 0, "saturation factor must not be negative")
        let ratio = Float(factor), complement = Float(1 - factor)
        let p = image.pixels
        for i in 0..<(image.width * image.height) {
            let q = p + 3 * i
            let g = Float(gray(q[0], q[1], q[2]))
            q[0] = blend(Float(q[0]), g, ratio: ratio, complement: complement)
            q[1] = blend(Float(q[1]), g, ratio: ratio, complement: complement)
            q[2] = blend(Float(q[2]), g, ratio: ratio, complement: complement)
        }
    }

    /// `F.adjust_contrast(img, factor)`: a blend with the mean of the grayscale image (float32,
    /// not rounded). The sum of the gray levels is exact; torch's float32 sum is too up to 2^24
    /// (an image of 65,000 pixels and more of bright gray may differ in the mean's last bit).
    public static func contrast(_ image: RGB8Image, factor: Double) {
        precondition(factor >= 0, "contrast factor must not be negative")
        let p = image.pixels
        let n = image.width * image.height
        var sum = 0
        for i in 0..<n { sum += Int(gray(p[3 * i], p[3 * i + 1], p[3 * i + 2])) }
        let mean = Float(sum) / Float(n)
        let ratio = Float(factor), complement = Float(1 - factor)
        for k in 0..<image.count { p[k] = blend(Float(p[k]), mean, ratio: ratio, complement: complement) }
    }

    /// `F.adjust_sharpness(img, factor)`: a blend with the image smoothed by torchvision's 3×3
    /// kernel (1 around, 5 in the centre, divided by 13) and rounded to uint8, whose border pixels
    /// are the image's own. The smoothed value is S/13 for an integer S, never halfway between two
    /// integers, so it is computed exactly in integers. Images with a side of 2 or less are left
    /// unchanged, as torchvision leaves them. `spare` (the same size) receives the smoothed image.
    public static func sharpness(_ image: RGB8Image, factor: Double, spare: RGB8Image) {
        precondition(factor >= 0, "sharpness factor must not be negative")
        let w = image.width, h = image.height
        if w <= 2 || h <= 2 { return }
        image.copy(to: spare)
        let p = image.pixels, s = spare.pixels
        let row = 3 * w
        for y in 1..<(h - 1) {
            for x in 1..<(w - 1) {
                for c in 0..<3 {
                    let o = y * row + 3 * x + c
                    let around = Int(p[o - row - 3]) + Int(p[o - row]) + Int(p[o - row + 3])
                        + Int(p[o - 3]) + Int(p[o + 3])
                        + Int(p[o + row - 3]) + Int(p[o + row]) + Int(p[o + row + 3])
                    let total = around + 5 * Int(p[o])
                    let (q, r) = total.quotientAndRemainder(dividingBy: 13)
                    s[o] = UInt8(2 * r > 13 ? q + 1 : q)
                }
            }
        }
        let ratio = Float(factor), complement = Float(1 - factor)
        for k in 0..<image.count { p[k] = blend(Float(p[k]), Float(s[k]), ratio: ratio, complement: complement) }
    }
}
