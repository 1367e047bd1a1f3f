import Dispatch
import Foundation
import COpenBLAS

/// The process-wide compute settings: how many threads the kernels and OpenBLAS use.
///
/// The default is the cores of this node divided by the MPI ranks that share it
/// (OMPI_COMM_WORLD_LOCAL_SIZE), so several ranks on one machine do not oversubscribe it.
/// Work is split into the same chunks for the same thread count, so results are deterministic.
public enum Compute {
    nonisolated(unsafe) private static var currentThreads = 0

    /// Threads per rank when none is set: cores ÷ ranks on this node, at least 1.
    public static var defaultThreads: Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let env = ProcessInfo.processInfo.environment
        let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["MPI_LOCALNRANKS"] ?? "") ?? 1
        return max(1, cores / max(1, local))
    }

    /// The thread count in force (set on first use to `defaultThreads`).
    public static var threads: Int {
        if currentThreads == 0 { setThreads(defaultThreads) }
        return currentThreads
    }

    /// Sets the thread count for dtrain's kernels and for OpenBLAS.
    public static func setThreads(_ n: Int) {
        currentThreads = max(1, n)
        openblas_set_num_threads(Int32(currentThreads))
    }
}

/// Splits `0..<count` into at most `Compute.threads` contiguous chunks and runs `body` on each,
/// in parallel. Chunk boundaries depend only on `count` and the thread count.
@inline(__always)
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let chunks = min(Compute.threads, max(1, count / max(1, minChunk)))
    if chunks <= 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { i in
        body(chunkRange(i, of: chunks, count: count))
    }
}

/// Runs `body(chunk, range)` over exactly `chunks` fixed chunks of `0..<count` in parallel
/// (for reductions: each chunk writes its own partial result, combined in chunk order).
@inline(__always)
public func parallelChunks(_ count: Int, chunks: Int, _ body: (Int, Range<Int>) -> Void) {
    if chunks <= 1 { body(0, 0..<count); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { i in
        body(i, chunkRange(i, of: chunks, count: count))
    }
}

@inline(__always)
public func chunkRange(_ i: Int, of chunks: Int, count: Int) -> Range<Int> {
    let base = count / chunks, extra = count % chunks
    let start = i * base + min(i, extra)
    return start..<(start + base + (i < extra ? 1 : 0))
}
