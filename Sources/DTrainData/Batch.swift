import DTrainCore

/// One batch handed out by `BatchLoader.next()`.
///
/// All memory belongs to the loader's preallocated slot and stays valid only until the next call
/// of `next()`, `start(epoch:indices:)` or `stop()` on that loader.
public struct Batch {
    /// Normalised images, NHWC `[count, resolution, resolution, 3]`.
    public let images: Tensor
    /// Class labels, `count` of them.
    public let labels: UnsafeMutablePointer<Int32>
    /// Samples in this batch (the last batch of an epoch may be smaller).
    public let count: Int
    /// The dataset indices actually loaded, in batch order: the requested ones, except where an
    /// unreadable sample was replaced.
    public let indices: UnsafeBufferPointer<Int>
    /// Position of this batch in the epoch, from 0.
    public let number: Int
    /// Samples of this batch that were replaced because they could not be read.
    public let replaced: Int
    /// Those replacements, in batch order; `position - number × batchSize` is the row of the
    /// batch holding the replacement (an evaluation leaves such rows out of its counts).
    public let skipped: [SkippedSample]

    /// The labels as a buffer of `count`.
    public var labelBuffer: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: labels, count: count) }
}

/// A sample the loader could not read and what it used instead.
public struct SkippedSample: Equatable, Sendable, CustomStringConvertible {
    /// The dataset index that was requested.
    public let index: Int
    /// The dataset index loaded in its place.
    public let replacement: Int
    /// `DataSource.sampleName(index)`.
    public let name: String
    /// Why it could not be read.
    public let reason: String
    /// Epoch and position in the epoch (batch number × batch size + position in the batch).
    public let epoch: Int
    public let position: Int

    public var description: String { "\(name): \(reason) (replaced by sample \(replacement))" }
}
