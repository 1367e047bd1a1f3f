import DTrainCore

/// A convolution as im2col + GEMM per group: the column matrix [rows, K·K·Cg] of group g times that
/// group's weight [Og, K·K·Cg]ᵀ writes output channels g·Og ..< (g+1)·Og of the NHWC output in
/// place (ldc = O). A 1×1, stride-1, unpadded convolution needs no im2col: the NHWC input is its
/// own column matrix.
///
/// Every GEMM runs single-threaded inside one thread's share. Each thread builds the column matrix
/// one tile of `tileRows` rows at a time in its own slice of the workspace, small enough to stay
/// in its core's cache while the GEMMs read it:
/// - forward splits the output rows of the batch evenly between threads;
/// - backward gives each thread whole images (fewer threads than images: one image each). Per tile
///   it recomputes the columns, adds dYᵀ · col to that thread's partial dW, overwrites the tile
///   with dcol = dY · W and scatters it into the dx of its own images. The partial dWs are added
///   into the weight gradient in thread order.
/// The pointwise case splits rows in any way, each thread's GEMMs reading the input in place.
///
/// With bf16 products (`LayerGEMM`), the GEMMs are `BF16GEMM`'s, which round x, the weight and dy
/// to bf16 as they pack them, each thread packing into its own slice after the partial dWs; the
/// pointwise products then go in blocks of rows so that the packing stays small. On the widened
/// kernels (`LayerGEMM.packsSharedOperand`) every group's weight is packed once per pass, its
/// columns split across threads, into a region after those slices, and the pointwise weight
/// gradient reads the layer's bf16 copy of x (`readsInputCopyInBackward`).
struct GEMMConvolution: ConvolutionAlgorithm {
    let geo: ConvGeometry
    let outChannels: Int
    /// True when the input is its own column matrix (1×1 kernel, stride 1, no padding).
    let pointwise: Bool
    /// Rows of one column tile (0 for the pointwise path).
    let tileRows: Int
    /// Floats of one thread's column slice, and of one partial dW, in the workspace.
    let columnSlice: Int
    let partialSlice: Int
    /// sgemm, or the bf16 kernels.
    let products: LayerGEMM

    /// - Parameters:
    ///   - columnTileFloats: floats one thread's column tile aims at (rows × K·K·C).
    ///   - minTileRows: fewest rows a tile has (unless the batch has fewer).
    ///   - bf16: the bf16 GEMM variant for bf16 precision (nil: sgemm).
    init(geo: ConvGeometry, outChannels: Int, maxBatch: Int, columnTileFloats: Int, minTileRows: Int,
         bf16: BF16GEMM.Variant? = nil) {
        self.geo = geo
        self.outChannels = outChannels
        pointwise = geo.kernel == 1 && geo.stride == 1 && geo.padding == 0
        if pointwise {
            tileRows = 0
            columnSlice = 0
        } else {
            let rows = max(1, maxBatch * geo.outPixels)
            tileRows = max(1, min(rows, max(minTileRows, columnTileFloats / geo.columns)))
            columnSlice = workspaceAligned(tileRows * geo.columns)
        }
        partialSlice = workspaceAligned(outChannels * geo.groupColumns)
        // The largest product of each kind: forward (rows × og × kc), weight gradient
        // (og × kc × rows), data gradient (rows × kc × og); pointwise rows come in blocks.
        let og = outChannels / geo.groups, kc = geo.groupColumns
        let blockRows = pointwise ? min(max(1, maxBatch * geo.outPixels), LayerGEMM.bf16RowBlock) : tileRows
        products = LayerGEMM(bf16: bf16, products: [(blockRows, og, kc), (og, kc, blockRows), (blockRows, kc, og)])
        // Every group's weight as forward (og × kc, transposed) and backward-data (kc × og) take it.
        packedWeightSlice = max(products.packedBFloats(n: og, k: kc), products.packedBFloats(n: kc, k: og))
        packedWeightFloats = geo.groups * packedWeightSlice
    }

    /// Floats of one group's weight packed once per pass (`LayerGEMM.packsSharedOperand`), and of
    /// all groups'; 0 otherwise.
    let packedWeightSlice: Int
    let packedWeightFloats: Int

    /// The packed weights' region, after the threads' slices.
    private func packedWeights(_ ws: UnsafeMutablePointer<Float>, threads: Int) -> UnsafeMutablePointer<Float> {
        ws + threads * (columnSlice + products.packFloats) + (threads - 1) * partialSlice
    }

    /// Packs every group's op(B) = the weight (og × kc, transposed for forward; kc × og for
    /// backward data) once, its panels of columns split across threads (groups, when there are
    /// as many as threads).
    private func packWeights(_ w: UnsafePointer<Float>, forward: Bool, into packed: UnsafeMutablePointer<Float>, threads: Int) {
        let og = outChannels / geo.groups, kc = geo.groupColumns, slice = packedWeightSlice, products = products
        let n = forward ? og : kc, k = forward ? kc : og, step = BF16GEMM.widenedPanelColumns
        let panels = (n + step - 1) / step, groups = geo.groups
        let byGroup = groups >= threads
        parallelChunks(byGroup ? groups : panels, chunks: max(1, min(threads, byGroup ? groups : panels))) { _, range in
            for g in byGroup ? range : 0..<groups {
                let columns = byGroup ? 0..<n : (range.lowerBound * step)..<min(n, range.upperBound * step)
                products.packB(transB: forward, n: n, k: k, b: w + g * og * kc, ldb: kc, into: packed + g * slice, columns: columns)
            }
        }
    }

