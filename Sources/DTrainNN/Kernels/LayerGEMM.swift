import DTrainCore

/// The matrix products of a GEMM-based layer (im2col and pointwise convolutions, linear layers):
/// OpenBLAS sgemm, or, for bf16 precision on a CPU with bf16 dot products, `BF16GEMM` (which
/// rounds the operands to bf16 while packing them). Each thread that multiplies gets
/// `packFloats` floats of the layer's workspace for the bf16 kernels' packing.
struct LayerGEMM {
    /// nil: sgemm.
    let bf16: BF16GEMM.Variant?
    /// UInt16 elements one thread's packing needs for the largest product (0 for sgemm).
    let packElements: Int

    static let sgemm = LayerGEMM(bf16: nil, products: [])

    /// `products`: the (m, n, k) of every product the layer runs, each at its largest.
    init(bf16: BF16GEMM.Variant?, products: [(m: Int, n: Int, k: Int)]) {
        self.bf16 = bf16
        packElements = bf16 == nil ? 0 : products.map { BF16GEMM.packElements(m: $0.m, n: $0.n, k: $0.k) }.max() ?? 0
    }

    /// Workspace floats of one thread's packing.
    var packFloats: Int { workspaceAligned((packElements + 1) / 2) }

    /// Rows of the blocks a pointwise or linear product is cut into along a dimension that may be
    /// as large as the batch's pixels, so that the bf16 packing stays bounded; the whole range
    /// for sgemm.
    func rowBlock(_ rows: Int) -> Int { bf16 == nil ? max(1, rows) : min(max(1, rows), LayerGEMM.bf16RowBlock) }

    /// Rows per block of `rowBlock` with bf16 kernels.
    static let bf16RowBlock = 256

    /// C[m×n] = op(A) · op(B) + beta · C, as `BLAS.gemm` with alpha 1. `pack`: this thread's
    /// `packFloats` floats (unused for sgemm).
    @inline(__always)
    func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
              c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<Float>?) {
        guard let bf16 else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let elements = packElements
        UnsafeMutableRawPointer(pack!).withMemoryRebound(to: UInt16.self, capacity: elements) { p in
            BF16GEMM.gemm(bf16, transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc, pack: UnsafeMutableBufferPointer(start: p, count: elements))
        }
    }

    /// Whether a shared operand (a layer's weight) is packed once per pass (`packB`) for the
    /// products that multiply by it: the widened bf16 kernels.
    var packsSharedOperand: Bool { bf16?.widensWhilePacking ?? false }

    /// Floats of a shared op(B) (k × n) packed by `packB` (0 unless `packsSharedOperand`).
    func packedBFloats(n: Int, k: Int) -> Int { packsSharedOperand ? workspaceAligned(BF16GEMM.packedBFloats(n: n, k: k)) : 0 }

    /// Packs op(B) for `gemm(transA:m:n:k:a:lda:packedB:c:ldc:pack:)`; only where `packsSharedOperand`.
    func packB(transB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, into packed: UnsafeMutablePointer<Float>,
               columns: Range<Int>? = nil) {
        BF16GEMM.packB(bf16!, transB: transB, n: n, k: k, b: b, ldb: ldb, into: packed, columns: columns)
    }

    /// C[m×n] = op(A) · op(B) with op(B) from `packB` (beta 0). `pack`: this thread's `packFloats` floats.
    @inline(__always)
    func gemm(transA: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
              packedB: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pack).withMemoryRebound(to: UInt16.self, capacity: packElements) { p in
            BF16GEMM.gemm(bf16!, transA: transA, m: m, n: n, k: k, a: a, lda: lda, packedB: packedB, c: c, ldc: ldc, pack: p)
        }
    }

    /// C[m×n] = op(A) · B + beta · C with B (k × n) as bf16 values; only where `packsSharedOperand`
    /// (the widened kernels read bf16 operands as they pack them). `pack`: this thread's `packFloats` floats.
    @inline(__always)
    func gemm(transA: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
              bBF16: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
              pack: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pack).withMemoryRebound(to: UInt16.self, capacity: packElements) { p in
            BF16GEMM.gemm(bf16!, transA: transA, m: m, n: n, k: k, a: a, lda: lda, bBF16: bBF16, ldb: ldb, beta: beta,
                          c: c, ldc: ldc, pack: p)
        }
    }

    /// `gemm` for a product called outside the layer's own parallel split (linear layers): with
    /// sgemm its columns are cut across dtrain's threads, one single-threaded sgemm per slice,
    /// since OpenBLAS's own threading allocates on every call and a training step allocates
    /// nothing. Each column's sums are the same whatever the cut. The bf16 kernels run as `gemm`.
    func gemmAcrossThreads(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                           c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<Float>?) {
        guard bf16 == nil else {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, pack: pack)
            return
        }
        let chunks = min(Compute.threads, max(1, n / 64))
        if chunks == 1 {
            BLAS.withSingleThreaded {
                BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            }
            return
        }
        parallelChunks(n, chunks: chunks) { _, columns in
            // op(B)'s columns j are B's rows j when transposed, else its columns.
            let slice = transB ? b + columns.lowerBound * ldb : b + columns.lowerBound
            BLAS.gemm(transA: transA, transB: transB, m: m, n: columns.count, k: k, a: a, lda: lda, b: slice, ldb: ldb,
                      beta: beta, c: c + columns.lowerBound, ldc: ldc)
        }
    }
}
