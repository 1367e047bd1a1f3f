import DTrainCore

/// The geometry of a 2-D convolution over NHWC activations, and the column (im2col) transforms
/// its GEMM formulation uses.
///
/// Column matrix layout: one row per output pixel (n, oh, ow), `columns` = K·K·C values per row,
/// ordered group-major: [group][kh][kw][c in group]. Group g's block of K·K·Cg columns starts at
/// column g·K·K·Cg, so it is a row-major matrix with leading dimension `columns` whose column order
/// matches the O×KH×KW×(I/groups) weight rows of that group.
struct ConvGeometry {
    let height, width, channels: Int
    let outHeight, outWidth: Int
    let kernel, stride, padding, dilation, groups: Int

    /// Input channels per group.
    var groupChannels: Int { channels / groups }
    /// Columns of one group's block: K·K·Cg.
    var groupColumns: Int { kernel * kernel * groupChannels }
    /// Columns of a full row: K·K·C.
    var columns: Int { kernel * kernel * channels }
    var outPixels: Int { outHeight * outWidth }
    var inPixels: Int { height * width }

    init(input: FeatureShape, kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int) {
        height = input.height
        width = input.width
        channels = input.channels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        outHeight = (input.height + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
        outWidth = (input.width + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    }

    /// Fills the column matrix for `images` images starting at image `firstImage` of `x`
    /// (rows `images · outPixels`, leading dimension `columns`). Padding positions become zero.
    func im2col(_ x: UnsafePointer<Float>, firstImage: Int, images: Int, into col: UnsafeMutablePointer<Float>) {
        let h = height, w = width, c = channels, ow = outWidth, op = outPixels
        let k = kernel, s = stride, p = padding, d = dilation, g = groups
        let cg = groupChannels, kc = groupColumns, ld = columns
        let base = x + firstImage * inPixels * c
        parallelFor(images * op, minChunk: 16) { rows in
            for m in rows {
                let n = m / op, rem = m - n * op
                let oh = rem / ow, owi = rem - oh * ow
                let dst = col + m * ld
                let image = base + n * h * w * c
                for kh in 0..<k {
                    let ih = oh * s - p + kh * d
                    let rowInside = ih >= 0 && ih < h
                    for kw in 0..<k {
                        let iw = owi * s - p + kw * d
                        let tap = kh * k + kw
                        if rowInside && iw >= 0 && iw < w {
                            let src = image + (ih * w + iw) * c
                            if g == 1 {
                                let out = dst + tap * c
                                for i in 0..<c { out[i] = src[i] }
                            } else {
                                for gi in 0..<g {
                                    let out = dst + gi * kc + tap * cg, from = src + gi * cg
                                    for i in 0..<cg { out[i] = from[i] }
                                }
                            }
                        } else {
                            if g == 1 {
                                let out = dst + tap * c
                                for i in 0..<c { out[i] = 0 }
                            } else {
                                for gi in 0..<g {
                                    let out = dst + gi * kc + tap * cg
                                    for i in 0..<cg { out[i] = 0 }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: writes dx for `images` images starting at `firstImage` by gathering,
    /// for every input pixel, the column entries that were copied from it. Every dx value of those
    /// images is overwritten (pixels no kernel tap reads get zero). Summation order is fixed, so the
    /// result does not depend on the thread count.
    func col2im(_ col: UnsafePointer<Float>, firstImage: Int, images: Int, into dx: UnsafeMutablePointer<Float>) {
        let w = width, c = channels, oh = outHeight, ow = outWidth, op = outPixels
        let k = kernel, s = stride, p = padding, d = dilation, g = groups
        let cg = groupChannels, kc = groupColumns, ld = columns
        let hw = inPixels
        let base = dx + firstImage * hw * c
        parallelFor(images * hw, minChunk: 16) { pixels in
            for q in pixels {
                let n = q / hw, rem = q - n * hw
                let ih = rem / w, iw = rem - ih * w
                let dst = base + q * c
                for i in 0..<c { dst[i] = 0 }
                let image = col + n * op * ld
                for kh in 0..<k {
                    // ih = oh·s − p + kh·d  ⇒  oh = (ih + p − kh·d) / s when divisible.
                    let th = ih + p - kh * d
                    if th < 0 { break }
                    let ohi = th / s
                    if ohi * s != th || ohi >= oh { continue }
                    for kw in 0..<k {
                        let tw = iw + p - kw * d
                        if tw < 0 { break }
                        let owi = tw / s
                        if owi * s != tw || owi >= ow { continue }
                        let tap = kh * k + kw
                        let src = image + (ohi * ow + owi) * ld
                        if g == 1 {
                            let from = src + tap * c
                            for i in 0..<c { dst[i] += from[i] }
                        } else {
                            for gi in 0..<g {
                                let from = src + gi * kc + tap * cg, out = dst + gi * cg
                                for i in 0..<cg { out[i] += from[i] }
                            }
                        }
                    }
                }
            }
        }
    }
}
