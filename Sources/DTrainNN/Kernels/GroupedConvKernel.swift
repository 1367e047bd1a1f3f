import DTrainCore

/// Direct kernels for grouped convolutions whose groups are too narrow for GEMM to pay: depthwise
/// (one input and one output channel per group, as in MobileNet) and groups of a multiple of 4
/// input and output channels up to a maximum width (ResNeXt-50 32x4d's first stages: 32 groups of
/// 4 and 8).
///
/// The kernels work row by row and tap by tap: for kernel tap (kh, kw) the outputs of one row that
/// the tap reaches read one input row at a fixed column step, so the inner loop walks pixels with
/// the tap's weights in registers, vectorised across contiguous NHWC channels (a group's output
/// channels in forward, its input channels in backward-data; every channel for depthwise). Taps
/// outside the image are skipped through per-row tap tables and per-tap column ranges built once.
///
/// - forward: any range of output rows (n·OH + oh); each value is written once.
/// - backwardData: any range of input rows (n·H + ih); each dx value is gathered from the outputs
///   that read it and written once, so dx needs no zeroing and no thread owns anything.
/// - backwardWeight: adds one range of output rows' contribution to a partial dW (layout
///   `partialLayout`); callers sum the partials of fixed row ranges in a fixed order.
/// Sums run in a fixed order, so forward and dx do not depend on how rows are split.
struct GroupedConvKernel {
    let geo: ConvGeometry
    let outChannels: Int
    /// One input and one output channel per group.
    let depthwise: Bool
    private let tables: TapTables

    /// nil unless the convolution is depthwise or has groups of a multiple of 4 input and output
    /// channels, at most `maxGroupWidth` wide (wider groups are better served by GEMM).
    init?(geo: ConvGeometry, outChannels: Int, maxGroupWidth: Int) {
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
    }

    /// Floats of the packed weights (`packWeights`) and of a partial dW.
    var weightCount: Int { outChannels * geo.kernel * geo.kernel * geo.groupChannels }

    /// Packs the O×K×K×Cg weights for forward (and depthwise backward-data): depthwise as
    /// [tap][C]; grouped as [group][tap][i][Og], so a group's output channels are contiguous.
    func packWeights(_ w: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        let kk = geo.kernel * geo.kernel, c = geo.channels
        if depthwise {
            for ch in 0..<c { for tap in 0..<kk { packed[tap * c + ch] = w[ch * kk + tap] } }
            return
        }
        let g = geo.groups, cg = geo.groupChannels, og = outChannels / g
        for gi in 0..<g { for j in 0..<og { for tap in 0..<kk { for i in 0..<cg {
            packed[((gi * kk + tap) * cg + i) * og + j] = w[((gi * og + j) * kk + tap) * cg + i]
        } } } }
    }

    /// grad += Σ partials in order, each in `backwardWeight`'s layout ([tap][C] for depthwise,
    /// O×K×K×Cg otherwise), for weight elements `range` (of the O×K×K×Cg layout).
    func addPartials(_ partials: UnsafePointer<Float>, count: Int, stride: Int,
                     into grad: UnsafeMutablePointer<Float>, range: Range<Int>) {
        if depthwise {
            let kk = geo.kernel * geo.kernel, c = geo.channels
            for e in range {
                let ch = e / kk, tap = e - ch * kk
                var s = grad[e]
                for p in 0..<count { s += partials[p * stride + tap * c + ch] }
                grad[e] = s
            }
        } else {
            for p in 0..<count { addFloats(grad + range.lowerBound, partials + p * stride + range.lowerBound, range.count) }
        }
    }

    // MARK: forward and backward-data

