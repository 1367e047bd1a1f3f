/// Conversions between torch's memory orders and dtrain's, used only at boundaries
/// (weight import and export, reference fixtures).
public enum Layout {
    /// [N, C, H, W] → [N, H, W, C].
    public static func nchwToNHWC(_ x: [Float], n: Int, c: Int, h: Int, w: Int) -> [Float] {
        precondition(x.count == n * c * h * w, "nchwToNHWC: \(x.count) values for \(n)x\(c)x\(h)x\(w)")
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<h { for j in 0..<w {
            out[((b * h + i) * w + j) * c + ch] = x[((b * c + ch) * h + i) * w + j]
        } } } }
        return out
    }

    /// [N, H, W, C] → [N, C, H, W].
    public static func nhwcToNCHW(_ x: [Float], n: Int, c: Int, h: Int, w: Int) -> [Float] {
        precondition(x.count == n * c * h * w, "nhwcToNCHW: \(x.count) values for \(n)x\(h)x\(w)x\(c)")
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<h { for j in 0..<w {
            out[((b * c + ch) * h + i) * w + j] = x[((b * h + i) * w + j) * c + ch]
        } } } }
        return out
    }

    /// Convolution weight [O, I, KH, KW] (torch) → [O, KH, KW, I] (dtrain).
    public static func oihwToOHWI(_ x: [Float], o: Int, i: Int, kh: Int, kw: Int) -> [Float] {
        nchwToNHWC(x, n: o, c: i, h: kh, w: kw)
    }

    /// Convolution weight [O, KH, KW, I] (dtrain) → [O, I, KH, KW] (torch).
    public static func ohwiToOIHW(_ x: [Float], o: Int, i: Int, kh: Int, kw: Int) -> [Float] {
        nhwcToNCHW(x, n: o, c: i, h: kh, w: kw)
    }
}
