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

    /// - Parameters:
    ///   - columnTileFloats: floats one thread's column tile aims at (rows × K·K·C).
    ///   - minTileRows: fewest rows a tile has (unless the batch has fewer).
    init(geo: ConvGeometry, outChannels: Int, maxBatch: Int, columnTileFloats: Int, minTileRows: Int) {
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
    }

    /// A column slice per thread, and a partial dW for every thread but the first.
    func workspaceFloats(threads: Int) -> Int { threads * columnSlice + (threads - 1) * partialSlice }

    func forward(_ px: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                 into py: UnsafeMutablePointer<Float>, batch: Int, workspace: Workspace, threads: Int) {
        let geo = geo
        let rows = batch * geo.outPixels
        let o = outChannels, og = outChannels / geo.groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = geo.groups
        let pointwise = pointwise, tile = tileRows, slice = columnSlice
        let ws = pointwise ? nil : workspace.pointer(count: threads * columnSlice)
        let chunks = max(1, min(threads, rows / 16))

        BLAS.singleThreaded {
            parallelChunks(rows, chunks: chunks) { chunk, range in
                if pointwise {
                    let m0 = range.lowerBound
                    for g in 0..<groups {
                        BLAS.gemm(transB: true, m: range.count, n: og, k: cg,
                                  a: px + m0 * c + g * cg, lda: c, b: w + g * og * cg, ldb: cg,
                                  c: py + m0 * o + g * og, ldc: o)
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
                        BLAS.gemm(transB: true, m: r, n: og, k: kc,
                                  a: col + g * kc, lda: ld, b: w + g * og * kc, ldb: kc,
                                  c: py + m0 * o + g * og, ldc: o)
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

    func backward(x px: UnsafePointer<Float>, dy pdy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                  weightGradient dw: UnsafeMutablePointer<Float>?, dx pdx: UnsafeMutablePointer<Float>?,
                  batch: Int, workspace: Workspace, threads: Int) {
        let geo = geo
        let o = outChannels, og = outChannels / geo.groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = geo.groups, op = geo.outPixels
        let rows = batch * op
        let pointwise = pointwise, tile = tileRows, slice = columnSlice, pslice = partialSlice
        let ws = workspace.pointer(count: workspaceFloats(threads: threads))
        let partials = ws + threads * slice
        // Pointwise: any split of the rows; otherwise whole images per thread, so each scatters
        // into dx that no other thread touches.
        let chunks = pointwise ? max(1, min(threads, rows / 16)) : min(threads, batch)
        let units = pointwise ? rows : batch
        let imageFloats = geo.inPixels * c

        // With the profiler on, each thread times its weight-gradient and data-gradient parts, and
        // the pass's wall time is split between the two kinds in that proportion.
        let timers = ConvPartTimers(enabled: Profiler.isEnabled, chunks: chunks)
        BLAS.singleThreaded {
            parallelChunks(units, chunks: chunks) { chunk, unitRange in
                // Thread 0 accumulates straight into the gradient; the others into zeroed partials.
                let target = dw.map { chunk == 0 ? $0 : partials + (chunk - 1) * pslice }
                var beta: Float = chunk == 0 ? 1 : 0
                var clock = timers.start()
                if pointwise {
                    let m0 = unitRange.lowerBound
                    if let target {
                        for g in 0..<groups {
                            BLAS.gemm(transA: true, m: og, n: cg, k: unitRange.count,
                                      a: pdy + m0 * o + g * og, lda: o, b: px + m0 * c + g * cg, ldb: c,
                                      beta: beta, c: target + g * og * cg, ldc: cg)
                        }
                        timers.lap(&clock, chunk: chunk, weight: true)
                    }
                    if let pdx {
                        for g in 0..<groups {
                            BLAS.gemm(m: unitRange.count, n: cg, k: og,
                                      a: pdy + m0 * o + g * og, lda: o, b: w + g * og * cg, ldb: cg,
                                      c: pdx + m0 * c + g * cg, ldc: c)
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
                            BLAS.gemm(transA: true, m: og, n: kc, k: r,
                                      a: dyTile + g * og, lda: o, b: col + g * kc, ldb: ld,
                                      beta: beta, c: target + g * og * kc, ldc: kc)
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
                            BLAS.gemm(m: r, n: kc, k: og,
                                      a: dyTile + g * og, lda: o, b: w + g * og * kc, ldb: kc,
                                      c: col + g * kc, ldc: ld)
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
