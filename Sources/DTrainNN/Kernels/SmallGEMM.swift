import DTrainCore

/// Register-blocked products of small matrices, for the many thin GEMMs of Winograd
/// convolutions: a block of 16–64 tiles times a channels × channels matrix, sixteen times per
/// block. OpenBLAS packs both operands on every call, and at these sizes reaches a third to a
/// half of what it does on large products (measured 10–23 GFLOP/s on one core against 35–38 for
/// these kernels, at 16 to 256 channels).
///
/// Both kernels keep a 4 × 16 block of the result in eight eight-lane accumulators and stream the
/// inner dimension through them: per step two vector loads of B, four broadcasts of A and eight
/// multiply-adds. The column count must be a multiple of 8.
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
    static func multiply(rows: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                         b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        // Row r of the result reads row r of a: element p of it at a + r·lda + p.
        blocked(m: rows, n: n, k: k, a: a, rowStep: lda, depthStep: 1, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: false)
    }

    /// c (m × n, ldc) = aᵀ b (+ c when `accumulate`): a is k × m (lda), b is k × n (ldb).
    static func multiplyTransposed(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                   b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                   accumulate: Bool) {
        // Row i of the result reads column i of a: element p of it at a + i + p·lda.
        blocked(m: m, n: n, k: k, a: a, rowStep: 1, depthStep: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
    }

    /// c (m × n) = A b (+ c), where A's element (i, p) is at a + i·rowStep + p·depthStep: 4 × 16
    /// blocks, then the leftover rows 1 × 16, then the last eight columns one row at a time.
    @inline(__always)
    private static func blocked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rowStep: Int, depthStep: Int,
                                b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool) {
        @inline(__always) func finish(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
            store8(accumulate ? load8(p) + v : v, p)
        }
        var j = 0
        while j + 16 <= n {
            var i = 0
            while i + 4 <= m {
                var c00 = Float8.zero, c01 = Float8.zero, c10 = Float8.zero, c11 = Float8.zero
                var c20 = Float8.zero, c21 = Float8.zero, c30 = Float8.zero, c31 = Float8.zero
                var ap = a + i * rowStep, bp = b + j
                for _ in 0..<k {
                    let b0 = load8(bp), b1 = load8(bp + 8)
                    let x0 = Float8(repeating: ap[0]), x1 = Float8(repeating: ap[rowStep])
                    let x2 = Float8(repeating: ap[2 * rowStep]), x3 = Float8(repeating: ap[3 * rowStep])
                    c00 = fma8(c00, x0, b0); c01 = fma8(c01, x0, b1)
                    c10 = fma8(c10, x1, b0); c11 = fma8(c11, x1, b1)
                    c20 = fma8(c20, x2, b0); c21 = fma8(c21, x2, b1)
                    c30 = fma8(c30, x3, b0); c31 = fma8(c31, x3, b1)
                    ap += depthStep
                    bp += ldb
                }
                let out = c + i * ldc + j
                finish(c00, out); finish(c01, out + 8)
                finish(c10, out + ldc); finish(c11, out + ldc + 8)
                finish(c20, out + 2 * ldc); finish(c21, out + 2 * ldc + 8)
                finish(c30, out + 3 * ldc); finish(c31, out + 3 * ldc + 8)
                i += 4
            }
            while i < m {
                var c0 = Float8.zero, c1 = Float8.zero
                var ap = a + i * rowStep, bp = b + j
                for _ in 0..<k {
                    let x = Float8(repeating: ap[0])
                    c0 = fma8(c0, x, load8(bp)); c1 = fma8(c1, x, load8(bp + 8))
                    ap += depthStep
                    bp += ldb
                }
                finish(c0, c + i * ldc + j); finish(c1, c + i * ldc + j + 8)
                i += 1
            }
            j += 16
        }
        if j < n {
            for i in 0..<m {
                var acc = Float8.zero
                var ap = a + i * rowStep, bp = b + j
                for _ in 0..<k {
                    acc = fma8(acc, Float8(repeating: ap[0]), load8(bp))
                    ap += depthStep
                    bp += ldb
                }
                finish(acc, c + i * ldc + j)
            }
        }
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
