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

/// A tensor together with the storage that backs it at the largest batch it was built for.
public final class ActivationBuffer {
    public let storage: Storage
    public let shape: FeatureShape
    public let maxBatch: Int

    public init(shape: FeatureShape, maxBatch: Int) {
        self.shape = shape
        self.maxBatch = maxBatch
        storage = Storage(count: shape.count * maxBatch)
    }

    /// The view for a batch of `batch` samples (at most `maxBatch`).
    @inline(__always)
    public func tensor(batch: Int) -> Tensor {
        precondition(batch <= maxBatch, "batch \(batch) exceeds the \(maxBatch) this layer was built for")
        return Tensor(data: storage.pointer, batch: batch, shape: shape)
    }
}
