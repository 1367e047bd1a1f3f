import DTrainCore
import DTrainNN

/// An optimizer over a model's flat parameter buffer.
public protocol Optimizer: AnyObject {
    var store: ParameterStore { get }
    /// Applies one update with learning rate `lr` (per parameter group multipliers already folded in).
    func step(lr: Float)
    /// Updates applied so far.
    var steps: Int { get set }
    /// Per-element state buffers laid out like the store's values, by name ("momentum_buffer", …),
    /// for checkpoints.
    var stateBuffers: [(name: String, storage: Storage)] { get }
    /// Learning-rate multipliers over ranges of the flat buffer (torch's parameter groups with
    /// their own lr): the head's `--head-lr-mult`. One segment of 1 by default.
    var learningRateScales: LearningRateScales { get set }
}

/// Multipliers of the learning rate over consecutive ranges of a flat parameter buffer.
public struct LearningRateScales: Sendable {
    /// Ranges covering the buffer in order, each with its multiplier.
    public private(set) var segments: [(range: Range<Int>, scale: Float)]

    public init(count: Int) { segments = [(0..<count, 1)] }

    /// Multiplies the rate by `scale` on `range` (replacing what was set there).
    public mutating func set(_ scale: Float, on range: Range<Int>) {
        func clip(_ low: Int, _ high: Int) -> Range<Int> { low < high ? low..<high : low..<low }
        var out: [(range: Range<Int>, scale: Float)] = []
        for seg in segments {
            let parts = [(clip(seg.range.lowerBound, min(seg.range.upperBound, range.lowerBound)), seg.scale),
                         (clip(max(seg.range.lowerBound, range.lowerBound), min(seg.range.upperBound, range.upperBound)), scale),
                         (clip(max(seg.range.lowerBound, range.upperBound), seg.range.upperBound), seg.scale)]
            for (r, sc) in parts where !r.isEmpty { out.append((r, sc)) }
        }
        segments = out
    }
}
