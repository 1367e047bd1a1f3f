import DTrainCore

/// Where each output pixel of a transform comes from, per axis: a source window resampled to a
/// length, then cropped (and zero-padded) to the output size, then optionally mirrored.
///
/// Every geometric transform dtrain has (random-resized crop, resize + centre crop, padded random
/// crop, identity) is one plan, so the source is read once and each output float is computed once.
public struct ResamplePlan: Equatable, Sendable {
    /// One axis of the plan.
    ///
    /// The source window `sourceStart ..< sourceStart + sourceLength` is resampled (PIL bilinear)
    /// to `resizedLength` samples. Output sample `k` is resized sample `offset + k` when that lies
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

    public init(x: Axis, y: Axis, outputWidth: Int, outputHeight: Int, flip: Bool = false) {
        self.x = x
        self.y = y
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
        self.flip = flip
    }
}

/// Per-thread scratch memory for resampling: filter taps and one intermediate buffer.
///
/// It grows to the largest image seen and is then reused, so steady-state resampling allocates
/// nothing. One scratch must not be used by two threads at once.
public final class ResampleScratch {
    let xStarts = GrowableBuffer<Int32>()
    let xCounts = GrowableBuffer<Int32>()
    let xWeights = GrowableBuffer<Float>()
    let yStarts = GrowableBuffer<Int32>()
    let yCounts = GrowableBuffer<Int32>()
    let yWeights = GrowableBuffer<Float>()
    let rows = GrowableBuffer<Float>()
    let line = GrowableBuffer<Float>()

    /// An empty scratch; it grows on first use.
    public init() {}

