/// The shape of one sample's activation: height × width × channels (NHWC without N).
public struct FeatureShape: Equatable, CustomStringConvertible, Sendable {
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(height: Int, width: Int, channels: Int) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// A flat feature vector of `channels` values (1 × 1 × channels).
    public init(features: Int) { self.init(height: 1, width: 1, channels: features) }

    public var count: Int { height * width * channels }
    public var description: String { "\(height)x\(width)x\(channels)" }
}

/// A float32 activation in NHWC layout: a view over memory a layer owns.
///
/// Tensors are plain values (pointer and extents) so passing them between layers allocates nothing.
/// `batch` may be smaller than the batch a layer was built for (the last batch of an epoch).
public struct Tensor {
    public var data: UnsafeMutablePointer<Float>
    public var batch: Int
    public var shape: FeatureShape

    public init(data: UnsafeMutablePointer<Float>, batch: Int, shape: FeatureShape) {
        self.data = data
        self.batch = batch
        self.shape = shape
    }

    public init(storage: Storage, batch: Int, shape: FeatureShape) {
        precondition(batch * shape.count <= storage.count, "tensor \(batch)x\(shape) exceeds its storage of \(storage.count) floats")
        self.init(data: storage.pointer, batch: batch, shape: shape)
    }

    public var height: Int { shape.height }
    public var width: Int { shape.width }
    public var channels: Int { shape.channels }
    /// Rows of the NHWC matrix view: batch × height × width.
    public var rows: Int { batch * shape.height * shape.width }
    public var count: Int { batch * shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// Copies the values out (tests and debugging; allocates).
    public func toArray() -> [Float] { Array(buffer) }
}

/// Memory shared by buffers that are never in use at the same time (the input gradients of layers
/// whose backward passes do not overlap): sized to the largest of them, allocated once by
/// `allocate()` after every user has declared its size.
public final class SharedSlab {
    public private(set) var storage: Storage?
    /// Floats the largest user needs.
    public private(set) var count = 0

    public init() {}

    /// Declares a user of `floats` floats.
    public func require(_ floats: Int) { count = max(count, floats) }

    /// Allocates `count` floats (once; again only if users grew).
    public func allocate() {
        if let storage, storage.count >= count { return }
        storage = Storage(count: max(count, 1))
    }
}

/// A tensor together with the storage that backs it at the largest batch it was built for: its
/// own, or a `SharedSlab` it shares with buffers used at other times.
public final class ActivationBuffer {
    private let own: Storage?
    private let slab: SharedSlab?
    public let shape: FeatureShape
    public let maxBatch: Int

    public init(shape: FeatureShape, maxBatch: Int) {
        self.shape = shape
        self.maxBatch = maxBatch
        own = Storage(count: shape.count * maxBatch)
        slab = nil
    }

    /// A buffer in `slab`'s memory (usable once the slab is allocated).
    public init(shape: FeatureShape, maxBatch: Int, in slab: SharedSlab) {
        self.shape = shape
        self.maxBatch = maxBatch
        own = nil
        self.slab = slab
        slab.require(shape.count * maxBatch)
    }

    /// The memory behind the buffer.
    public var storage: Storage {
        if let own { return own }
        guard let storage = slab!.storage else { preconditionFailure("ActivationBuffer: shared memory used before it was allocated") }
        return storage
    }

    /// The view for a batch of `batch` samples (at most `maxBatch`).
    @inline(__always)
    public func tensor(batch: Int) -> Tensor {
        precondition(batch <= maxBatch, "batch \(batch) exceeds the \(maxBatch) this layer was built for")
        return Tensor(data: storage.pointer, batch: batch, shape: shape)
    }
}
