import Foundation
import DTrainCore
import DTrainNN

/// dtrain's checkpoint: one safetensors file.
///
/// - Model tensors carry torchvision's state_dict names, torch's shapes and memory order, so
///   `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch unchanged
///   (tensors under `optimizer.` are skipped by passing only the model keys; see README).
/// - Optimizer state goes under `optimizer.<buffer>.<parameter name>`, in torch order. It comes in
///   as named buffers over the model's parameter store, so no optimizer type is needed here.
/// - A run with `--model-ema` adds its EMA as torchvision's `checkpoint["model_ema"]` (an
///   AveragedModel's state_dict), flattened: `model_ema.n_averaged` and `model_ema.module.<key>`.
/// - `__metadata__` holds "format" ("pt"), "dtrain" (CheckpointInfo as JSON) and "checksum"
///   (Checksum64 of all tensor bytes), so a truncated or corrupted file is a clear error.
/// - Files are written atomically (temporary file, fsync, rename).
public enum Checkpoint {
    /// The prefix of optimizer state tensors' names: `optimizer.<buffer>.<parameter name>`.
    public static let optimizerPrefix = "optimizer."
    /// The prefix of the model EMA's tensors: `model_ema.n_averaged` and `model_ema.module.<key>`
    /// (torchvision's `checkpoint["model_ema"]`, AveragedModel's state_dict, under one prefix).
    public static let emaPrefix = "model_ema."
    /// The prefix of the EMA's copy of each model tensor.
    public static let emaModulePrefix = "model_ema.module."
    /// AveragedModel's count of updates averaged (int64, shape []).
    public static let emaCountKey = "model_ema.n_averaged"
    /// Tensors of a checkpoint that are not the model's: optimizer state and the model EMA.
    public static let nonModelPrefixes = [optimizerPrefix, emaPrefix]

    /// A buffer of optimizer state laid out like the model's parameter store (momentum, Adam's
    /// moments), by the name torch gives it ("momentum_buffer", "exp_avg").
    public typealias StateBuffer = (name: String, storage: Storage)

    /// The model's parameters in the store's order, each with its state_dict name: built once per
    /// save or restore instead of searching the state for every parameter.
    static func parameterNames(_ model: Model, path: String) throws -> [(name: String, parameter: Parameter)] {
        var names: [ObjectIdentifier: String] = [:]
        for entry in model.state {
            if case .parameter(let p) = entry.kind { names[ObjectIdentifier(p)] = entry.name }
        }
        return try model.store.parameters.map { p in
            guard let name = names[ObjectIdentifier(p)] else {
                throw CheckpointError(path: path, reason: "a parameter of \(p.count) values at offset \(p.offset) of the store has no state_dict name")
            }
            return (name, p)
        }
    }

    /// The checkpoint of `model` with `optimizerState` (no buffers: the model alone), as bytes;
    /// `extra` adds tensors of other state under their own prefix (the model EMA's).
    public static func serialize(model: Model, optimizerState: [StateBuffer], info: CheckpointInfo,
                                 extra: (inout SafeTensorsWriter) throws -> Void = { _ in }) throws -> Data {
        var writer = SafeTensorsWriter()
        StateDict.write(model, into: &writer)
        if !optimizerState.isEmpty {
            let parameters = try parameterNames(model, path: "checkpoint")
            for (bufferName, storage) in optimizerState {
                guard storage.count >= model.store.count else {
                    throw CheckpointError(path: "checkpoint", reason: "optimizer state \(bufferName) holds \(storage.count) values for a store of \(model.store.count)")
                }
                for (name, p) in parameters {
                    let slice = Array(UnsafeBufferPointer(start: storage.pointer + p.offset, count: p.count))
                    writer.add("\(optimizerPrefix)\(bufferName).\(name)", floats: p.torchOrder(slice), shape: p.torchShape)
                }
            }
        }
        try extra(&writer)
        var checksum = Checksum64()
        writer.withPayload { checksum.update($0) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same state gives the same file, byte for byte
        let json = try encoder.encode(info)
        writer.metadata = ["format": "pt", "dtrain": String(decoding: json, as: UTF8.self), "checksum": checksum.hex]
        return writer.serialized()
    }

    /// Writes atomically to `url`.
    public static func save(model: Model, optimizerState: [StateBuffer], info: CheckpointInfo, to url: URL,
                            extra: (inout SafeTensorsWriter) throws -> Void = { _ in }) throws {
        try AtomicFile.write(try serialize(model: model, optimizerState: optimizerState, info: info, extra: extra), to: url)
    }

    /// Reads and verifies a checkpoint (structure, format version, checksum) without applying it,
    /// through `WeightsFile.read`. Either format is read: dtrain's safetensors, or a .pth that
    /// `dtrain export` wrote (its metadata in an extra record; the zip's CRCs stand for the checksum).
    ///
    /// With `plainModel`, weights without dtrain's metadata (a torchvision .pth, a safetensors
    /// state_dict) are taken as that model's, with the number of classes of their head and the
    /// model family's preprocessing at its default resolution.
    public static func read(_ url: URL, plainModel: String? = nil) throws -> (file: SafeTensorsFile, info: CheckpointInfo) {
        let weights = try WeightsFile.read(url)
        return (weights.tensors, try weights.checkpointInfo(plainModel: plainModel))
    }

    /// Loads model tensors (and optimizer state buffers, if given) from a verified file. With
    /// `ema`, the model tensors are the EMA's (`model_ema.module.<key>`), which the file must hold.
    public static func restore(_ file: SafeTensorsFile, path: String, into model: Model, optimizerState: [StateBuffer],
                               ema: Bool = false) throws {
        if ema && file.entries[emaCountKey] == nil {
            throw CheckpointError(path: path, reason: "holds no model EMA (\(emaPrefix)*): it was trained without --model-ema")
        }
        do {
            if ema {
                try StateDict.load(file, into: model, prefix: emaModulePrefix, source: path)
            } else {
                try StateDict.load(file, into: model, source: path, ignoringPrefixes: nonModelPrefixes)
            }
        } catch let m as StateDictMismatch {
            throw CheckpointError(path: path, reason: m.description)
        }
        guard !optimizerState.isEmpty else { return }
        let parameters = try parameterNames(model, path: path)
        for (bufferName, storage) in optimizerState {
            guard storage.count >= model.store.count else {
                throw CheckpointError(path: path, reason: "optimizer state \(bufferName) holds \(storage.count) values for a store of \(model.store.count)")
            }
            for (name, p) in parameters {
                let key = "\(optimizerPrefix)\(bufferName).\(name)"
                guard let entry = file.entries[key] else {
                    throw CheckpointError(path: path, reason: "optimizer state \(key) is missing")
                }
                guard entry.count == p.count else {
                    throw CheckpointError(path: path, reason: "optimizer state \(key) has shape \(entry.shape); the parameter has \(p.torchShape)")
                }
                let v = p.internalOrder(try file.floats(key))
                (storage.pointer + p.offset).update(from: v, count: p.count)
            }
        }
    }
}
