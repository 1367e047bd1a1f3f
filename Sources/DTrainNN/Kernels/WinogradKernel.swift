import CDTrainKernels
import DTrainCore

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) (`tile` 2 or 4; the latter's transforms are in
/// WinogradF4.swift) for dense 3×3 convolutions with stride 1, padding 1 and no dilation, over
/// NHWC activations: the output has the input's height and width. Described here for F(2×2).
///
/// The output is cut into 2×2 tiles, `tilesHigh` × `tilesWide` per image, numbered across the
/// batch image-major; each tile reads a 4×4 input patch d (zero outside the image). With the
/// transforms of Lavin & Gray (2015):
/// - input  V = Bᵀ d B per tile and input channel (16 values, one per position ξ);
/// - weight U = G g Gᵀ per (output, input) channel pair;
/// - per ξ one GEMM over a block of tiles: M[ξ] (tiles × O) = V[ξ] (tiles × C) · U[ξ]ᵀ;
/// - output Y = Aᵀ M A per tile and output channel (the 2×2 outputs).
/// A tile costs 16 multiply-adds per channel pair where direct convolution costs 36: 2.25× fewer,
/// paid for with the transforms, which are passes over memory vectorised across NHWC channels.
///
/// Backward-data is the same convolution of dy with the weights flipped and transposed. Flipping
/// g in both axes swaps rows 0 and 3 of G g Gᵀ and columns 0 and 3 (G·J = P·G for the reversal J
/// and the swap P), so its U is the forward's with ξ's 0 and 3 indices swapped and each matrix
/// transposed: `transformWeights` writes either.
///
/// Backward-weight follows the forward's algebra exactly: dM = A dY Aᵀ per tile (dY its 2×2
/// output gradient, zero outside the image), dU[ξ] (O × C) = Σ_tiles dM[ξ]ᵀ V[ξ], and
/// dW = Gᵀ dU G per channel pair.
///
/// Work is split by callers into ranges of tiles. A range is processed in blocks of `blockTiles`
/// tiles whose transformed inputs and GEMM outputs (`scratchFloats`) stay in cache between the
/// transforms and the GEMMs. The GEMMs of few channels run on `SmallGEMM`'s register-blocked
/// kernels, wider ones on BLAS, single-threaded in the caller's thread.
///
/// The input, output and output-gradient transforms of tensors with whole eight-lane channel
/// blocks run as CDTrainKernels' C transforms (`transforms`: the kernel set's table's winograd2, or
/// winograd4 for F(4×4)); the Swift transforms here (`…2Portable`) define them bit for bit and run
/// the other channel counts.
struct WinogradKernel {
    /// Output tile side m: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3) (`WinogradF4.swift`).
    let tile: Int
    /// Values per transformed tile: (m + 2)², one per position ξ.
    let positions: Int

    let height, width, inChannels, outChannels: Int
    let tilesHigh, tilesWide: Int
    /// Tiles transformed and multiplied together.
    let blockTiles: Int
    /// The variants of the small GEMMs.
    let kernels: KernelSet
    /// Whether the input and output-gradient transforms round what they read to bf16 (a bf16
    /// convolution's x and dy, rounded where they are read rather than in passes of their own).
    /// Only the C transforms do: both channel counts in whole eight-lane blocks.
    let roundsToBF16: Bool

    var tilesPerImage: Int { tilesHigh * tilesWide }
    /// The C transforms of this tile size in the kernel set's variant (for channel counts that
    /// `transformsInC`).
    var transforms: dtrain_winograd_transforms { tile == 4 ? kernels.table.winograd4 : kernels.table.winograd2 }
    /// Floats of the transformed weights U: 16·O·C (also the size of a dU).
    var transformedWeightFloats: Int { positions * outChannels * inChannels }
    /// Floats one thread needs for a block: its transformed inputs and GEMM outputs, 16 (or 36)
    /// planes of T·C and T·O floats, each padded by `planeStride`.
    var scratchFloats: Int {
        positions * (Self.planeStride(tiles: blockTiles, channels: inChannels) +
                     Self.planeStride(tiles: blockTiles, channels: outChannels))
    }

    /// Floats from one position's tiles × channels matrix of a block to the next's: the matrix's
    /// size rounded up to whole 64-byte lines and to an odd number of them. The transforms write
    /// and read all positions of a tile at once, 16 or 36 streams this far apart; at a power-of-two
    /// distance (32 tiles × 64 channels: 8 KiB) they all fall in the same few sets of the
    /// first-level cache, and the F(4×4) input transform ran 4× slower (measured on one core,
    /// 48 against 199 ns per tile and eight channels).
    static func planeStride(tiles: Int, channels: Int) -> Int {
        let lines = (tiles * channels + 15) / 16
        return (lines | 1) * 16
    }

    /// Whether a convolution of this geometry is one the kernel computes.
    static func applies(to geo: ConvGeometry) -> Bool {
        geo.kernel == 3 && geo.stride == 1 && geo.padding == 1 && geo.dilation == 1 && geo.groups == 1
    }

    /// `blockFloats`: about what one thread's block may occupy; blocks have at least `minBlockTiles`
    /// tiles (GEMMs thinner than that re-pack U too often) and at most what a thread gets of
    /// `maxBatch` images.
    init?(geo: ConvGeometry, outChannels: Int, tile: Int = 2, maxBatch: Int, threads: Int, blockFloats: Int,
          minBlockTiles: Int, kernels: KernelSet = .best, roundingToBF16: Bool = false) {
        guard Self.applies(to: geo), tile == 2 || tile == 4 else { return nil }
        self.tile = tile
        self.kernels = kernels
        roundsToBF16 = roundingToBF16 && Self.transformsInC(channels: geo.channels) &&
            Self.transformsInC(channels: outChannels)
        positions = (tile + 2) * (tile + 2)
        height = geo.height
        width = geo.width
        inChannels = geo.channels
        self.outChannels = outChannels
        tilesHigh = (geo.height + tile - 1) / tile
        tilesWide = (geo.width + tile - 1) / tile
        let perThread = max(1, (maxBatch * tilesHigh * tilesWide + threads - 1) / max(1, threads))
        let fitting = blockFloats / (positions * (geo.channels + outChannels))
        blockTiles = max(1, min(perThread, max(minBlockTiles, fitting)))
    }

    // MARK: - Passes over a range of tiles (one thread's share)

    /// Forward (or, with `dataGradient`, backward-data) over `tiles`: `input` has `inChannels`
    /// channels (`outChannels` for backward-data), `output` the other count; `u` is the
    /// weights `transformWeights` wrote for the same pass. Every output value of the range's tiles
    /// is written once.
    func convolve(_ input: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                  into output: UnsafeMutablePointer<Float>, tiles: Range<Int>, dataGradient: Bool,
                  scratch: UnsafeMutablePointer<Float>) {
        let ci = dataGradient ? outChannels : inChannels, co = dataGradient ? inChannels : outChannels
        let oc = outChannels * inChannels
        let small = SmallGEMM.appliesToProduct(columns: co, depth: ci)
        forEachBlock(of: tiles) { block in
            let count = block.count
            let vPlane = Self.planeStride(tiles: count, channels: ci), mPlane = Self.planeStride(tiles: count, channels: co)
            let v = scratch, m = scratch + positions * Self.planeStride(tiles: blockTiles, channels: ci)
            transformInput(input, channels: ci, tiles: block, into: v)
            for xi in 0..<positions {
                // M[ξ] (tiles × co) = V[ξ] (tiles × ci) · U[ξ] (ci × co).
                let a = v + xi * vPlane, b = u + xi * oc, c = m + xi * mPlane
                if small {
                    SmallGEMM.multiply(kernels, rows: count, n: co, k: ci, a: a, lda: ci, b: b, ldb: co, c: c, ldc: co)
                } else {
                    BLAS.gemm(m: count, n: co, k: ci, a: a, lda: ci, b: b, ldb: co, c: c, ldc: co)
                }
            }
            transformOutput(m, channels: co, tiles: block, bias: bias, into: output)
        }
    }

    /// A tensor a transform reads: floats, or a layer's bf16 copy of them (only where the C
    /// transforms run, `roundsToBF16`).
    enum Operand {
        case float32(UnsafePointer<Float>)
        case bf16(UnsafePointer<UInt16>)
    }

    /// Writes the weight gradient of `tiles` in the transformed domain to `partial` (16·O·C,
    /// [ξ][O][C]), overwriting it; `tiles` must not be empty.
    func weightGradient(_ x: Operand, _ dy: UnsafePointer<Float>, tiles: Range<Int>,
                        into partial: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let c = inChannels, o = outChannels
        let small = SmallGEMM.appliesToTransposedProduct(m: o, n: c)
        var beta: Float = 0
        forEachBlock(of: tiles) { block in
            let count = block.count
            let vPlane = Self.planeStride(tiles: count, channels: c), mPlane = Self.planeStride(tiles: count, channels: o)
            let v = scratch, dm = scratch + positions * Self.planeStride(tiles: blockTiles, channels: c)
            switch x {
            case .float32(let x): transformInput(x, channels: c, tiles: block, into: v)
            case .bf16(let x): transformInput(bf16: x, tiles: block, into: v)
            }
            transformOutputGradient(dy, tiles: block, into: dm)
            for xi in 0..<positions {
                // dU[ξ] (O × C) += dM[ξ]ᵀ (O × tiles) · V[ξ] (tiles × C).
                let a = dm + xi * mPlane, b = v + xi * vPlane, du = partial + xi * o * c
                if small {
                    SmallGEMM.multiplyTransposed(kernels, m: o, n: c, k: count, a: a, lda: o, b: b, ldb: c, c: du, ldc: c,
                                                 accumulate: beta != 0)
                } else {
                    BLAS.gemm(transA: true, m: o, n: c, k: count, a: a, lda: o, b: b, ldb: c, beta: beta, c: du, ldc: c)
                }
            }
            beta = 1
        }
    }

    /// Calls `body(local, image, row, column)` for each tile of `tiles`: its index within the
    /// range, its image, and the output pixel at its top-left corner.
    @inline(__always)
    func forEachTile(_ tiles: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        let tw = tilesWide, tpi = tilesPerImage
        for t in tiles {
            let n = t / tpi, r = t - n * tpi, ty = r / tw, tx = r - ty * tw
            body(t - tiles.lowerBound, n, ty * tile, tx * tile)
        }
    }

    /// Calls `body` on consecutive blocks of at most `blockTiles` tiles covering `tiles`.
    @inline(__always)
    private func forEachBlock(of tiles: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = tiles.lowerBound
        while start < tiles.upperBound {
            let end = min(start + blockTiles, tiles.upperBound)
            body(start..<end)
            start = end
        }
    }

    /// ξ with both of its indices' 0 and 3 swapped: U of the flipped kernel.
    @inline(__always)
    static func flipped(_ xi: Int) -> Int {
        let i = xi >> 2, j = xi & 3
        let fi = i == 0 ? 3 : (i == 3 ? 0 : i), fj = j == 0 ? 3 : (j == 3 ? 0 : j)
        return fi * 4 + fj
    }

    // MARK: - Transforms

    /// U = G g Gᵀ for output channels `outputs` of the O×3×3×C weights `w`, into `u`: for the
    /// forward [ξ][C][O]; for backward-data (`dataGradient`), the flipped kernel's [ξ'][O][C].
    func transformWeights(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, outputs: Range<Int>,
                          dataGradient: Bool) {
        if tile == 4 { return transformWeights4(w, into: u, outputs: outputs, dataGradient: dataGradient) }
        let c = inChannels, o = outChannels, plane = o * c
        forEachWeightBlock(outputs, inChannels: c) { oi, ch, lanes in
            let g = w + oi * 9 * c
            do {
                @inline(__always) func tap(_ i: Int, _ j: Int) -> Float8 { load8(g + (i * 3 + j) * c + ch, count: lanes) }
                // Columns of G g (4×3), then rows of (G g) Gᵀ.
                let c0 = Self.weightRow(tap(0, 0), tap(1, 0), tap(2, 0))
                let c1 = Self.weightRow(tap(0, 1), tap(1, 1), tap(2, 1))
                let c2 = Self.weightRow(tap(0, 2), tap(1, 2), tap(2, 2))
                @inline(__always) func store(_ xi: Int, _ value: Float8) {
                    if dataGradient {
                        store8(value, u + Self.flipped(xi) * plane + oi * c + ch, count: lanes)
                    } else {
                        let at = u + xi * plane + ch * o + oi
                        for l in 0..<lanes { at[l * o] = value[l] }
                    }
                }
                @inline(__always) func put(_ i: Int, _ r: (Float8, Float8, Float8, Float8)) {
                    store(i * 4, r.0)
                    store(i * 4 + 1, r.1)
                    store(i * 4 + 2, r.2)
                    store(i * 4 + 3, r.3)
                }
                put(0, Self.weightRow(c0.0, c1.0, c2.0))
                put(1, Self.weightRow(c0.1, c1.1, c2.1))
                put(2, Self.weightRow(c0.2, c1.2, c2.2))
                put(3, Self.weightRow(c0.3, c1.3, c2.3))
            }
        }
    }

    /// dW += Gᵀ (Σ partials) G for output channels `outputs`: the `count` partials (each a dU,
    /// `stride` floats apart) are summed in order, then transformed and added to the O×3×3×C `dw`.
    func addWeightGradient(partials: UnsafePointer<Float>, count: Int, stride: Int,
                           into dw: UnsafeMutablePointer<Float>, outputs: Range<Int>) {
        if tile == 4 { return addWeightGradient4(partials: partials, count: count, stride: stride, into: dw, outputs: outputs) }
        let c = inChannels, plane = outChannels * c
        for o in outputs {
            let src = partials + o * c, dst = dw + o * 9 * c
            forEachLaneBlock(c) { ch, lanes in
                @inline(__always) func du(_ i: Int, _ j: Int) -> Float8 {
                    let at = src + (i * 4 + j) * plane + ch
                    var sum = load8(at, count: lanes)
                    for k in 1..<max(1, count) { sum += load8(at + k * stride, count: lanes) }
                    return sum
                }
                // Columns of Gᵀ dU (3×4), then rows of (Gᵀ dU) G.
                let c0 = Self.weightGradientRow(du(0, 0), du(1, 0), du(2, 0), du(3, 0))
                let c1 = Self.weightGradientRow(du(0, 1), du(1, 1), du(2, 1), du(3, 1))
                let c2 = Self.weightGradientRow(du(0, 2), du(1, 2), du(2, 2), du(3, 2))
                let c3 = Self.weightGradientRow(du(0, 3), du(1, 3), du(2, 3), du(3, 3))
                @inline(__always) func add(_ k: Int, _ r: (Float8, Float8, Float8)) {
                    let at = dst + k * 3 * c + ch
                    store8(load8(at, count: lanes) + r.0, at, count: lanes)
                    store8(load8(at + c, count: lanes) + r.1, at + c, count: lanes)
                    store8(load8(at + 2 * c, count: lanes) + r.2, at + 2 * c, count: lanes)
                }
                add(0, Self.weightGradientRow(c0.0, c1.0, c2.0, c3.0))
                add(1, Self.weightGradientRow(c0.1, c1.1, c2.1, c3.1))
                add(2, Self.weightGradientRow(c0.2, c1.2, c2.2, c3.2))
            }
        }
    }

    /// V = Bᵀ d B for `tiles` of `x` (`channels` channels) into `v`: [ξ][tile][channel], each ξ a
    /// tiles.count × channels matrix.
    @inline(never)
    func transformInput(_ x: UnsafePointer<Float>, channels c: Int, tiles: Range<Int>, into v: UnsafeMutablePointer<Float>) {
        guard Self.transformsInC(channels: c) else {
            return tile == 4 ? transformInput4Portable(x, channels: c, tiles: tiles, into: v)
                             : transformInput2Portable(x, channels: c, tiles: tiles, into: v)
        }
        var g = cTiles(tiles, channels: c)
        transforms.input(x, &g, v)
    }

    /// `transformInput` of x's bf16 copy (`inChannels` channels), each value widened exactly;
    /// only where the C transforms run (`roundsToBF16`).
    @inline(never)
    func transformInput(bf16 x: UnsafePointer<UInt16>, tiles: Range<Int>, into v: UnsafeMutablePointer<Float>) {
        precondition(roundsToBF16, "WinogradKernel: bf16 input without the C transforms")
        var g = cTiles(tiles, channels: inChannels)
        transforms.input_bf16(x, &g, v)
    }

    /// The F(2×2) input transform for any channel count, in Swift (the C variants' definition):
    /// eight channels at a time, the last block possibly narrower. It does not round
    /// (`roundsToBF16` is only set where the C transforms run).
    func transformInput2Portable(_ x: UnsafePointer<Float>, channels c: Int, tiles: Range<Int>,
                                 into v: UnsafeMutablePointer<Float>) {
        let h = height, w = width
        let plane = Self.planeStride(tiles: tiles.count, channels: c)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy - 1, x0 = ox - 1
            let image = x + n * h * w * c
            let dst = v + local * c
            let inside = y0 >= 0 && y0 + 4 <= h && x0 >= 0 && x0 + 4 <= w
            forEachLaneBlock(c) { ch, lanes in
                @inline(__always) func d(_ i: Int, _ j: Int) -> Float8 {
                    let yy = y0 + i, xx = x0 + j
                    if !inside && (yy < 0 || yy >= h || xx < 0 || xx >= w) { return .zero }
                    return load8(image + (yy * w + xx) * c + ch, count: lanes)
                }
                // Columns of Bᵀ d, then rows of (Bᵀ d) B.
                let c0 = Self.inputRow(d(0, 0), d(1, 0), d(2, 0), d(3, 0))
                let c1 = Self.inputRow(d(0, 1), d(1, 1), d(2, 1), d(3, 1))
                let c2 = Self.inputRow(d(0, 2), d(1, 2), d(2, 2), d(3, 2))
                let c3 = Self.inputRow(d(0, 3), d(1, 3), d(2, 3), d(3, 3))
                @inline(__always) func put(_ i: Int, _ r: (Float8, Float8, Float8, Float8)) {
                    store8(r.0, dst + (i * 4) * plane + ch, count: lanes)
                    store8(r.1, dst + (i * 4 + 1) * plane + ch, count: lanes)
                    store8(r.2, dst + (i * 4 + 2) * plane + ch, count: lanes)
                    store8(r.3, dst + (i * 4 + 3) * plane + ch, count: lanes)
                }
                put(0, Self.inputRow(c0.0, c1.0, c2.0, c3.0))
                put(1, Self.inputRow(c0.1, c1.1, c2.1, c3.1))
                put(2, Self.inputRow(c0.2, c1.2, c2.2, c3.2))
                put(3, Self.inputRow(c0.3, c1.3, c2.3, c3.3))
            }
        }
    }

    /// Y = Aᵀ M A (+ bias) for `tiles` from `m` ([ξ][tile][channel]) into the NHWC `y`
    /// (`channels` channels), writing only the outputs inside the image.
    @inline(never)
    func transformOutput(_ m: UnsafePointer<Float>, channels o: Int, tiles: Range<Int>, bias: UnsafePointer<Float>?,
                         into y: UnsafeMutablePointer<Float>) {
        guard Self.transformsInC(channels: o) else {
            return tile == 4 ? transformOutput4Portable(m, channels: o, tiles: tiles, bias: bias, into: y)
                             : transformOutput2Portable(m, channels: o, tiles: tiles, bias: bias, into: y)
        }
        var g = cTiles(tiles, channels: o)
        transforms.output(m, &g, bias, y)
    }

    /// The F(2×2) output transform for any channel count, in Swift (the C variants' definition).
    func transformOutput2Portable(_ m: UnsafePointer<Float>, channels o: Int, tiles: Range<Int>, bias: UnsafePointer<Float>?,
                                  into y: UnsafeMutablePointer<Float>) {
        let h = height, w = width
        let plane = Self.planeStride(tiles: tiles.count, channels: o)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy, x0 = ox
            let rows = min(2, h - y0), cols = min(2, w - x0)
            let image = y + n * h * w * o
            let src = m + local * o
            forEachLaneBlock(o) { ch, lanes in
                @inline(__always) func mv(_ i: Int, _ j: Int) -> Float8 { load8(src + (i * 4 + j) * plane + ch, count: lanes) }
                // Columns of Aᵀ M (2×4), then rows of (Aᵀ M) A.
                let c0 = Self.outputRow(mv(0, 0), mv(1, 0), mv(2, 0), mv(3, 0))
                let c1 = Self.outputRow(mv(0, 1), mv(1, 1), mv(2, 1), mv(3, 1))
                let c2 = Self.outputRow(mv(0, 2), mv(1, 2), mv(2, 2), mv(3, 2))
                let c3 = Self.outputRow(mv(0, 3), mv(1, 3), mv(2, 3), mv(3, 3))
                let b = bias.map { load8($0 + ch, count: lanes) } ?? .zero
                let top = Self.outputRow(c0.0, c1.0, c2.0, c3.0), bottom = Self.outputRow(c0.1, c1.1, c2.1, c3.1)
                let base = image + (y0 * w + x0) * o + ch
                store8(top.0 + b, base, count: lanes)
                if cols > 1 { store8(top.1 + b, base + o, count: lanes) }
                if rows > 1 {
                    store8(bottom.0 + b, base + w * o, count: lanes)
                    if cols > 1 { store8(bottom.1 + b, base + w * o + o, count: lanes) }
                }
            }
        }
    }

    /// dM = A dY Aᵀ for `tiles` of the output gradient `dy` (`outChannels` channels; outputs
    /// outside the image count as zero) into `dm`: [ξ][tile][channel].
    @inline(never)
    func transformOutputGradient(_ dy: UnsafePointer<Float>, tiles: Range<Int>, into dm: UnsafeMutablePointer<Float>) {
        guard Self.transformsInC(channels: outChannels) else {
            return tile == 4 ? transformOutputGradient4Portable(dy, tiles: tiles, into: dm)
                             : transformOutputGradient2Portable(dy, tiles: tiles, into: dm)
        }
        var g = cTiles(tiles, channels: outChannels)
        transforms.output_gradient(dy, &g, dm)
    }

    /// The F(2×2) output-gradient transform for any channel count, in Swift (the C variants' definition).
    func transformOutputGradient2Portable(_ dy: UnsafePointer<Float>, tiles: Range<Int>, into dm: UnsafeMutablePointer<Float>) {
        let h = height, w = width, o = outChannels
        let plane = Self.planeStride(tiles: tiles.count, channels: o)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy, x0 = ox
            let rows = min(2, h - y0), cols = min(2, w - x0)
            let base = dy + ((n * h + y0) * w + x0) * o
            let dst = dm + local * o
            forEachLaneBlock(o) { ch, lanes in
                let e00 = load8(base + ch, count: lanes)
                let e01 = cols > 1 ? load8(base + o + ch, count: lanes) : .zero
                let e10 = rows > 1 ? load8(base + w * o + ch, count: lanes) : .zero
                let e11 = rows > 1 && cols > 1 ? load8(base + w * o + o + ch, count: lanes) : .zero
                // Columns of A dY (4×2), then rows of (A dY) Aᵀ.
                let c0 = Self.gradientRow(e00, e10), c1 = Self.gradientRow(e01, e11)
                @inline(__always) func put(_ i: Int, _ r: (Float8, Float8, Float8, Float8)) {
                    store8(r.0, dst + (i * 4) * plane + ch, count: lanes)
                    store8(r.1, dst + (i * 4 + 1) * plane + ch, count: lanes)
                    store8(r.2, dst + (i * 4 + 2) * plane + ch, count: lanes)
                    store8(r.3, dst + (i * 4 + 3) * plane + ch, count: lanes)
                }
                put(0, Self.gradientRow(c0.0, c1.0))
                put(1, Self.gradientRow(c0.1, c1.1))
                put(2, Self.gradientRow(c0.2, c1.2))
                put(3, Self.gradientRow(c0.3, c1.3))
            }
        }
    }

    // MARK: - One-dimensional transforms (applied to columns, then rows)

    /// Bᵀ a: Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
    @inline(__always)
    static func inputRow(_ a0: Float8, _ a1: Float8, _ a2: Float8, _ a3: Float8) -> (Float8, Float8, Float8, Float8) {
        (a0 - a2, a1 + a2, a2 - a1, a1 - a3)
    }

    /// Aᵀ m: Aᵀ = [1 1 1 0; 0 1 −1 −1].
    @inline(__always)
    static func outputRow(_ m0: Float8, _ m1: Float8, _ m2: Float8, _ m3: Float8) -> (Float8, Float8) {
        (m0 + m1 + m2, m1 - m2 - m3)
    }

    /// G g: G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    @inline(__always)
    static func weightRow(_ g0: Float8, _ g1: Float8, _ g2: Float8) -> (Float8, Float8, Float8, Float8) {
        let even = 0.5 * (g0 + g2), odd = 0.5 * g1
        return (g0, even + odd, even - odd, g2)
    }

    /// A e: A = [1 0; 1 1; 1 −1; 0 −1].
    @inline(__always)
    static func gradientRow(_ e0: Float8, _ e1: Float8) -> (Float8, Float8, Float8, Float8) {
        (e0, e0 + e1, e0 - e1, -e1)
    }

    /// Gᵀ u: Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    @inline(__always)
    static func weightGradientRow(_ u0: Float8, _ u1: Float8, _ u2: Float8, _ u3: Float8) -> (Float8, Float8, Float8) {
        let sum = 0.5 * (u1 + u2)
        return (u0 + sum, 0.5 * (u1 - u2), sum + u3)
    }
}

