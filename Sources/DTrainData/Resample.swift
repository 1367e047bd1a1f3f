import DTrainCore

/// The resampling filter of a resize, torchvision's `interpolation` on PIL images: PIL's
/// antialiased `ImagingResample` with its bilinear (triangle, support 1) or bicubic (Keys cubic
/// with a = −0.5, support 2) filter.
public enum Interpolation: String, CaseIterable, Sendable {
    case bilinear
    case bicubic

    /// The filter's support (half width) in source pixels at scale 1.
    var support: Double {
        switch self {
        case .bilinear: return 1
        case .bicubic: return 2
        }
    }

    /// PIL's `bilinear_filter` and `bicubic_filter`.
    @inline(__always)
    func weight(_ x: Double) -> Double {
        let a = abs(x)
        switch self {
        case .bilinear:
            return a < 1 ? 1 - a : 0
        case .bicubic:
            let c = -0.5
            if a < 1 { return ((c + 2) * a - (c + 3)) * a * a + 1 }
            if a < 2 { return (((a - 5) * a + 8) * a - 4) * c }
            return 0
        }
    }
}

/// Where each output pixel of a transform comes from, per axis: a source window resampled to a
/// length, then cropped (and zero-padded) to the output size, then optionally mirrored.
///
/// Every geometric transform dtrain has (random-resized crop, resize + centre crop, padded random
/// crop, identity) is one plan, so the source is read once and each output float is computed once.
public struct ResamplePlan: Equatable, Sendable {
    /// One axis of the plan.
    ///
    /// The source window `sourceStart ..< sourceStart + sourceLength` is resampled (PIL's filter
    /// of the plan's `interpolation`) to `resizedLength` samples. Output sample `k` is resized sample `offset + k` when that lies
    /// in `valid` (and in `0 ..< resizedLength`), and zero padding otherwise.
    public struct Axis: Equatable, Sendable {
        public var sourceStart: Int
        public var sourceLength: Int
        public var resizedLength: Int
        public var offset: Int
        public var valid: Range<Int>

        public init(sourceStart: Int, sourceLength: Int, resizedLength: Int, offset: Int = 0, valid: Range<Int>? = nil) {
            precondition(sourceLength > 0 && resizedLength > 0, "resample axis needs positive lengths")
            self.sourceStart = sourceStart
            self.sourceLength = sourceLength
            self.resizedLength = resizedLength
            self.offset = offset
            self.valid = valid ?? 0..<resizedLength
        }

        /// The axis that copies `length` samples unchanged.
        public static func identity(_ length: Int) -> Axis {
            Axis(sourceStart: 0, sourceLength: length, resizedLength: length)
        }
    }

    /// Columns.
    public var x: Axis
    /// Rows.
    public var y: Axis
    /// Output size in pixels (the floats written are `outputWidth × outputHeight × 3`).
    public var outputWidth: Int
    public var outputHeight: Int
    /// Mirror the output left to right (after cropping, like torchvision's flip after the crop).
    public var flip: Bool
    /// The resampling filter of both axes.
    public var interpolation: Interpolation

    public init(x: Axis, y: Axis, outputWidth: Int, outputHeight: Int, flip: Bool = false,
                interpolation: Interpolation = .bilinear) {
        self.x = x
        self.y = y
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
        self.flip = flip
        self.interpolation = interpolation
    }
}

/// Per-thread scratch memory for resampling: filter taps, the 8-bit intermediate rows and one
/// output row of sums.
///
/// It grows to the largest image seen and is then reused, so steady-state resampling allocates
/// nothing. One scratch must not be used by two threads at once.
public final class ResampleScratch {
    let xStarts = GrowableBuffer<Int32>()
    let xCounts = GrowableBuffer<Int32>()
    let xWeights = GrowableBuffer<Int32>()
    let yStarts = GrowableBuffer<Int32>()
    let yCounts = GrowableBuffer<Int32>()
    let yWeights = GrowableBuffer<Int32>()
    let rows = GrowableBuffer<Int32>()
    let line = GrowableBuffer<Int32>()
    let sums = GrowableBuffer<Int32>()
    let gain = GrowableBuffer<Float>()
    let bias = GrowableBuffer<Float>()
    let offsets = GrowableBuffer<Int32>()
    /// The augmentations' uint8 buffers (`ImageTransform.augmentation`).
    public let augment = AugmentScratch()