    var multipliesInBF16: Bool { products.bf16 != nil }

    /// The widened kernels read a pointwise layer's bf16 copy of x for the weight gradient.
    var readsInputCopyInBackward: Bool { pointwise && products.packsSharedOperand }

    /// A column slice per thread, a partial dW for every thread but the first, and a bf16 packing
    /// slice per thread.
    func workspaceFloats(threads: Int) -> Int {
        threads * (columnSlice + products.packFloats) + (threads - 1) * partialSlice + packedWeightFloats
    }

    /// Thread `chunk`'s bf16 packing slice (nil for sgemm).
    private func packSlice(_ ws: UnsafeMutablePointer<Float>?, chunk: Int, threads: Int) -> UnsafeMutablePointer<Float>? {
        guard products.bf16 != nil, let ws else { return nil }
        return ws + threads * columnSlice + (threads - 1) * partialSlice + chunk * products.packFloats
    }

    func forward(_ px: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                 into py: UnsafeMutablePointer<Float>, batch: Int, workspace: Workspace, threads: Int) {
        let geo = geo
        let rows = batch * geo.outPixels
        let o = outChannels, og = outChannels / geo.groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = geo.groups
        let pointwise = pointwise, tile = tileRows, slice = columnSlice, products = products
        let ws = pointwise && !multipliesInBF16 ? nil : workspace.pointer(count: workspaceFloats(threads: threads))
        let chunks = max(1, min(threads, rows / 16))
        let packed = products.packsSharedOperand && rows > 0 ? packedWeights(ws!, threads: threads) : nil
        if let packed { packWeights(w, forward: true, into: packed, threads: threads) }
        let packedSlice = packedWeightSlice

        BLAS.singleThreaded {
            parallelChunks(rows, chunks: chunks) { chunk, range in
                let pack = packSlice(ws, chunk: chunk, threads: threads)
                if pointwise {
                    let block = products.rowBlock(range.count)
                    var m0 = range.lowerBound
                    while m0 < range.upperBound {
                        let r = min(block, range.upperBound - m0)
                        for g in 0..<groups {
                            if let packed {
                                products.gemm(m: r, n: og, k: cg, a: px + m0 * c + g * cg, lda: c, packedB: packed + g * packedSlice,
                                              c: py + m0 * o + g * og, ldc: o, pack: pack!)
                                continue
                            }
                            products.gemm(transB: true, m: r, n: og, k: cg,
                                          a: px + m0 * c + g * cg, lda: c, b: w + g * og * cg, ldb: cg,
                                          c: py + m0 * o + g * og, ldc: o, pack: pack)
                        }
                        m0 += r
                    }
                    if let b { GEMMConvolution.addBias(b, to: py, rows: range, channels: o) }
                    return
                }
                let col = ws! + chunk * slice
                var m0 = range.lowerBound
                while m0 < range.upperBound {
                    let r = min(tile, range.upperBound - m0)
                    geo.im2col(px, rows: m0..<(m0 + r), into: col)
                    for g in 0..<groups {
                        if let packed {
                            products.gemm(m: r, n: og, k: kc, a: col + g * kc, lda: ld, packedB: packed + g * packedSlice,
                                          c: py + m0 * o + g * og, ldc: o, pack: pack!)
                            continue
                        }
                        products.gemm(transB: true, m: r, n: og, k: kc,
                                      a: col + g * kc, lda: ld, b: w + g * og * kc, ldb: kc,
                                      c: py + m0 * o + g * og, ldc: o, pack: pack)
                    }
                    if let b { GEMMConvolution.addBias(b, to: py, rows: m0..<(m0 + r), channels: o) }
                    m0 += r
                }
            }
        }
    }

    @inline(__always)
    private static func addBias(_ b: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Range<Int>, channels o: Int) {
        for m in rows { addFloats(y + m * o, b, o) }
    }

