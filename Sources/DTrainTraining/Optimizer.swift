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
}
