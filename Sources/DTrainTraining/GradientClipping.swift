import DTrainCore
import DTrainNN

/// `torch.nn.utils.clip_grad_norm_(parameters, maxNorm)` over a model's flat gradient buffer:
/// the total L2 norm of the trainable parameters' gradients, and when `maxNorm / (norm + 1e-6)`
/// is below 1 every gradient multiplied by it (`--clip-grad-norm`). `TrainingStep` applies it to
/// the averaged gradients, after the allreduce and before the optimizer update, so every rank
/// clips the same gradients the same way.
///
/// The norm is summed in double precision over fixed chunks of the trainable elements, combined
/// in chunk order: the result depends only on the gradients, never on the thread count (which may
/// differ between nodes). Everything is allocated at init; `clip()` allocates nothing.
public final class GradientClipping {
    public let store: ParameterStore
    public let maxNorm: Float
    /// The trainable elements of each chunk, as ranges of the flat buffer.
    private let chunks: [[Range<Int>]]
    private let partial: UnsafeMutablePointer<Double>
    /// The total norm found by the last `clip()`, before clipping.
    public private(set) var lastNorm: Float = 0

    /// Elements per chunk of the norm's sum.
    static let chunkElements = 1 << 16

    public init(store: ParameterStore, maxNorm: Float) {
        precondition(maxNorm > 0 && maxNorm.isFinite, "maxNorm must be a positive number")
        self.store = store
        self.maxNorm = maxNorm
        // Contiguous runs of trainable parameters, then cut into chunks of at most chunkElements.
        var runs: [Range<Int>] = []
        for p in store.parameters where p.trainable && p.count > 0 {
            if let last = runs.last, last.upperBound == p.offset {
                runs[runs.count - 1] = last.lowerBound..<(p.offset + p.count)
            } else {
                runs.append(p.offset..<(p.offset + p.count))
            }
        }
        var chunks: [[Range<Int>]] = []
        var current: [Range<Int>] = [], filled = 0
        for run in runs {
            var start = run.lowerBound
            while start < run.upperBound {
                let end = min(run.upperBound, start + (GradientClipping.chunkElements - filled))
                current.append(start..<end)
                filled += end - start
                start = end
                if filled == GradientClipping.chunkElements {
                    chunks.append(current)
                    current = []
                    filled = 0
                }
            }
        }
        if !current.isEmpty { chunks.append(current) }
        self.chunks = chunks
        partial = .allocate(capacity: max(1, chunks.count))
    }

    deinit { partial.deallocate() }

    /// Clips the store's gradients in place; returns their total norm before clipping.
    @discardableResult
    public func clip() -> Float {
        guard !chunks.isEmpty else { return 0 }
        let g = store.grads.pointer, partial = self.partial
        chunks.withUnsafeBufferPointer { chunks in
            parallelChunks(chunks.count, chunks: chunks.count) { c, _ in
                var sum = 0.0
                for range in chunks[c] {
                    for i in range { let v = Double(g[i]); sum += v * v }
                }
                partial[c] = sum
            }
        }
        var total = 0.0
        for c in 0..<chunks.count { total += partial[c] }
        let norm = Float(total.squareRoot())
        lastNorm = norm
        let coefficient = maxNorm / (norm + 1e-6)
        // torch multiplies by min(coefficient, 1); a NaN coefficient (a NaN norm) spreads as there.
        guard !(coefficient >= 1) else { return norm }
        chunks.withUnsafeBufferPointer { chunks in
            parallelChunks(chunks.count, chunks: chunks.count) { c, _ in
                for range in chunks[c] {
                    for i in range { g[i] *= coefficient }
                }
            }
        }
        return norm
    }
}
