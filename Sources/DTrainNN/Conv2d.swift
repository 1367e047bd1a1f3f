import DTrainCore

/// A 2-D convolution over NHWC activations (torch's nn.Conv2d with a square kernel).
///
/// Forward is im2col + GEMM per group: the column matrix [rows, K·K·Cg] of group g times that
/// group's weight [Og, K·K·Cg]ᵀ writes output channels g·Og ..< (g+1)·Og of the NHWC output in
/// place (ldc = O). A 1×1, stride-1, unpadded convolution needs no im2col: the NHWC input is its
/// own column matrix.
///
/// The work is split across `Compute.threads` threads by dtrain itself, and every GEMM runs
/// single-threaded inside one thread's share. Each thread builds the column matrix one tile of
/// `tileRows` rows at a time in its own slice of the shared workspace, small enough to stay in its
/// core's cache while the GEMMs read it:
/// - forward splits the output rows of the batch evenly between threads;
/// - backward gives each thread whole images (fewer threads than images: one image each). Per tile
///   it recomputes the columns, adds dYᵀ · col to that thread's partial dW, overwrites the tile
///   with dcol = dY · W and scatters it into the dx of its own images. The partial dWs are added
///   into `weight.grad` in thread order.
/// Grouped convolutions with narrow groups (depthwise, or groups of 4 or 8 channels as in
/// ResNeXt's first stages) skip im2col and GEMM: `GroupedConvKernel` computes them directly, with
/// forward split by output rows, dx by input rows and dW by output rows into per-thread partials.
///
/// For a fixed thread count every result is deterministic.
public final class Conv2d: Layer {
    public let inChannels, outChannels, kernelSize, stride, padding, dilation, groups: Int
    /// torch shape [O, I/groups, K, K]; stored O×K×K×(I/groups).
    public let weight: Parameter
    public let bias: Parameter?

    /// Floats one thread's column tile aims at (rows × K·K·C): about half a core's L2. Read by `build`.
    var columnTileFloats = 1 << 17
    /// Fewest rows a tile has (unless the batch has fewer): thinner GEMMs re-pack the weights too
    /// often and update the whole dW per few rows. Read by `build`.
    var minTileRows = 64
    /// Whether narrow grouped convolutions use the direct kernel (nil: as the build context's
    /// `engine` says, `.directGroupedConvolution`), and the widest group (input or output channels)
    /// it takes: measured, GEMM is as fast from 8 channels per group and faster from 16. Tests
    /// override the choice, and widen the group, to exercise each path. Read by `build`.
    var useDirectKernel: Bool?
    var directKernelMaxGroupWidth = 8
    /// Whether 3×3, stride-1, padding-1 dense convolutions use Winograd (F(4×4, 3×3) or F(2×2, 3×3))
    /// (`WinogradKernel`) (nil: as the build context's `engine` says, `.winograd`), and the fewest
    /// input and output channels for which they do. Read by `build`.
    var useWinograd: Bool?
    var winogradMinChannels = 8
    /// Output tile side of the Winograd transform, 4 for F(4×4, 3×3) or 2 for F(2×2, 3×3); nil
    /// chooses by width: F(4×4) up to 128 channels, F(2×2) beyond, where F(4×4)'s 36 transformed
    /// weight matrices stop fitting in cache and measured no faster. Read by `build`.
    var winogradTile: Int?

    /// Fixed number of partial sums the bias gradient is reduced over (at most; fewer threads use
    /// fewer), combined in chunk order so the result is deterministic for a thread count.
    private static let reductionChunks = 16

