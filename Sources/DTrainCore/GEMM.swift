import CDTrainSupport
import COpenBLAS

/// Row-major single-precision matrix products through OpenBLAS.
///
/// Threading: a GEMM called outside dtrain's parallel regions uses `BLAS.threads` OpenBLAS
/// threads (set with `Compute.setThreads`, default `Compute.threads`). While a `parallelFor` or
/// `parallelChunks` job runs, OpenBLAS is single-threaded, so a GEMM called inside a chunk body
/// runs on that chunk's thread alone (the pool supplies the parallelism). `withSingleThreaded`
/// does the same for a stretch of code that is not a parallel region.
public enum BLAS {
    /// OpenBLAS's kernel set ("SkylakeX", "Haswell"), after dtrain's correction for CPUs the
    /// library does not know (`dtrain_blas_core`: it falls back to SSE3 kernels on them); "" when
    /// the library does not say.
    public static var core: String { String(cString: dtrain_blas_core()) }

    /// What start-up lines print: "OpenBLAS SkylakeX", and what OpenBLAS had chosen itself where
    /// dtrain chose again ("OpenBLAS SkylakeX (it took this CPU for Prescott)").
    public static var coreSummary: String {
        let name = core.isEmpty ? "OpenBLAS" : "OpenBLAS \(core)"
        guard let replaced = dtrain_blas_core_replaced() else { return name }
        return "\(name) (it took this CPU for \(String(cString: replaced)))"
    }

    nonisolated(unsafe) private static var configured = 0
    nonisolated(unsafe) private static var library = 0

    /// OpenBLAS threads for GEMMs called outside parallel regions.
    public static var threads: Int {
        get {
            if configured == 0 { configured = max(1, Int(openblas_get_num_threads())); library = configured }
            return configured
        }
        set {
            configured = max(1, newValue)
            setLibraryThreads(configured)
        }
    }

    /// Sets OpenBLAS's own thread count if it differs (about 10 ns; process-wide).
    @inline(__always)
    static func setLibraryThreads(_ n: Int) {
        if n != library {
            openblas_set_num_threads(Int32(n))
            library = n
        }
    }

    /// Runs `body` with OpenBLAS single-threaded (restoring `threads` afterwards). Use around code
    /// that calls GEMMs from several threads of its own; `parallelFor` bodies need not.
    @inline(__always)
    public static func withSingleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        let n = threads
        if n == 1 { return try body() }
        setLibraryThreads(1)
        defer { setLibraryThreads(n) }
        return try body()
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with leading dimensions.
    /// op(A) is m×k (A is k×m when `transA`), op(B) is k×n (B is n×k when `transB`).
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false,
                            m: Int, n: Int, k: Int,
                            alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Best-of-`repeats` single-precision GEMM throughput in GFLOP/s for an n×n×n product with
    /// the current `threads` (after one untimed call): the machine's practical peak, against
    /// which a model's achieved GFLOP/s can be read.
    public static func measurePeakGFLOPS(size n: Int = 2048, repeats: Int = 3) -> Double {
        precondition(n > 0 && repeats > 0, "measurePeakGFLOPS: size and repeats must be positive")
        let a = Storage(count: n * n), b = Storage(count: n * n), c = Storage(count: n * n)
        var rng = SeededRandom(seed: 12345)
        for i in 0..<(n * n) {
            a.pointer[i] = Float(rng.uniform()) - 0.5
            b.pointer[i] = Float(rng.uniform()) - 0.5
        }
        var best = Double.infinity
        for r in 0...repeats {
            let start = monotonicNanoseconds()
            gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            let seconds = Double(monotonicNanoseconds() - start) * 1e-9
            if r > 0 { best = min(best, seconds) }
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }
}

extension BLAS {
    /// Runs `body` with OpenBLAS limited to one thread, then restores the previous count.
    ///
    /// For kernels that split work across dtrain's own threads and call `gemm` from each: a
    /// multithreaded OpenBLAS call would hand its work to OpenBLAS's pool, wait for it, and allocate
    /// per call; single-threaded calls from several threads at once run independently. Nested uses
    /// are free (the inner one finds one thread already).
    @inline(__always)
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        let previous = openblas_get_num_threads()
        if previous == 1 { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
    }
}
