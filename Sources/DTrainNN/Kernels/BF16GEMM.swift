import CDTrainKernels
import DTrainCore

/// Row-major matrix products with bfloat16 operands and float accumulation, for `--precision
/// bf16` (PyTorch's CPU autocast numerics for convolutions and linear layers: operands rounded to
/// bf16, round to nearest even; products exact; float sums; float results).
///
/// The kernels are CDTrainKernels' `dtrain_gemm_bf16_<variant>` (dtrain_bf16.h): they round A and
/// B to bf16 while packing them, in pairs along k, into caller-provided scratch, and run blocks of
/// rows × 2 vectors over the packed pairs. `reference` is the definition of the numerics
/// (documented summation order); the emulated variants (`avx2`, `avx512`, `lanes16AVX2`) and the
/// widened ones (`widenedAVX512`, float panels at the FMAs' full rate) compute it bit for bit,
/// `avx512bf16` with VDPBF16PS, which also flushes denormals to zero.
enum BF16GEMM {
    /// One compiled variant of the kernel.
    enum Variant: String, CaseIterable, Sendable {
        /// Plain scalar C, portable: the numerics' definition (slow; for tests).
        case reference
        /// Eight lanes (AVX2 + FMA), bf16 products emulated with fused multiply-adds.
        case avx2
        /// Sixteen lanes (AVX-512F), bf16 products emulated with fused multiply-adds.
        case avx512
        /// Sixteen lanes, VDPBF16PS (AVX512_BF16: Intel Cooper Lake / Sapphire Rapids, AMD Zen 4).
        case avx512bf16
        /// The sixteen-lane emulated source compiled for AVX2, so that CPUs without AVX-512 test
        /// the packing and blocking the sixteen-lane variants run. Tests only.
        case lanes16AVX2 = "lanes16_avx2"
        /// Sixteen lanes (AVX-512F) at the float32 FMAs' full rate: operands rounded to bf16 and
        /// widened back to floats as they are packed, then float32 products (for CPUs whose
        /// VDPBF16PS is not faster than their FMAs).
        case widenedAVX512 = "widened_avx512"
        /// `widenedAVX512`'s source compiled for AVX2. Tests only.
        case widenedLanes16AVX2 = "widened_lanes16_avx2"

        /// The variant a model built with `kernels` uses: VDPBF16PS with the avx512 set on a CPU
        /// that has AVX512_BF16, otherwise the set's emulated variant.
        init(_ kernels: KernelSet, cpuHasBF16: Bool = KernelSet.cpuHasBF16) {
            switch kernels {
            case .avx2: self = .avx2
            case .avx512: self = cpuHasBF16 ? .avx512bf16 : .avx512
            }
        }

        /// The first CPU extension the variant needs that this CPU lacks (as /proc/cpuinfo names
        /// it); nil when it runs here.
        var missingExtension: String? {
            switch self {
            case .reference: return nil
            case .avx2, .lanes16AVX2, .widenedLanes16AVX2: return KernelSet.avx2.missingExtension
            case .avx512, .widenedAVX512: return KernelSet.avx512.missingExtension
            case .avx512bf16: return KernelSet.avx512.missingExtension ?? (KernelSet.cpuHasBF16 ? nil : "avx512_bf16")
            }
        }

        /// Rows of op(A) and columns of op(B) per packed panel (dtrain_bf16.h's layout); (0, 0)
        /// for `reference`, which does not pack.
        var panel: (rows: Int, columns: Int) {
            switch self {
            case .reference: return (0, 0)
            case .avx2: return (Int(DTRAIN_GEMM_BF16_ROWS_AVX2), Int(DTRAIN_GEMM_BF16_COLUMNS_AVX2))
            case .avx512, .avx512bf16, .lanes16AVX2, .widenedAVX512, .widenedLanes16AVX2:
                return (Int(DTRAIN_GEMM_BF16_ROWS_LANES16), Int(DTRAIN_GEMM_BF16_COLUMNS_LANES16))
            }
        }

        /// Whether the variant packs float panels (bf16 values widened, k in pairs with the odd
        /// element first) rather than bf16 pairs in 32-bit words.
        var widensWhilePacking: Bool { self == .widenedAVX512 || self == .widenedLanes16AVX2 }
    }

    /// UInt16 elements of the `pack` scratch that `gemm` needs for an m × n × k product, with any
    /// variant (0 when the product is empty). Allocate once per size and thread.
    static func packElements(m: Int, n: Int, k: Int) -> Int {
        precondition(m >= 0 && n >= 0 && k >= 0, "BF16GEMM: negative size \(m) × \(n) × \(k)")
        return dtrain_gemm_bf16_pack_elements(m, n, k)
    }

