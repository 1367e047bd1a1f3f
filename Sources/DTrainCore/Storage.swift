import Foundation

/// A block of 64-byte-aligned float32 memory with a single owner.
///
/// dtrain allocates every activation, gradient and workspace buffer as a `Storage` when a model is
/// built for a batch size; the training step only reads and writes them. `Storage.liveBytes` lets
/// benchmarks and tests see how much is held.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    nonisolated(unsafe) private static var live = 0
    private static let lock = NSLock()

    /// Bytes currently held by all live storages.
    public static var liveBytes: Int { lock.lock(); defer { lock.unlock() }; return live }

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "Storage count must be non-negative")
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("dtrain: out of memory allocating \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        Storage.lock.lock(); Storage.live += bytes; Storage.lock.unlock()
    }

    deinit {
        free(UnsafeMutableRawPointer(pointer))
        Storage.lock.lock(); Storage.live -= max(count, 1) * MemoryLayout<Float>.stride; Storage.lock.unlock()
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func zero() { memset(pointer, 0, count * MemoryLayout<Float>.stride) }
}