    private var geometry: ConvGeometry!
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var workspace: Workspace!
    private var biasPartials: Storage?
    /// The input of the last forward: a view of memory its producer keeps until backward.
    private var lastInput: Tensor?
    /// Rows of one column tile for the batch built for (0 for the pointwise path).
    private(set) var tileRows = 0
    /// Threads the workspace was reserved for; passes use at most this many.
    private(set) var plannedThreads = 1
    /// Floats of one thread's column slice, and of one partial dW, in the workspace.
    private var columnSlice = 0
    private var partialSlice = 0
    /// The direct kernel for narrow groups, with its packed copy of the weights.
    private var direct: GroupedConvKernel?
    private var packedWeights: Storage?
    /// Winograd for 3×3 stride-1 convolutions, and its workspace slices: transformed
    /// weights, then one dU partial and one block scratch per thread.
    private var winograd: WinogradKernel?
    private var winogradWeightSlice = 0
    private var winogradScratchSlice = 0
    private var macs = 0

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = false) {
        precondition(inChannels > 0 && outChannels > 0, "Conv2d: channels must be positive")
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: groups (\(groups)) must divide in (\(inChannels)) and out (\(outChannels)) channels")
        precondition(kernelSize > 0 && stride > 0 && dilation > 0 && padding >= 0,
                     "Conv2d: kernel \(kernelSize), stride \(stride), dilation \(dilation), padding \(padding) out of range")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let fanIn = inChannels / groups * kernelSize * kernelSize
        weight = Parameter(torchShape: [outChannels, inChannels / groups, kernelSize, kernelSize], layout: .convOHWI,
                           role: .weight, initializer: .kaimingNormalFanOut(fanOut: outChannels * kernelSize * kernelSize))
        self.bias = bias ? Parameter(torchShape: [outChannels], role: .bias,
                                     initializer: .uniform(bound: 1 / Float(fanIn).squareRoot())) : nil
    }

    /// Whether the last build chose the direct grouped kernel.
    var usesDirectKernel: Bool { direct != nil }
    /// Whether the last build chose Winograd.
    var usesWinograd: Bool { winograd != nil }
    /// The output tile side of the Winograd transform the last build chose (nil without Winograd).
    var winogradOutputTile: Int? { winograd?.tile }

    /// True when the input is its own column matrix (1×1 kernel, stride 1, no padding).
    private var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == inChannels, "Conv2d: input has \(input.channels) channels, expected \(inChannels)")
        let geo = ConvGeometry(input: input, kernel: kernelSize, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
        precondition(geo.outHeight > 0 && geo.outWidth > 0,
                     "Conv2d: input \(input) is too small for kernel \(kernelSize), dilation \(dilation), padding \(padding)")
        geometry = geo
        let out = FeatureShape(height: geo.outHeight, width: geo.outWidth, channels: outChannels)
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        workspace = context.workspace
        plannedThreads = Compute.threads
        let directAllowed = useDirectKernel ?? context.engine.contains(.directGroupedConvolution)
        let winogradAllowed = useWinograd ?? context.engine.contains(.winograd)
        direct = directAllowed ? GroupedConvKernel(geo: geo, outChannels: outChannels, maxGroupWidth: directKernelMaxGroupWidth) : nil
        packedWeights = direct != nil ? Storage(count: weight.count) : nil
        winograd = direct == nil && winogradAllowed && min(inChannels, outChannels) >= winogradMinChannels
            ? WinogradKernel(geo: geo, outChannels: outChannels,
                             tile: winogradTile ?? (max(inChannels, outChannels) <= 128 ? 4 : 2), maxBatch: maxBatch, threads: plannedThreads,
                             blockFloats: columnTileFloats, minBlockTiles: max(1, minTileRows / 2))
            : nil
        if let winograd {
            tileRows = 0
            columnSlice = 0
            partialSlice = 0
            winogradWeightSlice = Conv2d.aligned(winograd.transformedWeightFloats)
            winogradScratchSlice = Conv2d.aligned(winograd.scratchFloats)
            context.workspace.reserve(winogradWorkspaceFloats(threads: plannedThreads))
        } else if let direct {
            tileRows = 0
            columnSlice = 0
            partialSlice = Conv2d.aligned(direct.weightCount)
            context.workspace.reserve(plannedThreads * partialSlice)
        } else if isPointwise {
            tileRows = 0
            columnSlice = 0
        } else {
            let rows = max(1, maxBatch * geo.outPixels)
            tileRows = max(1, min(rows, max(minTileRows, columnTileFloats / geo.columns)))
            columnSlice = Conv2d.aligned(tileRows * geo.columns)
        }
        if direct == nil && winograd == nil {
            partialSlice = Conv2d.aligned(weight.count)
            context.workspace.reserve(plannedThreads * columnSlice + (plannedThreads - 1) * partialSlice)
        }
        biasPartials = bias != nil ? Storage(count: Conv2d.reductionChunks * outChannels) : nil
        lastInput = nil
        macs = geo.outPixels * outChannels * geo.groupColumns
        return out
    }

    /// Rounds a float count up to a whole number of 64-byte lines, so workspace slices stay aligned.
    private static func aligned(_ floats: Int) -> Int { (floats + 15) & ~15 }

    /// Threads a pass uses: those in force, at most those the workspace was reserved for.
    private var passThreads: Int { max(1, min(Compute.threads, plannedThreads)) }

    /// Workspace floats of the Winograd passes: transformed weights, then per thread a dU
    /// partial and a block scratch.
    private func winogradWorkspaceFloats(threads: Int) -> Int {
        winogradWeightSlice + threads * (winogradWeightSlice + winogradScratchSlice)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let geo = geometry!
        precondition(x.shape.height == geo.height && x.shape.width == geo.width && x.shape.channels == geo.channels,
                     "Conv2d: input \(x.shape) differs from the \(geo.height)x\(geo.width)x\(geo.channels) built for")
        let y = output.tensor(batch: x.batch)
        lastInput = x
        let rows = y.rows
        if rows == 0 { return y }
        if let direct, let packed = packedWeights?.pointer {
            direct.packWeights(weight.value, into: packed)
            let b = bias.map { UnsafePointer($0.value!) }
            let px = UnsafePointer(x.data), py = y.data
            let outRows = x.batch * geo.outHeight
            parallelFor(outRows) { range in direct.forward(px, packed: packed, bias: b, py, rows: range) }
            return y
        }
        if let winograd {
            winogradConvolve(winograd, UnsafePointer(x.data), bias: bias.map { UnsafePointer($0.value!) },
                             into: y.data, batch: x.batch, dataGradient: false)
            return y
        }
        let o = outChannels, og = outChannels / groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = groups
        let w = UnsafePointer(weight.value!)
        let b = bias.map { UnsafePointer($0.value!) }
        let px = UnsafePointer(x.data), py = y.data
        let pointwise = isPointwise, tile = tileRows, slice = columnSlice
        let ws = pointwise ? nil : workspace.pointer(count: passThreads * columnSlice)
        let chunks = max(1, min(passThreads, rows / 16))

        BLAS.singleThreaded {
            parallelChunks(rows, chunks: chunks) { chunk, range in
                if pointwise {
                    let m0 = range.lowerBound
                    for g in 0..<groups {
                        BLAS.gemm(transB: true, m: range.count, n: og, k: cg,
                                  a: px + m0 * c + g * cg, lda: c, b: w + g * og * cg, ldb: cg,
                                  c: py + m0 * o + g * og, ldc: o)
                    }
                    if let b { Conv2d.addBias(b, to: py, rows: range, channels: o) }
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
                    if let b { Conv2d.addBias(b, to: py, rows: m0..<(m0 + r), channels: o) }
                    m0 += r
                }
            }
        }
        return y
    }

    @inline(__always)
    private static func addBias(_ b: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Range<Int>, channels o: Int) {
        for m in rows { addFloats(y + m * o, b, o) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = lastInput else { fatalError("Conv2d: backward without a forward") }
        let geo = geometry!
        precondition(dy.batch == x.batch && dy.shape == output.shape,
                     "Conv2d: dy \(dy.batch)x\(dy.shape) does not match the last output \(x.batch)x\(output.shape)")
        let o = outChannels, og = outChannels / groups, kc = geo.groupColumns, ld = geo.columns
        let c = geo.channels, cg = geo.groupChannels, groups = groups, op = geo.outPixels
        let w = UnsafePointer(weight.value!)
        let dw = weight.grad!
        let weightGrad = weight.trainable
        let dx = inputGradient?.tensor(batch: dy.batch)
        let pdx = dx?.data
        let pdy = UnsafePointer(dy.data), px = UnsafePointer(x.data)
        let rows = dy.rows

        if let bias, bias.trainable, let partials = biasPartials?.pointer, rows > 0 {
            let chunks = max(1, min(Compute.threads, Conv2d.reductionChunks, rows))
            parallelChunks(rows, chunks: chunks) { chunk, range in
                let acc = partials + chunk * o
                for i in 0..<o { acc[i] = 0 }
                for m in range { addFloats(acc, pdy + m * o, o) }
            }
            let db = bias.grad!
            for chunk in 0..<chunks {
                let acc = partials + chunk * o
                for i in 0..<o { db[i] += acc[i] }
            }
        }
        guard rows > 0, weightGrad || pdx != nil else { return dx ?? noGradient }
        if let direct, let packed = packedWeights?.pointer {
            directBackward(direct, packed: packed, x: px, dy: pdy, dx: pdx, batch: dy.batch)
            return dx ?? noGradient
        }
        if let winograd {
            if weightGrad {
                Profiler.measure(.convBackwardWeight) { winogradWeightGradient(winograd, x: px, dy: pdy, batch: dy.batch) }
            }
            if let pdx { winogradConvolve(winograd, pdy, bias: nil, into: pdx, batch: dy.batch, dataGradient: true) }
            return dx ?? noGradient
        }

        let pointwise = isPointwise, tile = tileRows, slice = columnSlice, pslice = partialSlice
        let threads = passThreads
        let ws = workspace.pointer(count: threads * columnSlice + (threads - 1) * partialSlice)
        let partials = ws + threads * slice
        // Pointwise: any split of the rows; otherwise whole images per thread, so each scatters
        // into dx that no other thread touches.
        let chunks = pointwise ? max(1, min(threads, rows / 16)) : min(threads, dy.batch)
        let units = pointwise ? rows : dy.batch
        let imageFloats = geo.inPixels * c

        // With the profiler on, each thread times its weight-gradient and data-gradient parts, and
        // the pass's wall time is split between the two kinds in that proportion.
        let timers = ConvPartTimers(enabled: Profiler.isEnabled, chunks: chunks)
        BLAS.singleThreaded {
            parallelChunks(units, chunks: chunks) { chunk, unitRange in
                // Thread 0 accumulates straight into the gradient; the others into zeroed partials.
                let target = chunk == 0 ? dw : partials + (chunk - 1) * pslice
                var beta: Float = chunk == 0 ? 1 : 0
                var clock = timers.start()
                if pointwise {
                    let m0 = unitRange.lowerBound
                    if weightGrad {
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
                    if weightGrad {
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
        if weightGrad && chunks > 1 {
            let count = weight.count
            Profiler.measure(.convBackwardWeight) {
                parallelFor(count, minChunk: 4096) { range in
                    for chunk in 1..<chunks {
                        let p = partials + (chunk - 1) * pslice
                        addFloats(dw + range.lowerBound, p + range.lowerBound, range.count)
                    }
                }
            }
        }
        return dx ?? noGradient
    }

    /// Forward (x → y) or backward-data (dy → dx) through Winograd: the weights are transformed,
    /// then each thread convolves its share of the tiles.
    private func winogradConvolve(_ winograd: WinogradKernel, _ input: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                  into output: UnsafeMutablePointer<Float>, batch: Int, dataGradient: Bool) {
        let threads = passThreads
        let ws = workspace.pointer(count: winogradWorkspaceFloats(threads: threads))
        let u = ws, scratch = ws + winogradWeightSlice + threads * winogradWeightSlice
        let w = UnsafePointer(weight.value!)
        parallelFor(outChannels) { range in winograd.transformWeights(w, into: u, outputs: range, dataGradient: dataGradient) }
        let tiles = batch * winograd.tilesPerImage
        let chunks = min(threads, tiles), slice = winogradScratchSlice
        BLAS.singleThreaded {
            parallelChunks(tiles, chunks: chunks) { chunk, range in
                winograd.convolve(input, u: u, bias: bias, into: output, tiles: range, dataGradient: dataGradient,
                                  scratch: scratch + chunk * slice)
            }
        }
    }

    /// weight.grad += dW through Winograd: each thread writes the transformed-domain gradient of a
    /// fixed share of the tiles to its own partial; the partials are summed in thread order and
    /// transformed back.
    private func winogradWeightGradient(_ winograd: WinogradKernel, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, batch: Int) {
        let threads = passThreads
        let ws = workspace.pointer(count: winogradWorkspaceFloats(threads: threads))
        let partials = ws + winogradWeightSlice, scratch = partials + threads * winogradWeightSlice
        let tiles = batch * winograd.tilesPerImage
        let chunks = min(threads, tiles), pslice = winogradWeightSlice, slice = winogradScratchSlice
        BLAS.singleThreaded {
            parallelChunks(tiles, chunks: chunks) { chunk, range in
                winograd.weightGradient(x, dy, tiles: range, into: partials + chunk * pslice, scratch: scratch + chunk * slice)
            }
        }
        let dw = weight.grad!
        parallelFor(outChannels) { range in
            winograd.addWeightGradient(partials: partials, count: chunks, stride: pslice, into: dw, outputs: range)
        }
    }

    private func directBackward(_ direct: GroupedConvKernel, packed: UnsafeMutablePointer<Float>,
                                x px: UnsafePointer<Float>, dy pdy: UnsafePointer<Float>,
                                dx pdx: UnsafeMutablePointer<Float>?, batch: Int) {
        let geo = geometry!
        let weightGrad = weight.trainable
        let w = UnsafePointer(weight.value!)
        direct.packWeights(w, into: packed)
        let outRows = batch * geo.outHeight, inRows = batch * geo.height
        let threads = passThreads
        let slice = partialSlice, count = direct.weightCount
        let partials = workspace.pointer(count: threads * slice)
        // dW: fixed chunks of output rows, one partial each, summed in chunk order. dx: any split.
        let chunks = min(threads, outRows)
        let timers = ConvPartTimers(enabled: Profiler.isEnabled, chunks: chunks)
        parallelChunks(outRows, chunks: chunks) { chunk, range in
            var clock = timers.start()
            if weightGrad {
                let partial = partials + chunk * slice
                partial.update(repeating: 0, count: count)
                direct.backwardWeight(px, pdy, partial: partial, rows: range)
                timers.lap(&clock, chunk: chunk, weight: true)
            }
            if let pdx {
                direct.backwardData(pdy, weight: w, packed: packed, pdx, rows: chunkRange(chunk, of: chunks, count: inRows))
                timers.lap(&clock, chunk: chunk, weight: false)
            }
        }
        timers.attributeWeightShare()
        if weightGrad {
            let dw = weight.grad!
            Profiler.measure(.convBackwardWeight) {
                parallelFor(count, minChunk: 4096) { range in
                    direct.addPartials(partials, count: chunks, stride: slice, into: dw, range: range)
                }
            }
        }
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        entries.append(StateEntry(name: qualified(prefix, "weight"), kind: .parameter(weight)))
        if let bias { entries.append(StateEntry(name: qualified(prefix, "bias"), kind: .parameter(bias))) }
    }

    public var macsPerSample: Int { macs }
}
