import XCTest
import CDTrainKernels
@testable import DTrainCore
@testable import DTrainNN

/// The C variants of BatchNorm2d's passes (CDTrainKernels' dtrain_bn_*) against a scalar Swift
/// reference written from dtrain_batch_norm.h: per channel, float sums over blocks of
/// DTRAIN_BN_BLOCK_ROWS rows added into doubles, nothing fused. Bit for bit, for every way of
/// reading x (float32, rounded to bf16, bf16), without and with a fused ReLU or ReLU6, for channel counts
/// that leave eight-lane and single-channel tails in both widths, and for row ranges that start
/// inside the tensor and are shorter than, equal to and longer than a block; normalize also with
/// a residual block's shortcut added and its ReLU mask written. The passes must write their rows
/// and nothing else.
///
/// LayerFixtureTests and LayerGradientTests check the BatchNorm the passes make against PyTorch and
/// finite differences; this pins each variant to the same bits. A kernel set this CPU cannot run
/// is reported as skipped, naming the missing extension; its sixteen-lane source is still checked
/// here compiled for AVX2 (`testSixteenLaneSourceCompiledForAVX2`).
final class BatchNormKernelTests: XCTestCase {
    typealias Rows = UnsafePointer<dtrain_bn_rows>

    func testAVX2Variant() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_avx2)
    }

    func testAVX512Variant() throws {
        try skipUnlessSupported(.avx512)
        check(dtrain_kernels_avx512)
    }

    /// The avx512 variant's sixteen-lane source, compiled for AVX2: checked on every machine.
    func testSixteenLaneSourceCompiledForAVX2() throws {
        try skipUnlessSupported(.avx2)
        check(dtrain_kernels_lanes16_avx2)
    }

    /// The layer's variant is the model's kernel set: a BatchNorm built for each set this CPU
    /// runs gives the same output and gradients bit for bit.
    func testLayerGivesTheSameBitsInEveryKernelSet() throws {
        let sets = KernelSet.allCases.filter(\.isSupported)
        guard sets.count > 1 else {
            throw XCTSkip("one kernel set on this CPU (\(KernelSet.avx512.missingExtension.map { "it lacks \($0)" } ?? "")): nothing to compare")
        }
        var results: [[Float]] = []
        let shape = FeatureShape(height: 5, width: 3, channels: 24), count = 4 * shape.count
        for set in sets {
            let bn = BatchNorm2d(channels: 24)
            bn.fusedActivation = .relu
            let store = ParameterStore(layer: bn)
            store.initialize(seed: 0)
            _ = bn.build(input: shape, maxBatch: 4, inputNeedsGradient: true,
                         context: BuildContext(workspace: Workspace(), kernels: set))
            var rng = SeededRandom(seed: 11)
            let x = Storage(count: count), dy = Storage(count: count)
            for i in 0..<count { x.pointer[i] = Float(rng.normal()); dy.pointer[i] = Float(rng.normal()) }
            let y = bn.forward(Tensor(storage: x, batch: 4, shape: shape), mode: .train)
            let outputs = Array(UnsafeBufferPointer(start: y.data, count: count))
            let dx = bn.backward(Tensor(storage: dy, batch: 4, shape: shape))
            results.append(outputs + Array(UnsafeBufferPointer(start: dx.data, count: count)) + store.grads.buffer)
        }
        for r in results.dropFirst() { XCTAssertEqual(r.map(\.bitPattern), results[0].map(\.bitPattern)) }
    }

    private func skipUnlessSupported(_ set: KernelSet) throws {
        if let missing = set.missingExtension {
            throw XCTSkip("\(set.rawValue) BatchNorm passes not run: this CPU lacks \(missing)")
        }
    }

    // MARK: - The reference

    /// How the reference reads element i of x.
    static func read(_ x: [Float], _ bits: [UInt16], _ i: Int, input: Int) -> Float {
        switch input {
        case DTRAIN_BN_BF16: return Float(bitPattern: UInt32(bits[i]) << 16)
        case DTRAIN_BN_ROUNDED: return roundedToBFloat16(x[i])
        default: return x[i]
        }
    }

    struct Case {
        let channels: Int, rows: Int, first: Int, count: Int, input: Int, activation: BatchNormKernels.Activation
    }

    static var cases: [Case] {
        var all: [Case] = []
        for channels in [1, 3, 8, 13, 16, 24, 40, 64] {
            for (first, count) in [(0, 1), (5, 31), (0, 32), (3, 33), (2, 70)] {
                for input in [DTRAIN_BN_FLOAT32, DTRAIN_BN_ROUNDED, DTRAIN_BN_BF16] {
                    for activation in [BatchNormKernels.Activation.none, .relu, .relu6] {
                        all.append(Case(channels: channels, rows: first + count + 2, first: first, count: count, input: input,
                                        activation: activation))
                    }
                }
            }
        }
        return all
    }

    /// Values of every kind a pass meets: normal values around a large mean (so that x − pivot
    /// matters), exact zeros of both signs, and a NaN now and then.
    static func values(_ n: Int, _ rng: inout SeededRandom, special: Bool) -> [Float] {
        (0..<n).map { i in
            if special {
                switch i % 37 {
                case 5: return -0.0
                case 11: return 0
                case 23: return .nan
                default: break
                }
            }
            return Float(3 + 2 * rng.normal())
        }
    }

    private func check(_ kernels: dtrain_kernel_table) {
        var rng = SeededRandom(seed: 7)
        for k in Self.cases {
            let c = k.channels, n = k.rows * c
            let what = "C \(c), rows \(k.first)..<\(k.first + k.count) of \(k.rows), input \(k.input), activation \(k.activation)"
            // NaNs only in the elementwise passes: a NaN in a sum makes every later comparison moot.
            let xSums = Self.values(n, &rng, special: false), x = Self.values(n, &rng, special: true)
            let dy = Self.values(n, &rng, special: false)
            let bitsSums = xSums.map { bf16BitsRounded($0) }, bits = x.map { bf16BitsRounded($0) }
            let pivot = (0..<c).map { _ in Float(3 + rng.normal()) }
            // Channel 0 maps x = ±0 to a normalised ±0, where the ReLU must give +0 (as max(·, 0)).
            let mean = (0..<c).map { ch in ch == 0 ? 0 : Float(3 + rng.normal()) }
            let scale = (0..<c).map { _ in Float(0.5 + rng.uniform()) }
            // With a ReLU6, shifted up so that many normalised values lie above 6.
            let lift: Float = k.activation == .relu6 ? 4 : 0
            let shift = (0..<c).map { ch in ch == 0 ? -0.0 : Float(rng.normal()) + lift }
            let a = (0..<c).map { _ in Float(rng.normal()) }, slope = (0..<c).map { _ in Float(rng.normal()) }
            let offset = (0..<c).map { _ in Float(rng.normal()) }
            let range = k.first..<(k.first + k.count)

            func rows(_ values: [Float], _ halves: [UInt16], _ body: (Rows) -> Void) {
                mean.withUnsafeBufferPointer { pm in scale.withUnsafeBufferPointer { ps in shift.withUnsafeBufferPointer { pt in
                    values.withUnsafeBufferPointer { px in halves.withUnsafeBufferPointer { ph in
                        let pointer = k.input == DTRAIN_BN_BF16 ? UnsafeRawPointer(ph.baseAddress!) : UnsafeRawPointer(px.baseAddress!)
                        var r = dtrain_bn_rows(x: pointer, input: k.input, channels: c, first_row: k.first, row_count: k.count,
                                               mean: pm.baseAddress!, scale: ps.baseAddress!, shift: pt.baseAddress!, relu: k.activation.rawValue,
                                               addend: nil, mask: nil, rounds_dx: 0)
                        body(&r)
                    } }
                } } }
            }
            func normalized(_ v: Float, _ ch: Int) -> Float { (v - mean[ch]) * scale[ch] + shift[ch] }
            func masked(_ d: Float, _ v: Float, _ ch: Int) -> Float {
                let n = normalized(v, ch)
                switch k.activation {
                case .none: return d
                case .relu: return n > 0 ? d : 0
                case .relu6: return n > 0 && n < 6 ? d : 0
                }
            }
            func blockSums(_ term: (Int, Int) -> (Float, Float)) -> [Double] {
                var s = [Double](repeating: 0, count: 2 * c)
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(start + Int(DTRAIN_BN_BLOCK_ROWS), range.upperBound)
                    for ch in 0..<c {
                        var fs: Float = 0, fq: Float = 0
                        for row in start..<end {
                            let (p, q) = term(row, ch)
                            fs = fs + p
                            fq = fq + q
                        }
                        s[ch] += Double(fs)
                        s[c + ch] += Double(fq)
                    }
                    start = end
                }
                return s
            }

            // Forward sums.
            let wantSums = blockSums { row, ch in
                let d = Self.read(xSums, bitsSums, row * c + ch, input: k.input) - pivot[ch]
                return (d, d * d)
            }
            var gotSums = [Double](repeating: .nan, count: 2 * c)
            rows(xSums, bitsSums) { r in pivot.withUnsafeBufferPointer { kernels.bn_sums(r, $0.baseAddress!, &gotSums) } }
            XCTAssertEqual(gotSums.map(\.bitPattern), wantSums.map(\.bitPattern), "sums, \(what)")

            // Gradient sums.
            let wantGradient = blockSums { row, ch in
                let v = Self.read(xSums, bitsSums, row * c + ch, input: k.input)
                let d = masked(dy[row * c + ch], v, ch)
                return (d, d * (v - mean[ch]))
            }
            var gotGradient = [Double](repeating: .nan, count: 2 * c)
            rows(xSums, bitsSums) { r in dy.withUnsafeBufferPointer { kernels.bn_gradient_sums(r, $0.baseAddress!, &gotGradient) } }
            XCTAssertEqual(gotGradient.map(\.bitPattern), wantGradient.map(\.bitPattern), "gradient sums, \(what)")

            // Normalize, with and without the saved bits, and as a residual block's end: with its
            // shortcut added and (whole bytes per row) its mask written; dx. Outside the range
            // nothing changes.
            let sentinel = Float(-12345)
            let shortcut = Self.values(n, &rng, special: true)
            for (saving, residual) in [(false, false), (true, false), (false, true), (true, true)] {
                var y = [Float](repeating: sentinel, count: n)
                var save = [UInt16](repeating: 0xABCD, count: n)
                let masked = residual && c % 8 == 0
                var mask = [UInt8](repeating: 0x5A, count: n / 8)
                rows(x, bits) { r in
                    var r = r.pointee
                    shortcut.withUnsafeBufferPointer { pb in mask.withUnsafeMutableBufferPointer { pk in
                        if residual { r.addend = pb.baseAddress }
                        if masked { r.mask = pk.baseAddress }
                        save.withUnsafeMutableBufferPointer { ps in kernels.bn_normalize(&r, &y, saving ? ps.baseAddress! : nil) }
                    } }
                }
                for i in 0..<n {
                    let row = i / c, ch = i % c
                    guard range.contains(row) else {
                        XCTAssertEqual(y[i], sentinel, "normalize wrote outside its rows at \(i), \(what)")
                        XCTAssertEqual(save[i], 0xABCD, "normalize saved outside its rows at \(i), \(what)")
                        if masked { XCTAssertEqual(mask[i / 8], 0x5A, "mask written outside its rows at \(i), \(what)") }
                        continue
                    }
                    let v = Self.read(x, bits, i, input: k.input)
                    let sum = residual ? normalized(v, ch) + shortcut[i] : normalized(v, ch)
                    let want = k.activation == .none ? sum : k.activation == .relu ? max(sum, 0) : min(max(sum, 0), 6)
                    XCTAssertEqual(y[i].bitPattern, want.bitPattern, "normalize at \(i), \(what), residual \(residual)")
                    let wantSaved: UInt16 = saving ? UInt16(truncatingIfNeeded: v.bitPattern >> 16) : 0xABCD
                    XCTAssertEqual(save[i], wantSaved, "saved bits at \(i), \(what)")
                    if masked {
                        XCTAssertEqual((mask[i / 8] >> (i % 8)) & 1 == 1, sum > 0, "mask bit at \(i), \(what)")
                    }
                }
            }
            // dx, and dx rounded to bf16 as it is written (the dy of a bf16 convolution before).
            for roundsDX in [false, true] {
                var dx = [Float](repeating: sentinel, count: n)
                rows(x, bits) { r in
                    var r = r.pointee
                    r.rounds_dx = roundsDX ? 1 : 0
                    dy.withUnsafeBufferPointer { pd in a.withUnsafeBufferPointer { pa in slope.withUnsafeBufferPointer { psl in
                        offset.withUnsafeBufferPointer { po in
                            kernels.bn_input_gradient(&r, pd.baseAddress!, pa.baseAddress!, psl.baseAddress!, po.baseAddress!, &dx)
                        }
                    } } }
                }
                for i in 0..<n {
                    let row = i / c, ch = i % c
                    guard range.contains(row) else {
                        XCTAssertEqual(dx[i], sentinel, "input gradient wrote outside its rows at \(i), \(what)")
                        continue
                    }
                    let v = Self.read(x, bits, i, input: k.input)
                    let exact = masked(dy[i], v, ch) * a[ch] + (v - mean[ch]) * slope[ch] + offset[ch]
                    let want = roundsDX ? roundedToBFloat16(exact) : exact
                    XCTAssertEqual(dx[i].bitPattern, want.bitPattern, "input gradient at \(i), \(what), rounded \(roundsDX)")
                }
            }
        }
    }

    /// bf16 bits of x rounded to nearest even.
    private func bf16BitsRounded(_ x: Float) -> UInt16 { UInt16(truncatingIfNeeded: roundedToBFloat16(x).bitPattern >> 16) }
}
