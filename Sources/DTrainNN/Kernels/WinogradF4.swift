import CDTrainKernels
import DTrainCore

/// The transforms of Winograd F(4×4, 3×3) (Lavin & Gray 2015, interpolation points 0, ±1, ±2, ∞):
/// 4×4 output tiles from 6×6 input patches, 36 positions. A tile costs 36 multiply-adds per
/// channel pair for 16 outputs (4× fewer than direct convolution, against 2.25× for F(2×2)), and
/// its input transform writes 2.25 values per output instead of 4. The passes over tiles are
/// `WinogradKernel`'s; these replace its 4×4 transforms when `tile` is 4.
///
/// The input, output and output-gradient transforms, which run on every tile of every pass, are
/// CDTrainKernels' dtrain_winograd4_* (templates/winograd_f4.h), one variant per `KernelSet`: C
/// vectors with all 36 loads of a tile at fixed offsets, so no bounds check depends on what the
/// Swift optimizer hoists, and sixteen lanes with AVX-512. The portable Swift transforms below
/// define them (the tests hold every variant to their bits) and run the other channel counts.
///
/// Backward-data reads the flipped kernel's taps (G does not commute with the flip here, so the
/// F(2×2) position swap does not apply).
typealias Six = (Float8, Float8, Float8, Float8, Float8, Float8)

extension WinogradKernel {
    // MARK: - One-dimensional transforms
    //
    // A multiplication by a constant and the addition after it are one fused multiply-add
    // (`addingProduct`, fused on every CPU), as in the C variants: fewer operations, one rounding.

    /// Bᵀ d: rows [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    @inline(__always)
    static func input6(_ d: Six) -> Six {
        let a = d.4.addingProduct(-4, d.2), b = d.3.addingProduct(-4, d.1)
        let e = d.4 - d.2, f = 2 * (d.3 - d.1)
        return (d.4.addingProduct(-5, d.2).addingProduct(4, d.0), a + b, a - b, e + f, e - f,
                d.5.addingProduct(-5, d.3).addingProduct(4, d.1))
    }

    /// Aᵀ m: rows [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
    @inline(__always)
    static func output6(_ m: Six) -> (Float8, Float8, Float8, Float8) {
        let s12 = m.1 + m.2, d12 = m.1 - m.2, s34 = m.3 + m.4, d34 = m.3 - m.4
        return (m.0 + s12 + s34, d12.addingProduct(2, d34), s12.addingProduct(4, s34), d12.addingProduct(8, d34) + m.5)
    }

    /// G g: rows [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1].
    @inline(__always)
    static func weight6(_ g0: Float8, _ g1: Float8, _ g2: Float8) -> Six {
        let even = g0 + g2, a = Float(1) / 6
        let p = g0 * (Float(1) / 24) + g2 * a, q = g1 * (Float(1) / 12)
        return (g0 * 0.25, -a * (even + g1), -a * (even - g1), p + q, p - q, g2)
    }

    /// A e: A = (Aᵀ)ᵀ, 6×4.
    @inline(__always)
    static func gradient6(_ e0: Float8, _ e1: Float8, _ e2: Float8, _ e3: Float8) -> Six {
        let s02 = e0 + e2, s13 = e1 + e3, t02 = e0.addingProduct(4, e2), t13 = (2 * e1).addingProduct(8, e3)
        return (e0, s02 + s13, s02 - s13, t02 + t13, t02 - t13, e3)
    }

    /// Gᵀ u: 3×6.
    @inline(__always)
    static func weightGradient6(_ u: Six) -> (Float8, Float8, Float8) {
        let s12 = u.1 + u.2, d12 = u.1 - u.2, s34 = u.3 + u.4, d34 = u.3 - u.4
        let sixth = Float(1) / 6
        return (u.0 * 0.25 - s12 * sixth + s34 * (Float(1) / 24),
                -d12 * sixth + d34 * (Float(1) / 12),
                (s34 - s12) * sixth + u.5)
    }

    // MARK: - Transforms over tiles

    /// The tiles `tiles` of this kernel's images with `channels` channels, as the C transforms take them.
    func cTiles(_ tiles: Range<Int>, channels: Int) -> dtrain_winograd_tiles {
        dtrain_winograd_tiles(height: height, width: width, tiles_high: tilesHigh, tiles_wide: tilesWide,
                              channels: channels, first_tile: tiles.lowerBound, tile_count: tiles.count,
                              plane: Self.planeStride(tiles: tiles.count, channels: channels),
                              round_to_bf16: roundsToBF16 ? 1 : 0)
    }

    /// Whether the C transforms (`transforms`: CDTrainKernels' winograd4 and winograd2, one variant
    /// per `KernelSet`) take a tensor of `channels` channels: whole eight-lane blocks, as in all of the ResNets'
    /// layers. Other counts (a first layer's three) take the portable Swift transforms below,
    /// which compute the same values bit for bit.
    static func transformsInC(channels: Int) -> Bool {
        channels % 8 == 0 && channels > 0 && channels <= Int(DTRAIN_WINOGRAD_MAX_CHANNELS)
    }