    func backward(x px: UnsafePointer<Float>, xBF16: UnsafePointer<UInt16>?, dy pdy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                  weightGradient dw: UnsafeMutablePointer<Float>?, dx pdx: UnsafeMutablePointer<Float>?,
                  batch: Int, workspace: Workspace, threads: Int) {
        let geo = geo
        let o = outChannels, og = outChannels / geo.groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = geo.groups, op = geo.outPixels
        let rows = batch * op
        let pointwise = pointwise, tile = tileRows, slice = columnSlice, pslice = partialSlice, products = products
        let ws = workspace.pointer(count: workspaceFloats(threads: threads))
        let partials = ws + threads * slice
        // Pointwise: any split of the rows; otherwise whole images per thread, so each scatters
        // into dx that no other thread touches.
        let chunks = pointwise ? max(1, min(threads, rows / 16)) : min(threads, batch)
        let units = pointwise ? rows : batch
        let imageFloats = geo.inPixels * c
        let packed = products.packsSharedOperand && pdx != nil ? packedWeights(ws, threads: threads) : nil
        if let packed { packWeights(w, forward: false, into: packed, threads: threads) }
        let packedSlice = packedWeightSlice

        // With the profiler on, each thread times its weight-gradient and data-gradient parts, and
        // the pass's wall time is split between the two kinds in that proportion.
        let timers = ConvPartTimers(enabled: Profiler.isEnabled, chunks: chunks)
        BLAS.singleThreaded {
            parallelChunks(units, chunks: chunks) { chunk, unitRange in
                // Thread 0 accumulates straight into the gradient; the others into zeroed partials.
                let target = dw.map { chunk == 0 ? $0 : partials + (chunk - 1) * pslice }
                var beta: Float = chunk == 0 ? 1 : 0
                var clock = timers.start()
                let pack = packSlice(ws, chunk: chunk, threads: threads)
                if pointwise {
                    let block = products.rowBlock(unitRange.count)
                    if let target {
                        var m0 = unitRange.lowerBound
                        while m0 < unitRange.upperBound {
                            let r = min(block, unitRange.upperBound - m0)
                            for g in 0..<groups {
                                if let xBF16 {
                                    products.gemm(transA: true, m: og, n: cg, k: r, a: pdy + m0 * o + g * og, lda: o,
                                                  bBF16: xBF16 + m0 * c + g * cg, ldb: c, beta: beta,
                                                  c: target + g * og * cg, ldc: cg, pack: pack!)
                                    continue
                                }
                                products.gemm(transA: true, m: og, n: cg, k: r,
                                              a: pdy + m0 * o + g * og, lda: o, b: px + m0 * c + g * cg, ldb: c,
                                              beta: beta, c: target + g * og * cg, ldc: cg, pack: pack)
                            }
                            beta = 1
                            m0 += r
                        }
                        timers.lap(&clock, chunk: chunk, weight: true)
                    }
                    if let pdx {
                        var m0 = unitRange.lowerBound
                        while m0 < unitRange.upperBound {
                            let r = min(block, unitRange.upperBound - m0)
                            for g in 0..<groups {
                                if let packed {
                                    products.gemm(m: r, n: cg, k: og, a: pdy + m0 * o + g * og, lda: o,
                                                  packedB: packed + g * packedSlice, c: pdx + m0 * c + g * cg, ldc: c, pack: pack!)
                                    continue
                                }
                                products.gemm(m: r, n: cg, k: og,
                                              a: pdy + m0 * o + g * og, lda: o, b: w + g * og * cg, ldb: cg,
                                              c: pdx + m0 * c + g * cg, ldc: c, pack: pack)
                            }
                            m0 += r
                        }
                        timers.lap(&clock, chunk: chunk, weight: false)
                    }
                    return
                }
                let col = ws + chunk * slice
                let end = unitRange.upperBound * op
                var m0 = unitRange.lowerBound * op
                while m0 < end {
                    let r = min(tile, end - m0)
                    let dyTile = pdy + m0 * o
                    if let target {
                        geo.im2col(px, rows: m0..<(m0 + r), into: col)
                        for g in 0..<groups {
                            products.gemm(transA: true, m: og, n: kc, k: r,
                                          a: dyTile + g * og, lda: o, b: col + g * kc, ldb: ld,
                                          beta: beta, c: target + g * og * kc, ldc: kc, pack: pack)
                        }
                        beta = 1
                        timers.lap(&clock, chunk: chunk, weight: true)
                    }
                    if let pdx {
                        // Zero the dx of every image whose first row is in this tile, before any
                        // of its rows is scattered.
                        var n = (m0 + op - 1) / op
                        while n * op < m0 + r {
                            (pdx + n * imageFloats).update(repeating: 0, count: imageFloats)
                            n += 1
                        }
                        // The column gradient overwrites the columns (every group's block is written).
                        for g in 0..<groups {
                            if let packed {
                                products.gemm(m: r, n: kc, k: og, a: dyTile + g * og, lda: o, packedB: packed + g * packedSlice,
                                              c: col + g * kc, ldc: ld, pack: pack!)
                                continue
                            }
                            products.gemm(m: r, n: kc, k: og,
                                          a: dyTile + g * og, lda: o, b: w + g * og * kc, ldb: kc,
                                          c: col + g * kc, ldc: ld, pack: pack)
                        }
                        geo.col2imAdd(col, rows: m0..<(m0 + r), into: pdx)
                        timers.lap(&clock, chunk: chunk, weight: false)
                    }
                    m0 += r
                }
            }
        }
        timers.attributeWeightShare()
        if let dw, chunks > 1 {
            let count = outChannels * kc
            Profiler.measure(.convBackwardWeight) {
                parallelFor(count, minChunk: 4096) { range in
                    for chunk in 1..<chunks {
                        let p = partials + (chunk - 1) * pslice
                        addFloats(dw + range.lowerBound, p + range.lowerBound, range.count)
                    }
                }
            }
        }
    }
}
