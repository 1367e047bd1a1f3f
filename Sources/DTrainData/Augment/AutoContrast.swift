extension ImageOps {
    /// `F.autocontrast(img)`: each channel stretched so its minimum becomes 0 and its maximum 255,
    /// `((value − min) · (255 / (max − min))).clamp(0, 255).to(uint8)` in float32, truncated; a
    /// constant channel is left as it is (torchvision's scale of 1 from 0).
    public static func autoContrast(_ image: RGB8Image) {
        let p = image.pixels
        let n = image.width * image.height
        for c in 0..<3 {
            var lo: UInt8 = 255, hi: UInt8 = 0
            for i in 0..<n {
                let v = p[3 * i + c]
                lo = min(lo, v)
                hi = max(hi, v)
            }
            if lo == hi { continue }
            let minimum = Float(lo)
            let scale = Float(255) / (Float(hi) - minimum)
            for i in 0..<n {
                let v = (Float(p[3 * i + c]) - minimum) * scale
                p[3 * i + c] = UInt8(min(max(v, 0), 255))
            }
        }
    }
}
