import DTrainCore

/// Direct kernels for grouped convolutions whose groups are too narrow for GEMM to pay: depthwise
/// (one input and one output channel per group, as in MobileNet) and groups of a multiple of 4
/// input and output channels up to a maximum width (ResNeXt-50 32x4d's first stages: 32 groups of
/// 4 and 8).
///
/// The kernels work row by row and tap by tap: for kernel tap (kh, kw) the outputs of one row that
/// the tap reaches read one input row at a fixed column step, so the inner pass walks pixels with
/// the tap's weights in registers, vectorised across contiguous NHWC channels. Taps outside the
/// image are skipped through per-row tap tables and per-tap column ranges built once. The inner
/// passes are CDTrainKernels' (`GroupedConvPasses`), in the model's kernel set.
///
/// - forward: any range of output rows (n·OH + oh); each value is written once.
/// - backwardData: any range of input rows (n·H + ih); each dx value is gathered from the outputs
///   that read it and written once, so dx needs no zeroing and no thread owns anything.
/// - backwardWeight: adds one range of output rows' contribution to a partial dW (layout
///   [tap][Og][C]); callers sum the partials of fixed row ranges in a fixed order.
/// Sums run in a fixed order, so forward and dx do not depend on how rows are split, and every
/// kernel set gives the same bits.
struct GroupedConvKernel {
    let geo: ConvGeometry
    let outChannels: Int
    /// One input and one output channel per group.
    let depthwise: Bool
    private let tables: TapTables
    private let passes: GroupedConvPasses

    /// nil unless the convolution is depthwise or has groups of a multiple of 4 input and output
    /// channels, at most `maxGroupWidth` wide (wider groups are better served by GEMM).
    init?(geo: ConvGeometry, outChannels: Int, maxGroupWidth: Int, kernels: KernelSet = .best) {
        let g = geo.groups, cg = geo.groupChannels, og = outChannels / g
        guard g > 1 else { return nil }
        if cg == 1 && og == 1 {
            depthwise = true
        } else if cg % 4 == 0 && og % 4 == 0 && cg <= maxGroupWidth && og <= maxGroupWidth {
            depthwise = false
        } else {
            return nil
        }
        self.geo = geo
        self.outChannels = outChannels
        tables = TapTables(geo)
        passes = GroupedConvPasses(kernels: kernels)
    }

    /// Floats of the packed weights (`packWeights`) and of a partial dW.
    var weightCount: Int { outChannels * geo.kernel * geo.kernel * geo.groupChannels }

    /// Packs the O×K×K×Cg weights for forward as [tap][i][O] (a group's outputs contiguous after
    /// the other groups', as the outputs are) or for backward-data as [tap][j][C] (j < Og, a
    /// group's inputs contiguous, as dx is). Depthwise, the two layouts are the same, [tap][C].
    func packWeights(_ w: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>, forBackwardData: Bool) {
        let kk = geo.kernel * geo.kernel, c = geo.channels, o = outChannels
        let g = geo.groups, cg = geo.groupChannels, og = o / g
        for gi in 0..<g { for j in 0..<og { for tap in 0..<kk { for i in 0..<cg {
            let at = forBackwardData ? (tap * og + j) * c + gi * cg + i : (tap * cg + i) * o + gi * og + j
            packed[at] = w[((gi * og + j) * kk + tap) * cg + i]
        } } } }
    }

    /// grad[e] += Σ partials in order, each in `backwardWeight`'s layout [tap][Og][C], for weight
    /// elements e in `range` of the O×K×K×Cg layout.
    func addPartials(_ partials: UnsafePointer<Float>, count: Int, stride: Int,
                     into grad: UnsafeMutablePointer<Float>, range: Range<Int>) {
        let kk = geo.kernel * geo.kernel, c = geo.channels, cg = geo.groupChannels, og = outChannels / geo.groups
        for e in range {
            let oc = e / (kk * cg), rest = e - oc * kk * cg, tap = rest / cg, i = rest - tap * cg
            let gi = oc / og, j = oc - gi * og
            let at = (tap * og + j) * c + gi * cg + i
            var s = grad[e]
            for p in 0..<count { s += partials[p * stride + at] }
            grad[e] = s
        }
    }

    // MARK: forward and backward-data