    /// Bytes currently held.
    public var bytes: Int {
        4 * (xStarts.capacity + xCounts.capacity + xWeights.capacity + yStarts.capacity
             + yCounts.capacity + yWeights.capacity + rows.capacity + line.capacity)
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

/// PIL's bilinear (triangle) filter.
@inline(__always)
private func triangle(_ x: Double) -> Double {
    let a = abs(x)
    return a < 1 ? 1 - a : 0
}

/// Filter taps of one axis, computed as PIL's `precompute_coeffs` does for a bilinear resize of
/// the window: the triangle is widened by the scale factor when downscaling (antialiasing), taps
/// are clipped to the window and renormalised. Zero taps at either end are dropped. Output samples
/// that are padding get no taps. Returns the taps per output sample (the stride of `weights`).
@discardableResult
func computeTaps(_ axis: ResamplePlan.Axis, outputCount: Int, starts: GrowableBuffer<Int32>,
                 counts: GrowableBuffer<Int32>, weights: GrowableBuffer<Float>) -> Int {
    let scale = Double(axis.sourceLength) / Double(axis.resizedLength)
    let filterScale = max(scale, 1)
    let support = filterScale // the bilinear support (1) widened by the scale
    let kernel = Int(support.rounded(.up)) * 2 + 1
    let st = starts.ensure(outputCount), ct = counts.ensure(outputCount)
    let wt = weights.ensure(outputCount * kernel)
    let inverse = 1 / filterScale
    let lo = max(axis.valid.lowerBound, 0), hi = min(axis.valid.upperBound, axis.resizedLength)
    for k in 0..<outputCount {
        let index = axis.offset + k
        guard index >= lo && index < hi else { st[k] = 0; ct[k] = 0; continue }
        // Coordinates inside the window (PIL crops first, then resizes the crop).
        let center = (Double(index) + 0.5) * scale
        let xmin = max(Int(center - support + 0.5), 0)
        let xmax = min(Int(center + support + 0.5), axis.sourceLength)
        let n = max(0, xmax - xmin)
        var total = 0.0
        for i in 0..<n { total += triangle((Double(xmin + i) - center + 0.5) * inverse) }
        let w = wt + k * kernel
        for i in 0..<n {
            let v = triangle((Double(xmin + i) - center + 0.5) * inverse)
            w[i] = total != 0 ? Float(v / total) : 0
        }
        var first = 0, last = n
        while first < last && w[first] == 0 { first += 1 }
        while last > first && w[last - 1] == 0 { last -= 1 }
        if first > 0 { for i in first..<last { w[i - first] = w[i] } }
        st[k] = Int32(axis.sourceStart + xmin + first)
        ct[k] = Int32(last - first)
    }
    return kernel
}

extension ResamplePlan {
    /// Resamples `image` by this plan and writes `outputHeight × outputWidth × 3` floats (HWC) to
    /// `destination`, each as `value × scale[c] + bias[c]` where `value` is in 0...255 — so with
    /// `scale = 1/(255·std)` and `bias = −mean/std` the result is torchvision's
    /// `Normalize(mean, std)(ToTensor(image))`. Padding pixels are value 0.
    ///
    /// Horizontal pass first (over only the source rows the vertical taps need), then vertical, as
    /// PIL does; intermediate values stay in float (PIL rounds them to 8 bits).
    public func execute(_ image: DecodedImage, scale: (Float, Float, Float), bias: (Float, Float, Float),
                        into destination: UnsafeMutablePointer<Float>, scratch: ResampleScratch) {
        precondition(x.sourceStart >= 0 && x.sourceStart + x.sourceLength <= image.width
                     && y.sourceStart >= 0 && y.sourceStart + y.sourceLength <= image.height,
                     "resample window outside the \(image.width)x\(image.height) image")
        let ow = outputWidth, oh = outputHeight
        let kx = computeTaps(x, outputCount: ow, starts: scratch.xStarts, counts: scratch.xCounts, weights: scratch.xWeights)
        let ky = computeTaps(y, outputCount: oh, starts: scratch.yStarts, counts: scratch.yCounts, weights: scratch.yWeights)
        let xs = scratch.xStarts.pointer!, xc = scratch.xCounts.pointer!, xw = scratch.xWeights.pointer!
        let ys = scratch.yStarts.pointer!, yc = scratch.yCounts.pointer!, yw = scratch.yWeights.pointer!

        // Source rows the vertical pass reads.
        var rowLo = Int.max, rowHi = Int.min
        for k in 0..<oh where yc[k] > 0 {
            rowLo = min(rowLo, Int(ys[k]))
            rowHi = max(rowHi, Int(ys[k] + yc[k]))
        }
        let rowFloats = ow * 3
        if rowLo < rowHi {
            // Source columns the horizontal taps read.
            var colLo = Int.max, colHi = Int.min
            for k in 0..<ow where xc[k] > 0 {
                colLo = min(colLo, Int(xs[k]))
                colHi = max(colHi, Int(xs[k] + xc[k]))
            }
            // One float more than needed in both buffers: pixels are read and written as SIMD4
            // (R, G, B and the next pixel's R); each write's fourth lane is overwritten later.
            let rows = scratch.rows.ensure((rowHi - rowLo) * rowFloats + 1)
            if colLo >= colHi {
                rows.update(repeating: 0, count: (rowHi - rowLo) * rowFloats)
            } else {
                let lineFloats = (colHi - colLo) * 3
                let line = scratch.line.ensure(lineFloats + 1)
                line[lineFloats] = 0
                let width = image.width
                image.pixels.withUnsafeBufferPointer { px in
                    for sy in rowLo..<rowHi {
                        let src = px.baseAddress! + (sy * width + colLo) * 3
                        for i in 0..<lineFloats { line[i] = Float(src[i]) }
                        let out = rows + (sy - rowLo) * rowFloats
                        for k in 0..<ow {
                            let n = Int(xc[k])
                            var acc = SIMD4<Float>()
                            if n > 0 {
                                var p = UnsafeRawPointer(line + (Int(xs[k]) - colLo) * 3)
                                let w = xw + k * kx
                                for t in 0..<n {
                                    acc += w[t] * p.loadUnaligned(as: SIMD4<Float>.self)
                                    p += 12
                                }
                            }
                            UnsafeMutableRawPointer(out + 3 * k).storeBytes(of: acc, as: SIMD4<Float>.self)
                        }
                    }
                }
            }
        }

        let rows = scratch.rows.pointer
        for k in 0..<oh {
            let d = destination + k * rowFloats
            let n = Int(yc[k])
            if n == 0 {
                d.update(repeating: 0, count: rowFloats)
            } else {
                let w = yw + k * ky
                let base = rows! + (Int(ys[k]) - rowLo) * rowFloats
                let w0 = w[0]
                for i in 0..<rowFloats { d[i] = w0 * base[i] }
                if n > 1 {
                    for t in 1..<n {
                        let wt = w[t], r = base + t * rowFloats
                        for i in 0..<rowFloats { d[i] += wt * r[i] }
                    }
                }
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
            var p = d
            for _ in 0..<ow {
                p[0] = p[0] * scale.0 + bias.0
                p[1] = p[1] * scale.1 + bias.1
                p[2] = p[2] * scale.2 + bias.2
                p += 3
            }
        }
    }
}