    /// y rows `rows` (n·OH + oh) = conv(x) (+ bias). `packed` from `packWeights`.
    ///
    /// Each output row starts from the bias (or zero) and gets every valid tap's contribution in
    /// turn: for kernel tap (kh, kw), output columns `colRange[kw]` read input row ih at a fixed
    /// column step, so the inner loop walks pixels with the tap's weights held in registers.
    func forward(_ x: UnsafePointer<Float>, packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, kk = k * k, s = geo.stride, p = geo.padding, d = geo.dilation
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
                    depthwisePass(hi - lo, input, s * c, output, o, packed + tap * c, c)
                } else {
                    groupedPass(hi - lo, input, s * c, output, o, groups: g, inWidth: cg, outWidth: og,
                                matrix: packed + tap * cg * og, groupStride: kk * cg * og, rowStride: og)
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
    /// `w` is the O×K×K×Cg weight; `packed` from `packWeights` (depthwise reads it).
    ///
    /// Each dx row gathers from the dy rows that read it (through the per-row tap table), tap by
    /// tap in a fixed order, so the result does not depend on how rows are split.
    func backwardData(_ dy: UnsafePointer<Float>, weight wgt: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                      _ dx: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, kk = k * k, s = geo.stride, p = geo.padding, d = geo.dilation
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
                    depthwisePass(hi - lo, input, o, output, s * c, packed + tap * c, c)
                } else {
                    groupedPass(hi - lo, input, o, output, s * c, groups: g, inWidth: og, outWidth: cg,
                                matrix: wgt + tap * cg, groupStride: og * kk * cg, rowStride: kk * cg)
                }
            }
        }
    }

    /// For `count` pixels (input and output pointers advancing by their steps), and every group:
    /// out[g·outWidth + b] += Σ_a in[g·inWidth + a] · M_g[a][b], where M_g starts at
    /// matrix + g·groupStride with rows `rowStride` apart. inWidth and outWidth are multiples of 4.
    @inline(__always)
    private func groupedPass(_ count: Int, _ input: UnsafePointer<Float>, _ inStep: Int,
                             _ output: UnsafeMutablePointer<Float>, _ outStep: Int,
                             groups: Int, inWidth: Int, outWidth: Int,
                             matrix: UnsafePointer<Float>, groupStride: Int, rowStride: Int) {
        if outWidth % 8 == 0 {
            groupedPass(SIMD8<Float>.self, count, input, inStep, output, outStep, groups, inWidth, outWidth, matrix, groupStride, rowStride)
        } else {
            groupedPass(SIMD4<Float>.self, count, input, inStep, output, outStep, groups, inWidth, outWidth, matrix, groupStride, rowStride)
        }
    }

    private func groupedPass<V: SIMD>(_: V.Type, _ count: Int, _ input: UnsafePointer<Float>, _ inStep: Int,
                                      _ output: UnsafeMutablePointer<Float>, _ outStep: Int,
                                      _ groups: Int, _ inWidth: Int, _ outWidth: Int,
                                      _ matrix: UnsafePointer<Float>, _ groupStride: Int, _ rs: Int) where V.Scalar == Float {
        let vw = V.scalarCount
        for gi in 0..<groups {
            let m = matrix + gi * groupStride
            var b0 = 0
            while b0 < outWidth {
                var ip = input + gi * inWidth, op = output + gi * outWidth + b0
                if inWidth == 4 {
                    // The group's 4×vw block of weights stays in registers.
                    let w0 = load(m + b0, V.self), w1 = load(m + rs + b0, V.self)
                    let w2 = load(m + 2 * rs + b0, V.self), w3 = load(m + 3 * rs + b0, V.self)
                    for _ in 0..<count {
                        let xv = load(ip, SIMD4<Float>.self)
                        let sum = (V(repeating: xv[0]) * w0 + V(repeating: xv[1]) * w1)
                            + (V(repeating: xv[2]) * w2 + V(repeating: xv[3]) * w3)
                        store(load(op, V.self) + sum, op)
                        ip += inStep
                        op += outStep
                    }
                } else {
                    for _ in 0..<count {
                        var s0 = V(), s1 = V()
                        var a = 0, mp = m + b0
                        while a < inWidth {
                            let xv = load(ip + a, SIMD4<Float>.self)
                            s0 += V(repeating: xv[0]) * load(mp, V.self) + V(repeating: xv[1]) * load(mp + rs, V.self)
                            s1 += V(repeating: xv[2]) * load(mp + 2 * rs, V.self) + V(repeating: xv[3]) * load(mp + 3 * rs, V.self)
                            a += 4
                            mp += 4 * rs
                        }
                        store(load(op, V.self) + (s0 + s1), op)
                        ip += inStep
                        op += outStep
                    }
                }
                b0 += vw
            }
        }
    }

    /// For `count` pixels: out[ch] += in[ch] · wv[ch] for every channel ch < c.
    @inline(__always)
    private func depthwisePass(_ count: Int, _ input: UnsafePointer<Float>, _ inStep: Int,
                               _ output: UnsafeMutablePointer<Float>, _ outStep: Int,
                               _ wv: UnsafePointer<Float>, _ c: Int) {
        var c0 = 0
        while c0 + 16 <= c {
            let w0 = load(wv + c0, SIMD4<Float>.self), w1 = load(wv + c0 + 4, SIMD4<Float>.self)
            let w2 = load(wv + c0 + 8, SIMD4<Float>.self), w3 = load(wv + c0 + 12, SIMD4<Float>.self)
            var ip = input + c0, op = output + c0
            for _ in 0..<count {
                store(load(op, SIMD4<Float>.self) + load(ip, SIMD4<Float>.self) * w0, op)
                store(load(op + 4, SIMD4<Float>.self) + load(ip + 4, SIMD4<Float>.self) * w1, op + 4)
                store(load(op + 8, SIMD4<Float>.self) + load(ip + 8, SIMD4<Float>.self) * w2, op + 8)
                store(load(op + 12, SIMD4<Float>.self) + load(ip + 12, SIMD4<Float>.self) * w3, op + 12)
                ip += inStep
                op += outStep
            }
            c0 += 16
        }
        while c0 + 4 <= c {
            let w0 = load(wv + c0, SIMD4<Float>.self)
            var ip = input + c0, op = output + c0
            for _ in 0..<count {
                store(load(op, SIMD4<Float>.self) + load(ip, SIMD4<Float>.self) * w0, op)
                ip += inStep
                op += outStep
            }
            c0 += 4
        }
        while c0 < c {
            let w0 = wv[c0]
            var ip = input + c0, op = output + c0
            for _ in 0..<count {
                op[0] += ip[0] * w0
                ip += inStep
                op += outStep
            }
            c0 += 1
        }
    }

    // MARK: backward-weight

    /// partial += dW contribution of output rows `rows` (n·OH + oh): [tap][C] for depthwise,
    /// O×K×K×Cg otherwise.
    func backwardWeight(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                        partial: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if depthwise {
            depthwiseBackwardWeight(x, dy, partial, rows)
        } else if geo.groupChannels % 8 == 0 {
            groupedBackwardWeight(SIMD8<Float>.self, x, dy, partial, rows)
        } else {
            groupedBackwardWeight(SIMD4<Float>.self, x, dy, partial, rows)
        }
    }

    private func groupedBackwardWeight<V: SIMD>(_: V.Type, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                                _ partial: UnsafeMutablePointer<Float>, _ rows: Range<Int>) where V.Scalar == Float {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, kk = k * k, g = geo.groups, cg = geo.groupChannels, o = outChannels, og = o / g
        let s = geo.stride, p = geo.padding, d = geo.dilation
        let vw = V.scalarCount, jStride = kk * cg
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
                    let xBase = xRow + (lo * s - p + kw * d) * c, xStep = s * c
                    for gi in 0..<g {
                        var j0 = 0
                        while j0 < og {
                            let dyBase = dyRow + lo * o + gi * og + j0
                            var i0 = 0
                            while i0 < cg {
                                var a0 = V(), a1 = V(), a2 = V(), a3 = V()
                                var xp = xBase + gi * cg + i0, dp = dyBase
                                for _ in lo..<hi {
                                    let xv = load(xp, V.self)
                                    let dv = load(dp, SIMD4<Float>.self)
                                    a0 += V(repeating: dv[0]) * xv
                                    a1 += V(repeating: dv[1]) * xv
                                    a2 += V(repeating: dv[2]) * xv
                                    a3 += V(repeating: dv[3]) * xv
                                    xp += xStep
                                    dp += o
                                }
                                let out = partial + ((gi * og + j0) * kk + tap) * cg + i0
                                store(load(out, V.self) + a0, out)
                                store(load(out + jStride, V.self) + a1, out + jStride)
                                store(load(out + 2 * jStride, V.self) + a2, out + 2 * jStride)
                                store(load(out + 3 * jStride, V.self) + a3, out + 3 * jStride)
                                i0 += vw
                            }
                            j0 += 4
                        }
                    }
                }
            }
        }
    }

    private func depthwiseBackwardWeight(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                         _ partial: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
        let h = geo.height, w = geo.width, c = geo.channels, oh = geo.outHeight, ow = geo.outWidth
        let k = geo.kernel, s = geo.stride, p = geo.padding, d = geo.dilation
        let t = tables
        for row in rows {
            let n = row / oh, r = row - n * oh
            let image = x + n * h * w * c
            let dyRow = dy + row * ow * c
            let rowTaps = t.outRows + r * k * 2, rowCount = Int(t.outRowCount[r])
            for a in 0..<rowCount {
                let kh = Int(rowTaps[2 * a]), ih = Int(rowTaps[2 * a + 1])
                let xRow = image + ih * w * c
                for kw in 0..<k {
                    let lo = Int(t.colRange[2 * kw]), hi = Int(t.colRange[2 * kw + 1])
                    if lo >= hi { continue }
                    let out = partial + (kh * k + kw) * c
                    let xBase = xRow + (lo * s - p + kw * d) * c, xStep = s * c
                    let dyBase = dyRow + lo * c
                    var c0 = 0
                    while c0 + 16 <= c {
                        var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>(), a3 = SIMD4<Float>()
                        var xp = xBase + c0, dp = dyBase + c0
                        for _ in lo..<hi {
                            a0 += load(xp, SIMD4<Float>.self) * load(dp, SIMD4<Float>.self)
                            a1 += load(xp + 4, SIMD4<Float>.self) * load(dp + 4, SIMD4<Float>.self)
                            a2 += load(xp + 8, SIMD4<Float>.self) * load(dp + 8, SIMD4<Float>.self)
                            a3 += load(xp + 12, SIMD4<Float>.self) * load(dp + 12, SIMD4<Float>.self)
                            xp += xStep
                            dp += c
                        }
                        store(load(out + c0, SIMD4<Float>.self) + a0, out + c0)
                        store(load(out + c0 + 4, SIMD4<Float>.self) + a1, out + c0 + 4)
                        store(load(out + c0 + 8, SIMD4<Float>.self) + a2, out + c0 + 8)
                        store(load(out + c0 + 12, SIMD4<Float>.self) + a3, out + c0 + 12)
                        c0 += 16
                    }
                    while c0 + 4 <= c {
                        var a0 = SIMD4<Float>()
                        var xp = xBase + c0, dp = dyBase + c0
                        for _ in lo..<hi {
                            a0 += load(xp, SIMD4<Float>.self) * load(dp, SIMD4<Float>.self)
                            xp += xStep
                            dp += c
                        }
                        store(load(out + c0, SIMD4<Float>.self) + a0, out + c0)
                        c0 += 4
                    }
                    while c0 < c {
                        var a0: Float = 0
                        var xp = xBase + c0, dp = dyBase + c0
                        for _ in lo..<hi {
                            a0 += xp[0] * dp[0]
                            xp += xStep
                            dp += c
                        }
                        out[c0] += a0
                        c0 += 1
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

@inline(__always)
func load<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
func load<V: SIMD>(_ p: UnsafeMutablePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}
