extension ImageOps {
    /// `F.equalize(img)` on a uint8 tensor, per channel, in integers as torchvision computes it:
    /// with the 256-bin histogram, `step = ⌊(sum of the non-zero bins but the last) / 255⌋`; a
    /// channel with step 0 (at most one level, or too few pixels) is left unchanged; otherwise
    /// level v becomes `min(255, ⌊(cumulative count below v + ⌊step/2⌋) / step⌋)`.
    public static func equalize(_ image: RGB8Image) {
        precondition(image.width * image.height <= Int(UInt32.max), "image too large to equalize")
        let p = image.pixels
        let n = image.width * image.height
        // 1 KiB and 256 bytes: small enough for the stack (larger temporaries go to the heap).
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 256) { hist in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { lut in
                for c in 0..<3 {
                    hist.initialize(repeating: 0)
                    for i in 0..<n { hist[Int(p[3 * i + c])] += 1 }
                    var total = 0, last = 0
                    for v in 0..<256 where hist[v] != 0 {
                        total += Int(hist[v])
                        last = Int(hist[v])
                    }
                    let step = (total - last) / 255
                    if step == 0 { continue }
                    var cumulative = 0
                    for v in 0..<256 {
                        lut[v] = UInt8(min(255, (cumulative + step / 2) / step))
                        cumulative += Int(hist[v])
                    }
                    for i in 0..<n { p[3 * i + c] = lut[Int(p[3 * i + c])] }
                }
            }
        }
    }
}
