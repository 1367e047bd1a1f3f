import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Conv2d's parallel, tiled and direct-kernel paths against a plain Double-precision convolution,
/// at several thread counts, batch sizes and tilings; and bit-for-bit determinism for a thread count.
final class Conv2dReferenceTests: XCTestCase {
    struct Config: CustomStringConvertible {
        var c, o, k: Int
        var stride = 1, padding = 0, dilation = 1, groups = 1
        var h, w: Int
        var bias = false
        var description: String {
            "\(c)->\(o) k\(k) s\(stride) p\(padding) d\(dilation) g\(groups) \(h)x\(w)\(bias ? " bias" : "")"
        }
        func make() -> Conv2d {
            Conv2d(inChannels: c, outChannels: o, kernelSize: k, stride: stride, padding: padding,
                   dilation: dilation, groups: groups, bias: bias)
        }
    }

    /// Shapes of every path: plain, strided, dilated, pointwise (grouped too), grouped with wide
    /// and narrow groups, depthwise (with a channel multiplier, and channels not a multiple of 4),
    /// and a stem-like 7×7.
    static let configs: [Config] = [
        Config(c: 16, o: 16, k: 3, padding: 1, h: 9, w: 8),
        Config(c: 12, o: 20, k: 3, stride: 2, padding: 1, h: 9, w: 7, bias: true),
        Config(c: 6, o: 10, k: 3, padding: 2, dilation: 2, h: 7, w: 8),
        Config(c: 24, o: 40, k: 1, h: 6, w: 5, bias: true),
        Config(c: 24, o: 16, k: 1, groups: 4, h: 5, w: 5),
        Config(c: 16, o: 24, k: 1, stride: 2, h: 7, w: 6),
        Config(c: 32, o: 32, k: 3, padding: 1, groups: 8, h: 7, w: 6),
        Config(c: 64, o: 64, k: 3, stride: 2, padding: 1, groups: 8, h: 9, w: 9, bias: true),
        Config(c: 48, o: 96, k: 3, padding: 1, groups: 4, h: 5, w: 6),
        Config(c: 16, o: 16, k: 3, padding: 1, groups: 8, h: 6, w: 6),
        Config(c: 24, o: 24, k: 3, padding: 1, groups: 24, h: 8, w: 7, bias: true),
        Config(c: 20, o: 20, k: 3, stride: 2, padding: 1, groups: 20, h: 9, w: 8),
        Config(c: 13, o: 13, k: 5, padding: 2, groups: 13, h: 7, w: 7),
        Config(c: 8, o: 16, k: 3, padding: 1, groups: 8, h: 5, w: 5),
        Config(c: 3, o: 8, k: 7, stride: 2, padding: 3, h: 13, w: 12),
    ]

    struct Result {
        var y: [Float], dx: [Float], dw: [Float], db: [Float]
    }

    /// Forward and backward of `config` at `threads` threads on `batch` images (built for `maxBatch`).
    func run(_ config: Config, batch: Int, maxBatch: Int? = nil, threads: Int, tileRows: Int? = nil,
             inputGradient: Bool = true, configure: ((Conv2d) -> Void)? = nil) -> Result {
        let saved = Compute.threads
        Compute.setThreads(threads)
        defer { Compute.setThreads(saved) }
        let conv = config.make()
        if let tileRows { conv.minTileRows = tileRows; conv.columnTileFloats = 0 }
        configure?(conv)
        let store = ParameterStore(layer: conv)
        defer { withExtendedLifetime(store) {} }
        store.initialize(seed: 5)
        if let bias = conv.bias { for i in 0..<bias.count { bias.value[i] = Float(i % 7) * 0.1 - 0.3 } }
        let input = FeatureShape(height: config.h, width: config.w, channels: config.c)
        let ws = Workspace()
        let out = conv.build(input: input, maxBatch: maxBatch ?? batch, inputNeedsGradient: inputGradient,
                             context: BuildContext(workspace: ws))
        ws.allocate()
        let x = Self.random(batch * input.count, seed: 31)
        let dy = Self.random(batch * out.count, seed: 32)
        let y = conv.forward(Tensor(storage: x, batch: batch, shape: input), mode: .train).toArray()
        // Non-zero gradients before backward: it must add to them.
        for i in 0..<store.grads.count { store.grads.pointer[i] = 0.25 }
        let dx = conv.backward(Tensor(storage: dy, batch: batch, shape: out)).toArray()
        return Result(y: y, dx: dx, dw: conv.weight.grads.map { $0 - 0.25 },
                      db: conv.bias.map { $0.grads.map { $0 - 0.25 } } ?? [])
    }

