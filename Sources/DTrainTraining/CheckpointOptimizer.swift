import Foundation
import DTrainNN
import DTrainWeights

// Checkpoints with an optimizer: its state buffers are what DTrainWeights saves and restores.

extension Checkpoint {
    /// The checkpoint of `model` with `optimizer`'s state (none when nil) and its EMA (when given),
    /// as bytes.
    public static func serialize(model: Model, optimizer: Optimizer?, ema: ModelEMA? = nil, info: CheckpointInfo) throws -> Data {
        try serialize(model: model, optimizerState: optimizer?.stateBuffers ?? [], info: info,
                      extra: { writer in ema?.write(into: &writer, model: model) })
    }

    /// Writes the checkpoint of `model` with `optimizer`'s state (none when nil) and its EMA (when
    /// given) atomically to `url`.
    public static func save(model: Model, optimizer: Optimizer?, ema: ModelEMA? = nil, info: CheckpointInfo, to url: URL) throws {
        try save(model: model, optimizerState: optimizer?.stateBuffers ?? [], info: info, to: url,
                 extra: { writer in ema?.write(into: &writer, model: model) })
    }

    /// Loads model tensors (and `optimizer`'s state, if given) from a verified file; with `ema`, the
    /// model tensors are the checkpoint's model EMA.
    public static func restore(_ file: SafeTensorsFile, path: String, into model: Model, optimizer: Optimizer?, ema: Bool = false) throws {
        try restore(file, path: path, into: model, optimizerState: optimizer?.stateBuffers ?? [], ema: ema)
    }
}
