import DTrainCore

/// The geometry of a 2-D convolution over NHWC activations, and the column (im2col) transforms
/// its GEMM formulation uses.
///
/// Column matrix layout: one row per output pixel (n, oh, ow), `columns` = K·K·C values per row,
/// ordered group-major: [group][kh][kw][c in group]. Group g's block of K·K·Cg columns starts at
/// column g·K·K·Cg, so it is a row-major matrix with leading dimension `columns` whose column order
/// matches the O×KH×KW×(I/groups) weight rows of that group.
///
/// The transforms work on a range of rows (output pixels numbered across the batch, image-major),
/// serially: callers split the rows between threads and keep each thread's tile in its cache.
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

    /// Writes column rows `rows` (output pixels of the batch whose first image starts at `x`) to
    /// `col`, row `rows.lowerBound` first, leading dimension `columns`. Padding positions become zero.
    func im2col(_ x: UnsafePointer<Float>, rows: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        if rows.isEmpty { return }
        let h = height, w = width, c = channels, ow = outWidth, op = outPixels
        let k = kernel, s = stride, p = padding, d = dilation, g = groups
        let cg = groupChannels, kc = groupColumns, ld = columns, kRun = k * c
        let imageFloats = inPixels * c
        var n = rows.lowerBound / op
        var oh = (rows.lowerBound - n * op) / ow
        var owi = rows.lowerBound - n * op - oh * ow
        var dst = col
        for _ in rows {
            let image = x + n * imageFloats
            let iw0 = owi * s - p
            // The K taps of a kernel row are K adjacent pixels: one contiguous run of K·C floats.
            let runInside = g == 1 && d == 1 && iw0 >= 0 && iw0 + k <= w
            for kh in 0..<k {
                let ih = oh * s - p + kh * d
                if ih < 0 || ih >= h {
                    if g == 1 {
                        (dst + kh * kRun).update(repeating: 0, count: kRun)
                    } else {
                        for gi in 0..<g { (dst + gi * kc + kh * k * cg).update(repeating: 0, count: k * cg) }
                    }
                    continue
                }
                let rowBase = image + ih * w * c
                if runInside {
                    copyFloats(dst + kh * kRun, rowBase + iw0 * c, kRun)
                    continue
                }
                for kw in 0..<k {
                    let iw = iw0 + kw * d
                    let tap = kh * k + kw
                    let inside = iw >= 0 && iw < w
                    if g == 1 {
                        if inside { copyFloats(dst + tap * c, rowBase + iw * c, c) } else { (dst + tap * c).update(repeating: 0, count: c) }
                    } else if inside {
                        let src = rowBase + iw * c
                        for gi in 0..<g { copyFloats(dst + gi * kc + tap * cg, src + gi * cg, cg) }
                    } else {
                        for gi in 0..<g { (dst + gi * kc + tap * cg).update(repeating: 0, count: cg) }
                    }
                }
            }
            dst += ld
            owi += 1
            if owi == ow {
                owi = 0
                oh += 1
                if oh == outHeight { oh = 0; n += 1 }
            }
        }
    }

    /// The adjoint of `im2col` for rows `rows`: adds every column entry of those rows (row
    /// `rows.lowerBound` at `col`) into the dx pixel it was copied from (`dx` is image 0's first
    /// value), row by row in order. The caller owns (and has zeroed) the dx of the images the
    /// rows belong to.
    func col2imAdd(_ col: UnsafePointer<Float>, rows: Range<Int>, into dx: UnsafeMutablePointer<Float>) {
        if rows.isEmpty { return }
        let h = height, w = width, c = channels, ow = outWidth, op = outPixels
        let k = kernel, s = stride, p = padding, d = dilation, g = groups
        let cg = groupChannels, kc = groupColumns, ld = columns, kRun = k * c
        let imageFloats = inPixels * c
        var n = rows.lowerBound / op
        var oh = (rows.lowerBound - n * op) / ow
        var owi = rows.lowerBound - n * op - oh * ow
        var src = col
        for _ in rows {
            let image = dx + n * imageFloats
            let iw0 = owi * s - p
            let runInside = g == 1 && d == 1 && iw0 >= 0 && iw0 + k <= w
            for kh in 0..<k {
                let ih = oh * s - p + kh * d
                if ih < 0 || ih >= h { continue }
                let rowBase = image + ih * w * c
                if runInside {
                    addFloats(rowBase + iw0 * c, src + kh * kRun, kRun)
                    continue
                }
                for kw in 0..<k {
                    let iw = iw0 + kw * d
                    if iw < 0 || iw >= w { continue }
                    let tap = kh * k + kw
                    if g == 1 {
                        addFloats(rowBase + iw * c, src + tap * c, c)
                    } else {
                        let out = rowBase + iw * c
                        for gi in 0..<g { addFloats(out + gi * cg, src + gi * kc + tap * cg, cg) }
                    }
                }
            }
            src += ld
            owi += 1
            if owi == ow {
                owi = 0
                oh += 1
                if oh == outHeight { oh = 0; n += 1 }
            }
        }
    }
}

/// dst[0..<count] = src[0..<count] (non-overlapping).
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self)
        let b = UnsafeRawPointer(src + i + 4).loadUnaligned(as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: a, as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(dst + i + 4).storeBytes(of: b, as: SIMD4<Float>.self)
        i += 8
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// dst[0..<count] += src[0..<count] (non-overlapping).
@inline(__always)
func addFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self)
        let b = UnsafeRawPointer(src + i + 4).loadUnaligned(as: SIMD4<Float>.self)
        let da = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD4<Float>.self)
        let db = UnsafeRawPointer(dst + i + 4).loadUnaligned(as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: da + a, as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(dst + i + 4).storeBytes(of: db + b, as: SIMD4<Float>.self)
        i += 8
    }
    while i < count { dst[i] += src[i]; i += 1 }
}