    /// C[m×n] = op(A) · op(B) + beta · C, row-major, with A and B rounded to bf16 and float sums;
    /// as `BLAS.gemm` with alpha 1: op(A) is m×k (A is k×m when `transA`), op(B) is k×n (B is n×k
    /// when `transB`). With beta 0, C is not read. `pack`: at least `packElements(m:n:k:)`
    /// elements of scratch, which is overwritten. Single-threaded and allocation-free; the variant
    /// must run on this CPU (`missingExtension == nil`).
    @inline(__always)
    static func gemm(_ variant: Variant, transA: Bool = false, transB: Bool = false,
                     m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float = 0,
                     c: UnsafeMutablePointer<Float>, ldc: Int,
                     pack: UnsafeMutableBufferPointer<UInt16>) {
        if m == 0 || n == 0 { return }
        precondition(pack.count >= packElements(m: m, n: n, k: k),
                     "BF16GEMM: pack holds \(pack.count) elements, \(m) × \(n) × \(k) needs \(packElements(m: m, n: n, k: k))")
        let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
        let p = pack.baseAddress
        switch variant {
        case .reference: dtrain_gemm_bf16_reference(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .avx2: dtrain_gemm_bf16_avx2(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .avx512: dtrain_gemm_bf16_avx512(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .avx512bf16: dtrain_gemm_bf16_avx512bf16(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .lanes16AVX2: dtrain_gemm_bf16_lanes16_avx2(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .widenedAVX512: dtrain_gemm_bf16_widened_avx512(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        case .widenedLanes16AVX2: dtrain_gemm_bf16_widened_lanes16_avx2(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, p)
        }
    }

    /// Floats of op(B) (k × n) packed by `packB` (0 when the product is empty).
    static func packedBFloats(n: Int, k: Int) -> Int {
        precondition(n >= 0 && k >= 0, "BF16GEMM: negative size \(n) × \(k)")
        return dtrain_gemm_bf16_widened_packed_b_floats(n, k)
    }

    /// Columns of op(B) per packed panel of a widened variant: `packB` splits its columns in
    /// multiples of it.
    static let widenedPanelColumns = 32

    /// Packs `columns` (all by default; else starting at a multiple of `widenedPanelColumns`) of
    /// op(B) (k × n; B is n × k when `transB`) for `gemm(_:transA:m:n:k:a:lda:packedB:c:ldc:pack:)`
    /// into `packed` (`packedBFloats(n:k:)` floats for all n): a widened variant rounds an operand
    /// that many products share (a layer's weight) once. Threads may pack disjoint column ranges.
    static func packB(_ variant: Variant, transB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int,
                      into packed: UnsafeMutablePointer<Float>, columns: Range<Int>? = nil) {
        let tb: Int32 = transB ? 1 : 0
        let range = columns ?? 0..<n
        precondition(range.lowerBound % widenedPanelColumns == 0 && range.upperBound <= n,
                     "BF16GEMM.packB: columns \(range) of \(n)")
        let (first, end) = (range.lowerBound, range.upperBound)
        switch variant {
        case .widenedAVX512: dtrain_gemm_bf16_widened_pack_b_avx512(tb, n, k, b, ldb, packed, first, end)
        case .widenedLanes16AVX2: dtrain_gemm_bf16_widened_pack_b_lanes16_avx2(tb, n, k, b, ldb, packed, first, end)
        default: preconditionFailure("BF16GEMM: \(variant.rawValue) does not pack B ahead")
        }
    }

    /// C[m×n] = op(A) · op(B) with op(B) from `packB` (beta 0): the same values as `gemm`. `pack`:
    /// at least `packElements(m: m, n: 1, k: k)` elements, for op(A).
    @inline(__always)
    static func gemm(_ variant: Variant, transA: Bool = false, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, packedB: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<UInt16>) {
        let ta: Int32 = transA ? 1 : 0
        switch variant {
        case .widenedAVX512: dtrain_gemm_bf16_widened_packed_avx512(ta, m, n, k, a, lda, packedB, c, ldc, pack)
        case .widenedLanes16AVX2: dtrain_gemm_bf16_widened_packed_lanes16_avx2(ta, m, n, k, a, lda, packedB, c, ldc, pack)
        default: preconditionFailure("BF16GEMM: \(variant.rawValue) does not take B packed ahead")
        }
    }

    /// C[m×n] = op(A) · B + beta · C with B (k × n, not transposed) given as bf16 values, `ldb`
    /// a row: the same values as `gemm` with those values as floats. Widened variants only.
    @inline(__always)
    static func gemm(_ variant: Variant, transA: Bool = false, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, bBF16 b: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0,
                     c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<UInt16>) {
        let ta: Int32 = transA ? 1 : 0
        switch variant {
        case .widenedAVX512: dtrain_gemm_bf16_widened_bf16_b_avx512(ta, m, n, k, a, lda, b, ldb, beta, c, ldc, pack)
        case .widenedLanes16AVX2: dtrain_gemm_bf16_widened_bf16_b_lanes16_avx2(ta, m, n, k, a, lda, b, ldb, beta, c, ldc, pack)
        default: preconditionFailure("BF16GEMM: \(variant.rawValue) does not read bf16 operands")
        }
    }

    /// float → bf16 bits, round to nearest even; a NaN stays a NaN (quiet, sign and high payload
    /// kept). What the kernels apply to every operand.
    static func bf16(_ x: Float) -> UInt16 { dtrain_bf16_from_float(x) }

    /// bf16 bits → float (exact).
    static func float(bf16 bits: UInt16) -> Float { dtrain_float_from_bf16(bits) }
}