    /// y rows `rows` (n·OH + oh) = conv(x) (+ bias). `packed` is `packWeights`' forward layout.
    ///
    /// Each output row starts from the bias (or zero) and gets every valid tap's contribution in
    /// turn: for kernel tap (kh, kw), output columns `colRange[kw]` read input row ih at a fixed
    /// column step.
    func forward(_ x: UnsafePointer<Float>, packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, s = geo.stride, p = geo.padding, d = geo.dilation
        let g = geo.groups, cg = geo.groupChannels, o = outChannels, og = o / g
        let t = tables
        for row in rows {
            let n = row / oh, r = row - n * oh
            let image = x + n * h * w * c
            let yRow = y + row * ow * o
            if let bias {
                for col in 0..<ow { copyFloats(yRow + col * o, bias, o) }
            } else {
                yRow.update(repeating: 0, count: ow * o)
            }
            forEachTapSpan(t.outRows + r * k * 2, count: Int(t.outRowCount[r])) { kh, ih, kw, lo, hi in
                let tap = kh * k + kw
                let input = image + ih * w * c + (lo * s - p + kw * d) * c, output = yRow + lo * o
                if depthwise {
                    passes.depthwise(hi - lo, input, s * c, output, o, weights: packed + tap * c, channels: c)
                } else {
                    passes.grouped(hi - lo, input, s * c, output, o, groups: g, inWidth: cg, outWidth: og,
                                   matrix: packed + tap * cg * o, stride: o)
                }
            }
        }
    }

    /// Walks one row's taps in blocks of output columns small enough that their outputs and
    /// inputs stay in L1 while every tap passes over them: `rowTaps` holds `count` pairs (kernel
    /// row, row on the other side: the input row in forward, the dy row in backward-data), and
    /// `body(kh, row, kw, lo, hi)` runs for each kernel column whose reach within the block,
    /// output columns lo..<hi, is not empty. The order is fixed: block, row tap, kernel column.
    @inline(__always)
    private func forEachTapSpan(_ rowTaps: UnsafePointer<Int32>, count: Int,
                                _ body: (_ kh: Int, _ row: Int, _ kw: Int, _ lo: Int, _ hi: Int) -> Void) {
        let k = geo.kernel, ow = geo.outWidth, colRange = tables.colRange, step = columnBlock
        var block = 0
        while block < ow {
            let blockEnd = min(ow, block + step)
            for a in 0..<count {
                let kh = Int(rowTaps[2 * a]), row = Int(rowTaps[2 * a + 1])
                for kw in 0..<k {
                    let lo = max(block, Int(colRange[2 * kw])), hi = min(blockEnd, Int(colRange[2 * kw + 1]))
                    if lo < hi { body(kh, row, kw, lo, hi) }
                }
            }
            block = blockEnd
        }
    }

    /// Output columns per block in forward (and dx columns' worth in backward-data): about 4 KB
    /// of outputs.
    private var columnBlock: Int { max(1, 1024 / max(outChannels, geo.channels)) }

    /// dx rows `rows` (n·H + ih) = the adjoint of forward applied to dy, written (not added).
    /// `packed` is `packWeights`' backward-data layout.
    ///
    /// Each dx row gathers from the dy rows that read it (through the per-row tap table), tap by
    /// tap in a fixed order, so the result does not depend on how rows are split.
    func backwardData(_ dy: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                      _ dx: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, s = geo.stride, p = geo.padding, d = geo.dilation
        let g = geo.groups, cg = geo.groupChannels, o = outChannels, og = o / g
        let t = tables
        for row in rows {
            let n = row / h, r = row - n * h
            let image = dy + n * oh * ow * o
            let dxRow = dx + row * w * c
            dxRow.update(repeating: 0, count: w * c)
            // Blocks of dy columns, as in forward.
            forEachTapSpan(t.inRows + r * k * 2, count: Int(t.inRowCount[r])) { kh, orow, kw, lo, hi in
                let tap = kh * k + kw
                let input = image + orow * ow * o + lo * o, output = dxRow + (lo * s - p + kw * d) * c
                if depthwise {
                    passes.depthwise(hi - lo, input, o, output, s * c, weights: packed + tap * c, channels: c)
                } else {
                    passes.grouped(hi - lo, input, o, output, s * c, groups: g, inWidth: og, outWidth: cg,
                                   matrix: packed + tap * og * c, stride: c)
                }
            }
        }
    }

    // MARK: backward-weight

