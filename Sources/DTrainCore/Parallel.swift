import Foundation
import COpenBLAS

/// The process-wide compute settings: how many threads the kernels and OpenBLAS use.
///
/// The default is the cores of this node divided by the MPI ranks that share it
/// (`NodeRanks`), so several ranks on one machine do not oversubscribe it.
/// Work is split into the same chunks for the same thread count, so results are deterministic.
///
/// `parallelFor` and `parallelChunks` run on a persistent pool of `threads − 1` workers plus the
/// calling thread. Set the thread count while no parallel work is running.
public enum Compute {
    nonisolated(unsafe) private static var currentThreads = 0
    nonisolated(unsafe) private static var currentPool: ThreadPool?

    /// Threads per rank when none is set: cores ÷ ranks on this node, at least 1.
    public static var defaultThreads: Int {
        max(1, NodeRanks.current.coresPerRank)
    }

    /// The thread count in force (set on first use to `defaultThreads`).
    public static var threads: Int {
        if currentThreads == 0 { setThreads(defaultThreads) }
        return currentThreads
    }

    /// Sets the thread count for dtrain's kernels (resizing the worker pool to `n − 1` threads) and
    /// the OpenBLAS thread count for GEMMs called outside parallel regions (`BLAS.threads`).
    public static func setThreads(_ n: Int) {
        let n = max(1, n)
        if n != currentThreads {
            currentPool?.stop()
            currentPool = n > 1 ? ThreadPool(workers: n - 1) : nil
            currentThreads = n
        }
        BLAS.threads = n
    }

    /// The worker pool (nil with one thread).
    @inline(__always)
    static var pool: ThreadPool? {
        if currentThreads == 0 { setThreads(defaultThreads) }
        return currentPool
    }

    /// True while a `parallelFor`/`parallelChunks` job is running on the pool (from any thread).
    /// Parallel calls made then run serially on their calling thread.
    public static var isInParallelRegion: Bool { currentPool?.isBusy ?? false }
}

/// Runs `body(i)` for i in 0..<chunks on the pool, with OpenBLAS single-threaded for the job's
/// duration (a GEMM called inside a chunk runs on that chunk's thread only). Serially, in order,
/// when there is no pool or a job is already running (a nested call).
@inline(__always)
func runChunks(_ chunks: Int, _ body: (Int) -> Void) {
    if let pool = Compute.pool, pool.tryAcquire() {
        let blasThreads = BLAS.threads
        BLAS.setLibraryThreads(1)
        pool.run(chunks: chunks, body)
        BLAS.setLibraryThreads(blasThreads)
        pool.release()
        return
    }
    for i in 0..<chunks { body(i) }
}

/// Splits `0..<count` into at most `Compute.threads` contiguous chunks and runs `body` on each,
/// in parallel. Chunk boundaries depend only on `count`, `minChunk` and the thread count.
/// A call made inside another parallel call's body runs its chunks serially on its own thread.
@inline(__always)
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let chunks = min(Compute.threads, max(1, count / max(1, minChunk)))
    if chunks <= 1 { body(0..<count); return }
    runChunks(chunks) { i in body(chunkRange(i, of: chunks, count: count)) }
}

/// Runs `body(chunk, range)` over exactly `chunks` fixed chunks of `0..<count` in parallel
/// (for reductions: each chunk writes its own partial result, combined in chunk order).
/// `chunks` may exceed the thread count; threads then take several chunks each.
@inline(__always)
public func parallelChunks(_ count: Int, chunks: Int, _ body: (Int, Range<Int>) -> Void) {
    if chunks <= 1 { body(0, 0..<count); return }
    runChunks(chunks) { i in body(i, chunkRange(i, of: chunks, count: count)) }
}

@inline(__always)
public func chunkRange(_ i: Int, of chunks: Int, count: Int) -> Range<Int> {
    let base = count / chunks, extra = count % chunks
    let start = i * base + min(i, extra)
    return start..<(start + base + (i < extra ? 1 : 0))
}
