import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights

/// Moving weights between dtrain and PyTorch files: `dtrain import` and `dtrain export`.
public enum WeightsTransfer {
    /// Weights of model `name` read from `path` (.pth or safetensors, plain or a dtrain
    /// checkpoint) into a new model, checked strictly: every state entry present with its shape
    /// and nothing else (a checkpoint's optimizer state aside), else an error naming the keys. The
    /// number of classes is the file's head's unless `numClasses` is given. A file with dtrain's
    /// metadata for the same model keeps it (class names, preprocessing). With `ema`, the weights
    /// are the checkpoint's model EMA (`--model-ema`, `model_ema.module.<key>`).
    public static func importWeights(_ path: String, model name: String, numClasses: Int?,
                                     ema: Bool = false) throws -> (model: Model, info: CheckpointInfo, format: WeightsFormat) {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw CheckpointError(path: path, reason: "no such file") }
        let weights = try WeightsFile.read(url)
        let file = weights.tensors, format = weights.format
        var info = try weights.checkpointInfo(plainModel: name)
        if info.model != name {
            throw CheckpointError(path: path, reason: "holds a checkpoint of \(info.model), not \(name)")
        }
        if let numClasses { info.numClasses = numClasses }
        info.epoch = 0
        info.globalStep = 0
        info.samplesIntoEpoch = 0
        info.optimizerSteps = 0
        let model = try ModelZoo.make(name, options: info.modelOptions)
        if ema && file.entries[Checkpoint.emaCountKey] == nil {
            throw CheckpointError(path: path, reason: "holds no model EMA (\(Checkpoint.emaPrefix)*): it was trained without --model-ema")
        }
        do {
            if ema {
                try StateDict.load(file, into: model, prefix: Checkpoint.emaModulePrefix, source: path)
            } else {
                try StateDict.load(file, into: model, source: path, ignoringPrefixes: Checkpoint.nonModelPrefixes)
            }
        } catch let m as StateDictMismatch {
            throw CheckpointError(path: path, reason: "does not fit \(name) with \(info.numClasses) classes: " + m.description.replacingOccurrences(of: "\(path) does not fit the model: ", with: ""))
        }
        return (model, info, format)
    }

    /// The model tensors alone (no optimizer state), in torch's names, shapes and order, as a file
    /// of `format`: safetensors with dtrain's metadata and checksum, or torch.save's zip format
    /// with the metadata in `ARCHIVE/extra/dtrain.json` (torch.load ignores it).
    public static func exportData(model: Model, info: CheckpointInfo, format: WeightsFormat, archiveName: String) throws -> Data {
        switch format {
        case .pthLegacy, .pthTar:
            throw CheckpointError(path: archiveName, reason: "dtrain writes .pth files in torch.save's zip format only, not the \(format.description)")
        case .safetensors:
            return try Checkpoint.serialize(model: model, optimizer: nil, info: info)
        case .pth:
            var writer = PthWriter()
            for entry in model.state {
                switch entry.kind {
                case .parameter(let p):
                    try p.torchValues().withUnsafeBytes { try writer.add(entry.name, dtype: .f32, shape: p.torchShape, data: Data($0)) }
                case .buffer(let b):
                    try writer.add(entry.name, dtype: .f32, shape: b.torchShape, data: Data(buffer: UnsafeBufferPointer(b.storage.buffer)))
                case .counter(let c):
                    try withUnsafeBytes(of: c.value.littleEndian) { try writer.add(entry.name, dtype: .i64, shape: [], data: Data($0)) }
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]  // the same weights give the same file
            writer.extras["dtrain.json"] = try encoder.encode(info)
            return try writer.serialized(archiveName: archiveName)
        }
    }
}