    /// An empty scratch; it grows on first use.
    public init() {}

    /// Bytes currently held.
    public var bytes: Int {
        4 * (xStarts.capacity + xCounts.capacity + xWeights.capacity + yStarts.capacity + yCounts.capacity
             + yWeights.capacity + rows.capacity + line.capacity + sums.capacity + gain.capacity + bias.capacity
             + offsets.capacity)
    }
}

/// A heap buffer that only grows (contents are not kept when it does).
final class GrowableBuffer<T> {
    private(set) var pointer: UnsafeMutablePointer<T>?
    private(set) var capacity = 0

    func ensure(_ count: Int) -> UnsafeMutablePointer<T> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        capacity = max(count, capacity * 3 / 2, 16)
        let p = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        pointer = p
        return p
    }

    deinit { pointer?.deallocate() }
}

/// PIL's fixed-point precision for 8-bit images (`PRECISION_BITS`, 32 − 8 − 2): weights are
/// integers scaled by 2²², sums start at half of that, and `clip8` shifts back and clamps.
let resamplePrecisionBits: Int32 = 22

/// PIL's `clip8`: a fixed-point sum (rounding offset included) to 0...255.
@inline(__always)
func clip8(_ sum: Int32) -> Int32 {
    min(max(sum &>> resamplePrecisionBits, 0), 255)
}

/// Filter taps of one axis, computed as PIL's `precompute_coeffs` and `normalize_coeffs_8bpc`
/// do for a resize of the window: the filter's support is widened by the scale factor when
/// downscaling (antialiasing), taps are clipped to the window, normalised to sum 1 per output
/// sample in double precision, then rounded to fixed point (2²²). Zero taps at either end are
/// dropped. Output samples that are padding get no taps. Returns the taps per output sample (the
/// stride of `weights`); the weights after each sample's last tap, up to that stride, are zero.
@discardableResult
func computeTaps(_ axis: ResamplePlan.Axis, interpolation: Interpolation = .bilinear, outputCount: Int,
                 starts: GrowableBuffer<Int32>, counts: GrowableBuffer<Int32>, weights: GrowableBuffer<Int32>) -> Int {
    let scale = Double(axis.sourceLength) / Double(axis.resizedLength)
    let filterScale = max(scale, 1)
    let support = interpolation.support * filterScale
    let kernel = Int(support.rounded(.up)) * 2 + 1
    let st = starts.ensure(outputCount), ct = counts.ensure(outputCount)
    let wt = weights.ensure(outputCount * kernel)
    let inverse = 1 / filterScale
    let one = Double(1 << resamplePrecisionBits)
    let lo = max(axis.valid.lowerBound, 0), hi = min(axis.valid.upperBound, axis.resizedLength)
    wt.update(repeating: 0, count: outputCount * kernel)
    for k in 0..<outputCount {
        let index = axis.offset + k
        guard index >= lo && index < hi else { st[k] = 0; ct[k] = 0; continue }
        // Coordinates inside the window (PIL crops first, then resizes the crop).
        let center = (Double(index) + 0.5) * scale
        let xmin = max(Int(center - support + 0.5), 0)
        let xmax = min(Int(center + support + 0.5), axis.sourceLength)
        let n = max(0, xmax - xmin)
        var total = 0.0
        for i in 0..<n { total += interpolation.weight((Double(xmin + i) - center + 0.5) * inverse) }
        let w = wt + k * kernel
        for i in 0..<n {
            var v = interpolation.weight((Double(xmin + i) - center + 0.5) * inverse)
            if total != 0 { v /= total }
            w[i] = Int32(v < 0 ? -0.5 + v * one : 0.5 + v * one)
        }
        var first = 0, last = n
        while first < last && w[first] == 0 { first += 1 }
        while last > first && w[last - 1] == 0 { last -= 1 }
        if first > 0 {
            for i in first..<last { w[i - first] = w[i] }
            for i in (last - first)..<last { w[i] = 0 }
        }
        st[k] = Int32(axis.sourceStart + xmin + first)
        ct[k] = Int32(last - first)
    }
    return kernel
}

