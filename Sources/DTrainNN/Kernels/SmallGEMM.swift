import CDTrainKernels
import DTrainCore

/// Register-blocked products of small matrices, for the many thin GEMMs of Winograd
/// convolutions: a block of 16–64 tiles times a channels × channels matrix, sixteen times per
/// block. OpenBLAS packs both operands on every call, and at these sizes reaches a third to a
/// half of what it does on large products (measured 10–23 GFLOP/s on one core against 35–38 for
/// these kernels, at 16 to 256 channels).
///
/// The kernels are CDTrainKernels' `small_gemm`, one per `KernelSet` (its `table`): blocks of 4
/// rows × 2 vectors (4 × 16 floats) in eight accumulators with AVX2, 8 rows × 2 vectors (8 × 32
/// floats) or 8 × 1 in sixteen or eight with AVX-512. The column count must be a multiple of 8.
enum SmallGEMM {
    /// Whether `multiply` takes a product with `columns` result columns and inner dimension
    /// `depth` (beyond 512 channels BLAS's packing pays again).
    static func appliesToProduct(columns: Int, depth: Int) -> Bool {
        columns % 8 == 0 && columns <= 512 && depth <= 512
    }

    /// Whether `multiplyTransposed` takes an m × n result (measured: BLAS is as fast from 512).
    static func appliesToTransposedProduct(m: Int, n: Int) -> Bool {
        n % 8 == 0 && m <= 256 && n <= 256
    }

    /// c (rows × n, ldc) = a (rows × k, lda) · b (k × n, ldb).
    static func multiply(_ kernels: KernelSet, rows: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                         b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        // Row r of the result reads row r of a: element p of it at a + r·lda + p.
        blocked(kernels, m: rows, n: n, k: k, a: a, rowStep: lda, depthStep: 1, b: b, ldb: ldb, c: c, ldc: ldc,
                accumulate: false)
    }

    /// c (m × n, ldc) = aᵀ b (+ c when `accumulate`): a is k × m (lda), b is k × n (ldb).
    static func multiplyTransposed(_ kernels: KernelSet, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                   b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                   accumulate: Bool) {
        // Row i of the result reads column i of a: element p of it at a + i + p·lda.
        blocked(kernels, m: m, n: n, k: k, a: a, rowStep: 1, depthStep: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                accumulate: accumulate)
    }

    /// c (m × n) = A b (+ c), where A's element (i, p) is at a + i·rowStep + p·depthStep.
    @inline(__always)
    private static func blocked(_ kernels: KernelSet, m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                                rowStep: Int, depthStep: Int, b: UnsafePointer<Float>, ldb: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        precondition(n % 8 == 0, "SmallGEMM: \(n) columns, expected a multiple of 8")
        kernels.table.small_gemm(m, n, k, a, rowStep, depthStep, b, ldb, c, ldc, accumulate ? 1 : 0)
    }
}

/// acc + a · b per lane: one fused multiply-add where the build targets a CPU that has it
/// (Package.swift defines DTRAIN_FMA), otherwise a multiply and an add (a fused form would be a
/// library call per lane there).
@inline(__always)
func fma8(_ acc: Float8, _ a: Float8, _ b: Float8) -> Float8 {
    #if DTRAIN_FMA || arch(arm64)
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}