    static func random(_ count: Int, seed: UInt64) -> Storage {
        var rng = SeededRandom(seed: seed)
        let s = Storage(count: count)
        for i in 0..<count { s.pointer[i] = Float(rng.normal()) }
        return s
    }

    /// The same computation in Double, straight from the definition (weights read back from a
    /// layer initialised like `run`'s).
    func reference(_ config: Config, batch: Int) -> (y: [Double], dx: [Double], dw: [Double], db: [Double]) {
        let conv = config.make()
        let store = ParameterStore(layer: conv)
        defer { withExtendedLifetime(store) {} }
        store.initialize(seed: 5)
        let wv = Array(conv.weight.values).map(Double.init)
        let bv: [Double] = conv.bias.map { b in (0..<b.count).map { Double(Float($0 % 7) * 0.1 - 0.3) } } ?? []
        let (c, o, k, s, p, d, g) = (config.c, config.o, config.k, config.stride, config.padding, config.dilation, config.groups)
        let (h, w) = (config.h, config.w)
        let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1
        let cg = c / g, og = o / g
        let xs = Self.random(batch * h * w * c, seed: 31), dys = Self.random(batch * oh * ow * o, seed: 32)
        let x = (0..<xs.count).map { Double(xs.pointer[$0]) }, dy = (0..<dys.count).map { Double(dys.pointer[$0]) }
        var y = [Double](repeating: 0, count: batch * oh * ow * o)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: wv.count)
        var db = [Double](repeating: 0, count: bv.count)
        for n in 0..<batch { for i in 0..<oh { for j in 0..<ow { for oc in 0..<o {
            let yi = ((n * oh + i) * ow + j) * o + oc
            var acc = bv.isEmpty ? 0 : bv[oc]
            if !db.isEmpty { db[oc] += dy[yi] }
            let grp = oc / og
            for kh in 0..<k { for kw in 0..<k {
                let ih = i * s - p + kh * d, iw = j * s - p + kw * d
                if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                for ci in 0..<cg {
                    let xi = ((n * h + ih) * w + iw) * c + grp * cg + ci
                    let wi = ((oc * k + kh) * k + kw) * cg + ci
                    acc += x[xi] * wv[wi]
                    dx[xi] += dy[yi] * wv[wi]
                    dw[wi] += dy[yi] * x[xi]
                }
            } }
            y[yi] = acc
        } } } }
        return (y, dx, dw, db)
    }

    private func assertClose(_ a: [Float], _ b: [Double], _ what: String, tolerance: Double = 2e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
        guard a.count == b.count else { return }
        let scale = max(1, b.map { abs($0) }.max() ?? 0)
        var worst = 0.0
        for i in 0..<a.count { worst = max(worst, abs(Double(a[i]) - b[i])) }
        XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(what): max abs error \(worst) at scale \(scale)", file: file, line: line)
    }

    private func check(_ r: Result, against ref: (y: [Double], dx: [Double], dw: [Double], db: [Double]), _ what: String,
                       tolerance: Double = 2e-5, file: StaticString = #filePath, line: UInt = #line) {
        assertClose(r.y, ref.y, "\(what) y", tolerance: tolerance, file: file, line: line)
        assertClose(r.dx, ref.dx, "\(what) dx", tolerance: tolerance, file: file, line: line)
        assertClose(r.dw, ref.dw, "\(what) dw", tolerance: tolerance, file: file, line: line)
        assertClose(r.db, ref.db, "\(what) db", tolerance: tolerance, file: file, line: line)
    }

    func testMatchesReferenceAtSeveralThreadCountsAndBatches() {
        for config in Self.configs {
            // 5 images divide evenly between neither 2 nor 3 threads; 1 image leaves threads idle.
            for batch in [5, 1] {
                let ref = reference(config, batch: batch)
                for threads in [1, 2, 3] {
                    check(run(config, batch: batch, threads: threads), against: ref, "\(config) batch \(batch) threads \(threads)")
                }
            }
        }
    }

    func testMatchesReferenceWithSmallTiles() {
        for config in Self.configs {
            let ref = reference(config, batch: 3)
            for tile in [1, 7] {
                check(run(config, batch: 3, threads: 2, tileRows: tile), against: ref, "\(config) tile \(tile)")
            }
        }
    }

    func testSmallerBatchThanBuiltFor() {
        for config in Self.configs {
            check(run(config, batch: 3, maxBatch: 6, threads: 2), against: reference(config, batch: 3), "\(config) 3 of 6")
        }
    }

    func testDeterministicForAThreadCount() {
        for config in Self.configs {
            for threads in [2, 3] {
                let first = run(config, batch: 5, threads: threads)
                let second = run(config, batch: 5, threads: threads)
                for (name, a, b) in [("y", first.y, second.y), ("dx", first.dx, second.dx),
                                     ("dw", first.dw, second.dw), ("db", first.db, second.db)] {
                    let same = a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
                    XCTAssertTrue(same, "\(config) threads \(threads): two runs give different \(name)")
                }
            }
        }
    }

    /// Grouped configurations through the GEMM path and through the direct kernel with every
    /// group width it can take (wider than it takes by default, to cover its general loops).
    func testDirectKernelAndGEMMPathMatchReference() {
        for config in Self.configs where config.groups > 1 {
            for batch in [3, 1] {
                let ref = reference(config, batch: batch)
                for threads in [1, 2, 3] {
                    check(run(config, batch: batch, threads: threads) { $0.useDirectKernel = false }, against: ref,
                          "\(config) GEMM batch \(batch) threads \(threads)")
                    check(run(config, batch: batch, threads: threads) { $0.directKernelMaxGroupWidth = 64 }, against: ref,
                          "\(config) direct batch \(batch) threads \(threads)")
                }
            }
            for threads in [2, 3] {
                let a = run(config, batch: 5, threads: threads) { $0.directKernelMaxGroupWidth = 64 }
                let b = run(config, batch: 5, threads: threads) { $0.directKernelMaxGroupWidth = 64 }
                for (name, u, v) in [("y", a.y, b.y), ("dx", a.dx, b.dx), ("dw", a.dw, b.dw), ("db", a.db, b.db)] {
                    XCTAssertTrue(u.count == v.count && zip(u, v).allSatisfy { $0.bitPattern == $1.bitPattern },
                                  "\(config) direct threads \(threads): two runs give different \(name)")
                }
            }
        }
    }

    func testDirectKernelChoice() {
        func uses(_ c: Int, _ o: Int, groups: Int, width: Int? = nil) -> Bool {
            let conv = Conv2d(inChannels: c, outChannels: o, kernelSize: 3, padding: 1, groups: groups)
            if let width { conv.directKernelMaxGroupWidth = width }
            _ = conv.build(input: FeatureShape(height: 5, width: 5, channels: c), maxBatch: 2, inputNeedsGradient: true,
                           context: BuildContext(workspace: Workspace()))
            return conv.usesDirectKernel
        }
        XCTAssertTrue(uses(96, 96, groups: 96))        // depthwise
        XCTAssertTrue(uses(13, 13, groups: 13))        // depthwise, channels not a multiple of 4
        XCTAssertTrue(uses(128, 128, groups: 32))      // ResNeXt 32x4d, first stage
        XCTAssertTrue(uses(256, 256, groups: 32))      // 8 per group
        XCTAssertFalse(uses(512, 512, groups: 32))     // 16 per group: GEMM
        XCTAssertTrue(uses(512, 512, groups: 32, width: 16))
        XCTAssertFalse(uses(16, 16, groups: 8))        // 2 per group
        XCTAssertFalse(uses(8, 16, groups: 8))         // channel multiplier 2
        XCTAssertFalse(uses(16, 16, groups: 1))
    }

    /// Every configuration Winograd applies to (3×3, stride 1, padding 1, dense), with channel
    /// counts that are and are not multiples of the eight-lane blocks, odd and even sides, and
    /// tiny blocks of tiles that straddle images, through Winograd and through im2col + GEMM.
    static let winogradConfigs: [Config] = [
        Config(c: 16, o: 16, k: 3, padding: 1, h: 9, w: 8),
        Config(c: 5, o: 11, k: 3, padding: 1, h: 7, w: 5, bias: true),
        Config(c: 24, o: 9, k: 3, padding: 1, h: 1, w: 3),
        Config(c: 3, o: 16, k: 3, padding: 1, h: 6, w: 6),
        Config(c: 32, o: 64, k: 3, padding: 1, h: 4, w: 7, bias: true),
    ]

    func testWinogradMatchesReference() {
        for config in Self.winogradConfigs {
            for batch in [3, 1] {
                let ref = reference(config, batch: batch)
                for threads in [1, 2, 3] {
                    for tile in [2, 4] {
                        for block in [nil, 1, 5] as [Int?] {
                            let r = run(config, batch: batch, threads: threads) { conv in
                                conv.winogradMinChannels = 1
                                conv.winogradTile = tile
                                if let block { conv.columnTileFloats = 0; conv.minTileRows = 2 * block }
                            }
                            check(r, against: ref, "\(config) winograd F\(tile) batch \(batch) threads \(threads) block \(block ?? 0)",
                                  tolerance: tile == 4 ? 1e-4 : 2e-5)
                        }
                    }
                    check(run(config, batch: batch, threads: threads) { $0.useWinograd = false }, against: ref,
                          "\(config) GEMM batch \(batch) threads \(threads)")
                }
            }
            let partial = run(config, batch: 2, maxBatch: 5, threads: 2) { $0.winogradMinChannels = 1 }
            check(partial, against: reference(config, batch: 2), "\(config) winograd 2 of 5")
            let a = run(config, batch: 5, threads: 2) { $0.winogradMinChannels = 1 }
            let b = run(config, batch: 5, threads: 2) { $0.winogradMinChannels = 1 }
            for (name, u, v) in [("y", a.y, b.y), ("dx", a.dx, b.dx), ("dw", a.dw, b.dw), ("db", a.db, b.db)] {
                XCTAssertTrue(u.count == v.count && zip(u, v).allSatisfy { $0.bitPattern == $1.bitPattern },
                              "\(config) winograd: two runs give different \(name)")
            }
        }
    }

    func testWinogradChoice() {
        func uses(_ c: Int, _ o: Int, k: Int = 3, stride: Int = 1, padding: Int = 1, dilation: Int = 1, groups: Int = 1) -> Bool {
            let conv = Conv2d(inChannels: c, outChannels: o, kernelSize: k, stride: stride, padding: padding,
                              dilation: dilation, groups: groups)
            _ = conv.build(input: FeatureShape(height: 8, width: 8, channels: c), maxBatch: 2, inputNeedsGradient: true,
                           context: BuildContext(workspace: Workspace()))
            return conv.usesWinograd
        }
        func tile(_ c: Int, _ o: Int) -> Int? {
            let conv = Conv2d(inChannels: c, outChannels: o, kernelSize: 3, padding: 1)
            _ = conv.build(input: FeatureShape(height: 8, width: 8, channels: c), maxBatch: 2, inputNeedsGradient: true,
                           context: BuildContext(workspace: Workspace()))
            return conv.winogradOutputTile
        }
        XCTAssertTrue(uses(16, 16))
        XCTAssertTrue(uses(512, 512))
        XCTAssertEqual(tile(64, 128), 4)               // F(4×4) up to 128 channels
        XCTAssertEqual(tile(128, 256), 2)              // F(2×2) beyond
        XCTAssertFalse(uses(3, 16))                 // too few input channels for the GEMMs to pay
        XCTAssertFalse(uses(16, 16, stride: 2))
        XCTAssertFalse(uses(16, 16, padding: 2, dilation: 2))
        XCTAssertFalse(uses(16, 16, padding: 0))
        XCTAssertFalse(uses(16, 16, k: 1, padding: 0))
        XCTAssertFalse(uses(32, 32, groups: 2))
    }

    func testWithoutInputGradient() {
        for config in Self.configs {
            let ref = reference(config, batch: 4)
            let r = run(config, batch: 4, threads: 2, inputGradient: false)
            XCTAssertTrue(r.dx.isEmpty)
            assertClose(r.y, ref.y, "\(config) y")
            assertClose(r.dw, ref.dw, "\(config) dw")
        }
    }
}