extension ResamplePlan {
    /// Resamples `image` by this plan and writes `outputHeight × outputWidth × 3` floats (HWC) to
    /// `destination`, each as `value × scale[c] + bias[c]` where `value` is the resized 8-bit
    /// pixel (0...255) — so with `scale = 1/(255·std)` and `bias = −mean/std` the result is
    /// torchvision's `Normalize(mean, std)(ToTensor(image))`. Padding pixels are value 0.
    ///
    /// The resize is PIL's `ImagingResample` for 8-bit images, bit for bit: horizontal pass
    /// first (over only the source rows the vertical taps need), rounded to 8 bits, then the
    /// vertical pass, rounded to 8 bits, both in PIL's fixed-point arithmetic. (PIL skips a pass
    /// whose axis keeps its size; such a pass has one tap of weight 1 here, which leaves 8-bit
    /// values unchanged.) The horizontal pass computes four output pixels at a time with
    /// independent accumulators (their tap loops run to the longest of the four; the zero weights
    /// past each one's own taps read zero padding at the end of the line buffer).
    public func execute(_ image: DecodedImage, scale: (Float, Float, Float), bias: (Float, Float, Float),
                        into destination: UnsafeMutablePointer<Float>, scratch: ResampleScratch) {
        precondition(x.sourceStart >= 0 && x.sourceStart + x.sourceLength <= image.width
                     && y.sourceStart >= 0 && y.sourceStart + y.sourceLength <= image.height,
                     "resample window outside the \(image.width)x\(image.height) image")
        let ow = outputWidth, oh = outputHeight
        let kx = computeTaps(x, interpolation: interpolation, outputCount: ow,
                             starts: scratch.xStarts, counts: scratch.xCounts, weights: scratch.xWeights)
        let ky = computeTaps(y, interpolation: interpolation, outputCount: oh,
                             starts: scratch.yStarts, counts: scratch.yCounts, weights: scratch.yWeights)
        let xs = scratch.xStarts.pointer!, xc = scratch.xCounts.pointer!, xw = scratch.xWeights.pointer!
        let ys = scratch.yStarts.pointer!, yc = scratch.yCounts.pointer!, yw = scratch.yWeights.pointer!
        let rowValues = ow * 3
        let half: Int32 = 1 << (resamplePrecisionBits - 1)

        // One output row of gains and biases (R, G, B repeated); a padding pixel is its bias.
        let gainRow = scratch.gain.ensure(rowValues), biasRow = scratch.bias.ensure(rowValues)
        for k in 0..<ow {
            gainRow[3 * k] = scale.0
            gainRow[3 * k + 1] = scale.1
            gainRow[3 * k + 2] = scale.2
            biasRow[3 * k] = bias.0
            biasRow[3 * k + 1] = bias.1
            biasRow[3 * k + 2] = bias.2
        }

        // Source rows the vertical pass reads.
        var rowLo = Int.max, rowHi = Int.min
        for k in 0..<oh where yc[k] > 0 {
            rowLo = min(rowLo, Int(ys[k]))
            rowHi = max(rowHi, Int(ys[k] + yc[k]))
        }
        if rowLo < rowHi {
            // Source columns the horizontal taps read.
            var colLo = Int.max, colHi = Int.min
            for k in 0..<ow where xc[k] > 0 {
                colLo = min(colLo, Int(xs[k]))
                colHi = max(colHi, Int(xs[k] + xc[k]))
            }
            // One value more than needed in the row buffer: pixels are written as SIMD4 (R, G, B and
            // the next pixel's R); each write's fourth lane is overwritten later.
            let rows = scratch.rows.ensure((rowHi - rowLo) * rowValues + 1)
            if colLo >= colHi {
                rows.update(repeating: 0, count: (rowHi - rowLo) * rowValues)
            } else {
                let lineValues = (colHi - colLo) * 3
                // Zero padding after the line: up to kx taps of 3 values, read as SIMD4.
                let padding = 3 * kx + 1
                let line = scratch.line.ensure(lineValues + padding)
                (line + lineValues).update(repeating: 0, count: padding)
                let width = image.width
                // Where each output pixel's taps start in the line (0 for padding pixels, whose
                // weights are all zero).
                let offsets = scratch.offsets.ensure(ow)
                for k in 0..<ow { offsets[k] = xc[k] > 0 ? Int32((Int(xs[k]) - colLo) * 3) : 0 }
                let start = SIMD4<Int32>(repeating: half)
                let groups = ow / 4
                @inline(__always) func round8(_ v: SIMD4<Int32>) -> SIMD4<Int32> {
                    (v &>> SIMD4(repeating: resamplePrecisionBits)).clamped(lowerBound: .zero, upperBound: SIMD4(repeating: 255))
                }
                image.pixels.withUnsafeBufferPointer { px in
                    for sy in rowLo..<rowHi {
                        let src = px.baseAddress! + (sy * width + colLo) * 3
                        for i in 0..<lineValues { line[i] = Int32(src[i]) }
                        let out = UnsafeMutableRawPointer(rows + (sy - rowLo) * rowValues)
                        let base = UnsafeRawPointer(line)
                        for g in 0..<groups {
                            let k = 4 * g
                            let n = Int(max(max(xc[k], xc[k + 1]), max(xc[k + 2], xc[k + 3])))
                            let p0 = base + 4 * Int(offsets[k]), p1 = base + 4 * Int(offsets[k + 1])
                            let p2 = base + 4 * Int(offsets[k + 2]), p3 = base + 4 * Int(offsets[k + 3])
                            let w0 = xw + k * kx, w1 = w0 + kx, w2 = w1 + kx, w3 = w2 + kx
                            var a0 = start, a1 = start, a2 = start, a3 = start
                            for t in 0..<n {
                                let o = 12 * t
                                a0 &+= w0[t] &* (p0 + o).loadUnaligned(as: SIMD4<Int32>.self)
                                a1 &+= w1[t] &* (p1 + o).loadUnaligned(as: SIMD4<Int32>.self)
                                a2 &+= w2[t] &* (p2 + o).loadUnaligned(as: SIMD4<Int32>.self)
                                a3 &+= w3[t] &* (p3 + o).loadUnaligned(as: SIMD4<Int32>.self)
                            }
                            // In order: each store's fourth lane is the next pixel's R, rewritten next.
                            out.storeBytes(of: round8(a0), toByteOffset: 12 * k, as: SIMD4<Int32>.self)
                            out.storeBytes(of: round8(a1), toByteOffset: 12 * k + 12, as: SIMD4<Int32>.self)
                            out.storeBytes(of: round8(a2), toByteOffset: 12 * k + 24, as: SIMD4<Int32>.self)
                            out.storeBytes(of: round8(a3), toByteOffset: 12 * k + 36, as: SIMD4<Int32>.self)
                        }
                        for k in (4 * groups)..<ow {
                            let p = base + 4 * Int(offsets[k])
                            let w = xw + k * kx
                            var a = start
                            for t in 0..<Int(xc[k]) { a &+= w[t] &* (p + 12 * t).loadUnaligned(as: SIMD4<Int32>.self) }
                            out.storeBytes(of: round8(a), toByteOffset: 12 * k, as: SIMD4<Int32>.self)
                        }
                    }
                }
            }
        }

        let rows = scratch.rows.pointer
        let sums = scratch.sums.ensure(rowValues)
        for k in 0..<oh {
            let d = destination + k * rowValues
            let n = Int(yc[k])
            if n == 0 {
                d.update(from: biasRow, count: rowValues)
            } else {
                let w = yw + k * ky
                let base = rows! + (Int(ys[k]) - rowLo) * rowValues
                let w0 = w[0]
                for i in 0..<rowValues { sums[i] = half &+ w0 &* base[i] }
                var t = 1
                // Two taps per sweep over the row.
                while t + 1 < n {
                    let wa = w[t], wb = w[t + 1], ra = base + t * rowValues, rb = ra + rowValues
                    for i in 0..<rowValues { sums[i] &+= wa &* ra[i] &+ wb &* rb[i] }
                    t += 2
                }
                if t < n {
                    let wa = w[t], ra = base + t * rowValues
                    for i in 0..<rowValues { sums[i] &+= wa &* ra[i] }
                }
                for i in 0..<rowValues { d[i] = Float(clip8(sums[i])) * gainRow[i] + biasRow[i] }
            }
            if flip {
                var a = 0, b = ow - 1
                while a < b {
                    let pa = d + 3 * a, pb = d + 3 * b
                    let r = pa[0], g = pa[1], bl = pa[2]
                    pa[0] = pb[0]; pa[1] = pb[1]; pa[2] = pb[2]
                    pb[0] = r; pb[1] = g; pb[2] = bl
                    a += 1; b -= 1
                }
            }
        }
    }
}
