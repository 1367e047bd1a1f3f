import DTrainCore

/// Scratch of a non-float element type (reduction partials in Double, pooling indices in Int32)
/// that a layer allocates when it is built and keeps until it is rebuilt or freed.
final class ScratchBuffer<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int, fill: Element) {
        precondition(count >= 0, "ScratchBuffer count must be non-negative")
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: fill, count: max(count, 1))
    }

    deinit {
        pointer.deinitialize(count: max(count, 1))
        pointer.deallocate()
    }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// Runs `body(sample, channels)` over every sample of a batch in parallel. When the batch is
/// smaller than the thread count the channels are split too, so a batch of one still uses every
/// thread. Each call owns its (sample, channel range) slice exclusively, which makes scatters
/// (pooling backward) race-free and deterministic.
@inline(__always)
func parallelSamples(_ batch: Int, channels: Int, _ body: (Int, Range<Int>) -> Void) {
    if batch <= 0 || channels <= 0 { return }
    let threads = Compute.threads
    let groups = batch >= threads ? 1 : max(1, min(threads, channels / 16))
    parallelFor(batch * groups) { r in
        for unit in r {
            body(unit / groups, chunkRange(unit % groups, of: groups, count: channels))
        }
    }
}