/// (output channel, first input channel, lanes) over `outputs` × blocks of eight input channels,
/// outputs in blocks of `weightOutputBlock` and, within one, every output for each channel block:
/// the weight transforms store forward's U transposed ([position][input][output]), and this order
/// fills each cache line of it while the line is in cache, where one output at a time touched
/// every line of U once per output.
@inline(__always)
func forEachWeightBlock(_ outputs: Range<Int>, inChannels: Int, _ body: (Int, Int, Int) -> Void) {
    var o0 = outputs.lowerBound
    while o0 < outputs.upperBound {
        let o1 = min(o0 + weightOutputBlock, outputs.upperBound)
        forEachLaneBlock(inChannels) { ch, lanes in
            for oi in o0..<o1 { body(oi, ch, lanes) }
        }
        o0 = o1
    }
}

/// Output channels per block of `forEachWeightBlock`: a cache line of floats.
let weightOutputBlock = 16

/// Calls `body(channel, lanes)` for each block of eight channels of `count`, the last block
/// possibly narrower (`lanes` < 8).
@inline(__always)
func forEachLaneBlock(_ count: Int, _ body: (Int, Int) -> Void) {
    var ch = 0
    while ch < count {
        body(ch, min(8, count - ch))
        ch += 8
    }
}

/// Up to eight floats from `p`, zero in the lanes past `count`.
@inline(__always)
func load8(_ p: UnsafePointer<Float>, count: Int) -> Float8 {
    if count >= 8 { return load8(p) }
    var v = Float8.zero
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always)
func load8(_ p: UnsafeMutablePointer<Float>, count: Int) -> Float8 { load8(UnsafePointer(p), count: count) }

/// The first `count` (at most eight) lanes of `v` to `p`.
@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, count: Int) {
    if count >= 8 { store8(v, p); return }
    for i in 0..<count { p[i] = v[i] }
}
