import CDTrainKernels
import DTrainCore

/// An activation kept for backward as bfloat16, half the memory of float32 (bf16 activation
/// storage, `BuildContext.storesActivationsInBF16`): forward rounds it to nearest even, backward
/// widens it back, exactly, into float32 scratch. Allocated once at build for the batch built for.
final class BF16Copy {
    /// 16-bit values in float32 storage (two per float): 64-byte aligned, counted in `Storage.liveBytes`.
    private let storage: Storage
    let capacity: Int
    /// Values the last `save` kept; nil before the first save and after `discard`.
    private(set) var count: Int?

    init(capacity: Int) {
        precondition(capacity >= 0, "BF16Copy: negative capacity")
        self.capacity = capacity
        storage = Storage(count: (capacity + 1) / 2)
    }

    private var halves: UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self)
    }

    /// Keeps bf16(x[i]) for i < count.
    func save(_ x: UnsafePointer<Float>, count: Int) {
        precondition(count <= capacity, "BF16Copy: \(count) values for \(capacity)")
        let out = halves
        parallelFor(count, minChunk: 16384) { r in dtrain_bf16_pack_scaled(x + r.lowerBound, 1, out + r.lowerBound, r.count) }
        self.count = count
    }

    /// Keeps bf16(x[i]) for i < count and writes the same values as float32 into `rounded`.
    func save(_ x: UnsafePointer<Float>, count: Int, rounding rounded: UnsafeMutablePointer<Float>) {
        precondition(count <= capacity, "BF16Copy: \(count) values for \(capacity)")
        let out = halves
        parallelFor(count, minChunk: 16384) { r in
            dtrain_bf16_round_pack(x + r.lowerBound, rounded + r.lowerBound, out + r.lowerBound, r.count)
        }
        self.count = count
    }

    /// Where a pass that saves `count` values as it goes writes their bf16 bits.
    func saving(count: Int) -> UnsafeMutablePointer<UInt16> {
        precondition(count <= capacity, "BF16Copy: \(count) values for \(capacity)")
        self.count = count
        return halves
    }

    /// The saved values' bf16 bits, for a pass that widens them as it reads them.
    var saved: UnsafePointer<UInt16> {
        guard count != nil else { preconditionFailure("BF16Copy: backward without a train-mode forward") }
        return UnsafePointer(halves)
    }

    /// Forgets the saved values (a forward that did not save them ran since).
    func discard() { count = nil }

    /// Writes the saved values as float32 into `target` and returns it.
    func restore(into target: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let count else { preconditionFailure("BF16Copy: backward without a train-mode forward") }
        let source = UnsafePointer(halves)
        parallelFor(count, minChunk: 16384) { r in dtrain_bf16_unpack(source + r.lowerBound, target + r.lowerBound, r.count) }
        return UnsafePointer(target)
    }
}
