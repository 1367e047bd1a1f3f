import Foundation
import DTrainNN
import DTrainWeights

// Checkpoints with an optimizer: its state buffers are what DTrainWeights saves and restores.

extension Checkpoint {
    /// The checkpoint of `model` with `optimizer`'s state (none when nil), as bytes.
    public static func serialize(model: Model, optimizer: Optimizer?, info: CheckpointInfo) throws -> Data {
        try serialize(model: model, optimizerState: optimizer?.stateBuffers ?? [], info: info)
    }

    /// Writes the checkpoint of `model` with `optimizer`'s state (none when nil) atomically to `url`.
    public static func save(model: Model, optimizer: Optimizer?, info: CheckpointInfo, to url: URL) throws {
        try save(model: model, optimizerState: optimizer?.stateBuffers ?? [], info: info, to: url)
    }

    /// Loads model tensors (and `optimizer`'s state, if given) from a verified file.
    public static func restore(_ file: SafeTensorsFile, path: String, into model: Model, optimizer: Optimizer?) throws {
        try restore(file, path: path, into: model, optimizerState: optimizer?.stateBuffers ?? [])
    }
}