    /// partial += dW contribution of output rows `rows` (n·OH + oh), in the layout [tap][Og][C]
    /// ([tap][C] for depthwise).
    func backwardWeight(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                        partial: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, g = geo.groups, cg = geo.groupChannels, o = outChannels, og = o / g
        let s = geo.stride, p = geo.padding, d = geo.dilation
        let t = tables
        for row in rows {
            let n = row / oh, r = row - n * oh
            let image = x + n * h * w * c
            let dyRow = dy + row * ow * o
            let rowTaps = t.outRows + r * k * 2, rowCount = Int(t.outRowCount[r])
            for a in 0..<rowCount {
                let kh = Int(rowTaps[2 * a]), ih = Int(rowTaps[2 * a + 1])
                let xRow = image + ih * w * c
                for kw in 0..<k {
                    let lo = Int(t.colRange[2 * kw]), hi = Int(t.colRange[2 * kw + 1])
                    if lo >= hi { continue }
                    let tap = kh * k + kw
                    let xBase = xRow + (lo * s - p + kw * d) * c, dyBase = dyRow + lo * o
                    if depthwise {
                        passes.depthwiseWeight(hi - lo, xBase, s * c, dyBase, o, partial: partial + tap * c, channels: c)
                    } else {
                        passes.groupedWeight(hi - lo, xBase, s * c, dyBase, o, groups: g, inWidth: cg, outWidth: og,
                                             partial: partial + tap * og * c, stride: c)
                    }
                }
            }
        }
    }
}

/// For every output row/column, the kernel taps that land inside the input (tap, input
/// coordinate); for every input row/column, the taps that read it (tap, output coordinate); and
/// per kernel column the range of output columns whose tap is inside. Entries are (Int32, Int32)
/// pairs, K per coordinate, with a count per coordinate.
final class TapTables {
    let outRows, outCols, inRows, inCols: UnsafeMutablePointer<Int32>
    let outRowCount, outColCount, inRowCount, inColCount: UnsafeMutablePointer<Int32>
    /// (lo, hi) per kw: output columns lo..<hi read an input column inside the image.
    let colRange: UnsafeMutablePointer<Int32>
    private let buffers: [ScratchBuffer<Int32>]

    init(_ geo: ConvGeometry) {
        let k = geo.kernel, s = geo.stride, p = geo.padding, d = geo.dilation
        func buffer(_ count: Int) -> ScratchBuffer<Int32> { ScratchBuffer(count: count, fill: 0) }
        let b = [buffer(geo.outHeight * k * 2), buffer(geo.outWidth * k * 2), buffer(geo.height * k * 2), buffer(geo.width * k * 2),
                 buffer(geo.outHeight), buffer(geo.outWidth), buffer(geo.height), buffer(geo.width), buffer(2 * k)]
        buffers = b
        (outRows, outCols, inRows, inCols) = (b[0].pointer, b[1].pointer, b[2].pointer, b[3].pointer)
        (outRowCount, outColCount, inRowCount, inColCount) = (b[4].pointer, b[5].pointer, b[6].pointer, b[7].pointer)
        colRange = b[8].pointer
        // Output coordinate o reads input o·s − p + tap·d.
        func fill(outSize: Int, inSize: Int, outTaps: UnsafeMutablePointer<Int32>, outCount: UnsafeMutablePointer<Int32>,
                  inTaps: UnsafeMutablePointer<Int32>, inCount: UnsafeMutablePointer<Int32>) {
            for o in 0..<outSize {
                for tap in 0..<k {
                    let i = o * s - p + tap * d
                    if i >= 0 && i < inSize {
                        let e = o * k + Int(outCount[o])
                        outTaps[2 * e] = Int32(tap); outTaps[2 * e + 1] = Int32(i)
                        outCount[o] += 1
                        let f = i * k + Int(inCount[i])
                        inTaps[2 * f] = Int32(tap); inTaps[2 * f + 1] = Int32(o)
                        inCount[i] += 1
                    }
                }
            }
        }
        fill(outSize: geo.outHeight, inSize: geo.height, outTaps: outRows, outCount: outRowCount, inTaps: inRows, inCount: inRowCount)
        fill(outSize: geo.outWidth, inSize: geo.width, outTaps: outCols, outCount: outColCount, inTaps: inCols, inCount: inColCount)
        for tap in 0..<k {
            var lo = geo.outWidth, hi = 0
            for o in 0..<geo.outWidth {
                let i = o * s - p + tap * d
                if i >= 0 && i < geo.width { lo = min(lo, o); hi = max(hi, o + 1) }
            }
            colRange[2 * tap] = Int32(lo); colRange[2 * tap + 1] = Int32(max(lo, hi))
        }
    }
}