    // MARK: - Portable transforms over tiles (any channel count; the C variants' definition)

    /// `transformInput` of F(4×4) (6×6 patches at (4·ty − 1, 4·tx − 1)) for any channel count, in
    /// Swift: element by element, with bounds and lane checks. It does not round (`roundsToBF16` is only set where the C transforms run).
    func transformInput4Portable(_ x: UnsafePointer<Float>, channels c: Int, tiles: Range<Int>,
                                 into v: UnsafeMutablePointer<Float>) {
        let h = height, w = width
        let plane = Self.planeStride(tiles: tiles.count, channels: c)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy - 1, x0 = ox - 1
            let image = x + n * h * w * c
            let dst = v + local * c
            forEachLaneBlock(c) { ch, lanes in
                @inline(__always) func d(_ i: Int, _ j: Int) -> Float8 {
                    let yy = y0 + i, xx = x0 + j
                    if yy < 0 || yy >= h || xx < 0 || xx >= w { return .zero }
                    return load8(image + (yy * w + xx) * c + ch, count: lanes)
                }
                @inline(__always) func column(_ j: Int) -> Six { Self.input6((d(0, j), d(1, j), d(2, j), d(3, j), d(4, j), d(5, j))) }
                let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
                @inline(__always) func row(_ i: Int, _ r: Six) {
                    let base = dst + i * 6 * plane + ch
                    store8(r.0, base, count: lanes); store8(r.1, base + plane, count: lanes)
                    store8(r.2, base + 2 * plane, count: lanes); store8(r.3, base + 3 * plane, count: lanes)
                    store8(r.4, base + 4 * plane, count: lanes); store8(r.5, base + 5 * plane, count: lanes)
                }
                row(0, Self.input6((c0.0, c1.0, c2.0, c3.0, c4.0, c5.0)))
                row(1, Self.input6((c0.1, c1.1, c2.1, c3.1, c4.1, c5.1)))
                row(2, Self.input6((c0.2, c1.2, c2.2, c3.2, c4.2, c5.2)))
                row(3, Self.input6((c0.3, c1.3, c2.3, c3.3, c4.3, c5.3)))
                row(4, Self.input6((c0.4, c1.4, c2.4, c3.4, c4.4, c5.4)))
                row(5, Self.input6((c0.5, c1.5, c2.5, c3.5, c4.5, c5.5)))
            }
        }
    }

    /// `transformOutput` of F(4×4) (4×4 output tiles) for any channel count, in Swift.
    func transformOutput4Portable(_ m: UnsafePointer<Float>, channels o: Int, tiles: Range<Int>, bias: UnsafePointer<Float>?,
                                  into y: UnsafeMutablePointer<Float>) {
        let h = height, w = width
        let plane = Self.planeStride(tiles: tiles.count, channels: o)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy, x0 = ox
            let rows = min(4, h - y0), cols = min(4, w - x0)
            let image = y + n * h * w * o
            let src = m + local * o
            forEachLaneBlock(o) { ch, lanes in
                let b = bias.map { load8($0 + ch, count: lanes) } ?? .zero
                @inline(__always) func mv(_ i: Int, _ j: Int) -> Float8 { load8(src + (i * 6 + j) * plane + ch, count: lanes) }
                @inline(__always) func column(_ j: Int) -> (Float8, Float8, Float8, Float8) {
                    Self.output6((mv(0, j), mv(1, j), mv(2, j), mv(3, j), mv(4, j), mv(5, j)))
                }
                let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
                @inline(__always) func row(_ i: Int, _ r: (Float8, Float8, Float8, Float8)) {
                    @inline(__always) func put(_ j: Int, _ value: Float8) {
                        if i < rows && j < cols { store8(value + b, image + ((y0 + i) * w + x0 + j) * o + ch, count: lanes) }
                    }
                    put(0, r.0); put(1, r.1); put(2, r.2); put(3, r.3)
                }
                row(0, Self.output6((c0.0, c1.0, c2.0, c3.0, c4.0, c5.0)))
                row(1, Self.output6((c0.1, c1.1, c2.1, c3.1, c4.1, c5.1)))
                row(2, Self.output6((c0.2, c1.2, c2.2, c3.2, c4.2, c5.2)))
                row(3, Self.output6((c0.3, c1.3, c2.3, c3.3, c4.3, c5.3)))
            }
        }
    }

    /// `transformOutputGradient` of F(4×4) for any channel count, in Swift.
    func transformOutputGradient4Portable(_ dy: UnsafePointer<Float>, tiles: Range<Int>, into dm: UnsafeMutablePointer<Float>) {
        let h = height, w = width, o = outChannels
        let plane = Self.planeStride(tiles: tiles.count, channels: o)
        forEachTile(tiles) { local, n, oy, ox in
            let y0 = oy, x0 = ox
            let rows = min(4, h - y0), cols = min(4, w - x0)
            let base = dy + ((n * h + y0) * w + x0) * o
            let dst = dm + local * o
            forEachLaneBlock(o) { ch, lanes in
                @inline(__always) func e(_ i: Int, _ j: Int) -> Float8 {
                    i < rows && j < cols ? load8(base + (i * w + j) * o + ch, count: lanes) : .zero
                }
                @inline(__always) func column(_ j: Int) -> Six { Self.gradient6(e(0, j), e(1, j), e(2, j), e(3, j)) }
                let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
                @inline(__always) func put(_ i: Int, _ r: Six) {
                    let at = dst + i * 6 * plane + ch
                    store8(r.0, at, count: lanes); store8(r.1, at + plane, count: lanes)
                    store8(r.2, at + 2 * plane, count: lanes); store8(r.3, at + 3 * plane, count: lanes)
                    store8(r.4, at + 4 * plane, count: lanes); store8(r.5, at + 5 * plane, count: lanes)
                }
                put(0, Self.gradient6(c0.0, c1.0, c2.0, c3.0))
                put(1, Self.gradient6(c0.1, c1.1, c2.1, c3.1))
                put(2, Self.gradient6(c0.2, c1.2, c2.2, c3.2))
                put(3, Self.gradient6(c0.3, c1.3, c2.3, c3.3))
                put(4, Self.gradient6(c0.4, c1.4, c2.4, c3.4))
                put(5, Self.gradient6(c0.5, c1.5, c2.5, c3.5))
            }
        }
    }

    /// As `transformWeights`: forward [ξ][C][O]; backward-data the flipped kernel's [ξ][O][C].
    func transformWeights4(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, outputs: Range<Int>,
                           dataGradient: Bool) {
        let c = inChannels, o = outChannels, plane = o * c
        forEachWeightBlock(outputs, inChannels: c) { oi, ch, lanes in
            let g = w + oi * 9 * c
            do {
                @inline(__always) func tap(_ i: Int, _ j: Int) -> Float8 {
                    let (ti, tj) = dataGradient ? (2 - i, 2 - j) : (i, j)
                    return load8(g + (ti * 3 + tj) * c + ch, count: lanes)
                }
                let c0 = Self.weight6(tap(0, 0), tap(1, 0), tap(2, 0))
                let c1 = Self.weight6(tap(0, 1), tap(1, 1), tap(2, 1))
                let c2 = Self.weight6(tap(0, 2), tap(1, 2), tap(2, 2))
                @inline(__always) func store(_ xi: Int, _ value: Float8) {
                    if dataGradient {
                        store8(value, u + xi * plane + oi * c + ch, count: lanes)
                    } else {
                        let at = u + xi * plane + ch * o + oi
                        for l in 0..<lanes { at[l * o] = value[l] }
                    }
                }
                @inline(__always) func put(_ i: Int, _ r: Six) {
                    store(i * 6, r.0); store(i * 6 + 1, r.1); store(i * 6 + 2, r.2)
                    store(i * 6 + 3, r.3); store(i * 6 + 4, r.4); store(i * 6 + 5, r.5)
                }
                put(0, Self.weight6(c0.0, c1.0, c2.0))
                put(1, Self.weight6(c0.1, c1.1, c2.1))
                put(2, Self.weight6(c0.2, c1.2, c2.2))
                put(3, Self.weight6(c0.3, c1.3, c2.3))
                put(4, Self.weight6(c0.4, c1.4, c2.4))
                put(5, Self.weight6(c0.5, c1.5, c2.5))
            }
        }
    }

    /// As `addWeightGradient`: dW += Gᵀ (Σ partials) G.
    func addWeightGradient4(partials: UnsafePointer<Float>, count: Int, stride: Int,
                            into dw: UnsafeMutablePointer<Float>, outputs: Range<Int>) {
        let c = inChannels, plane = outChannels * c
        for o in outputs {
            let src = partials + o * c, dst = dw + o * 9 * c
            forEachLaneBlock(c) { ch, lanes in
                @inline(__always) func du(_ i: Int, _ j: Int) -> Float8 {
                    let at = src + (i * 6 + j) * plane + ch
                    var sum = load8(at, count: lanes)
                    for k in 1..<max(1, count) { sum += load8(at + k * stride, count: lanes) }
                    return sum
                }
                @inline(__always) func column(_ j: Int) -> (Float8, Float8, Float8) {
                    Self.weightGradient6((du(0, j), du(1, j), du(2, j), du(3, j), du(4, j), du(5, j)))
                }
                let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
                @inline(__always) func add(_ k: Int, _ r: (Float8, Float8, Float8)) {
                    let at = dst + k * 3 * c + ch
                    store8(load8(at, count: lanes) + r.0, at, count: lanes)
                    store8(load8(at + c, count: lanes) + r.1, at + c, count: lanes)
                    store8(load8(at + 2 * c, count: lanes) + r.2, at + 2 * c, count: lanes)
                }
                add(0, Self.weightGradient6((c0.0, c1.0, c2.0, c3.0, c4.0, c5.0)))
                add(1, Self.weightGradient6((c0.1, c1.1, c2.1, c3.1, c4.1, c5.1)))
                add(2, Self.weightGradient6((c0.2, c1.2, c2.2, c3.2, c4.2, c5.2)))
            }
        }
    }
}
