import Foundation
import DTrainCore
import DTrainNN
import DTrainData

/// Everything besides tensors that a checkpoint records, stored as JSON in the safetensors
/// header's metadata under "dtrain".
public struct CheckpointInfo: Codable, Equatable, Sendable {
    public static let currentFormatVersion = 1

    public var formatVersion = CheckpointInfo.currentFormatVersion
    public var dtrainVersion = ""
    public var model: String
    public var numClasses: Int
    public var zeroInitResidual = false
    public var cifarShortcut: String?
    /// Epochs completed, and where the run stands inside the next one.
    public var epoch = 0
    public var globalStep = 0
    /// Samples of the current epoch's global order already consumed (resumable at any world size).
    public var samplesIntoEpoch = 0
    public var seed: UInt64 = 0
    public var worldSize = 1
    public var classNames: [String] = []
    public var mean: [Double] = []
    public var std: [Double] = []
    public var resolution = 0
    public var preset = ""
    public var bestTop1: Double?
    public var optimizer = "sgd"
    public var optimizerSteps = 0
    /// Free-form training settings (learning-rate schedule and the like) for exact resume.
    public var settings: [String: String] = [:]

    public init(model: String, numClasses: Int) {
        self.model = model
        self.numClasses = numClasses
    }
}

/// A checkpoint that cannot be used: the file and why.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// dtrain's checkpoint: one safetensors file.
///
/// - Model tensors carry torchvision's state_dict names, torch's shapes and memory order, so
///   `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch unchanged
///   (tensors under `optimizer.` are skipped by passing only the model keys; see README).
/// - Optimizer state goes under `optimizer.<buffer>.<parameter name>`, in torch order.
/// - `__metadata__` holds "format" ("pt"), "dtrain" (CheckpointInfo as JSON) and "checksum"
///   (Checksum64 of all tensor bytes), so a truncated or corrupted file is a clear error.
/// - Files are written atomically (temporary file, fsync, rename).
public enum Checkpoint {
    public static let optimizerPrefix = "optimizer."

    public static func serialize(model: Model, optimizer: Optimizer?, info: CheckpointInfo) throws -> Data {
        var writer = SafeTensorsWriter()
        StateDict.write(model, into: &writer)
        if let optimizer {
            for (bufferName, storage) in optimizer.stateBuffers {
                for p in model.store.parameters {
                    let name = model.state.first { if case .parameter(let q) = $0.kind { return q === p } else { return false } }!.name
                    let slice = Array(UnsafeBufferPointer(start: storage.pointer + p.offset, count: p.count))
                    writer.add("\(optimizerPrefix)\(bufferName).\(name)", floats: p.torchOrder(slice), shape: p.torchShape)
                }
            }
        }
        var checksum = Checksum64()
        writer.withPayload { checksum.update($0) }
        let json = try JSONEncoder().encode(info)
        writer.metadata = ["format": "pt", "dtrain": String(data: json, encoding: .utf8)!, "checksum": checksum.hex]
        return writer.serialized()
    }

    /// Writes atomically to `url`.
    public static func save(model: Model, optimizer: Optimizer?, info: CheckpointInfo, to url: URL) throws {
        try AtomicFile.write(try serialize(model: model, optimizer: optimizer, info: info), to: url)
    }

    /// Reads and verifies a checkpoint (structure, format version, checksum) without applying it.
    /// Either format is read: dtrain's safetensors, or a .pth that `dtrain export` wrote (its
    /// metadata in an extra record; the zip's CRCs stand for the checksum).
    ///
    /// With `plainModel`, weights without dtrain's metadata (a torchvision .pth, a safetensors
    /// state_dict) are taken as that model's, with the number of classes of their head and the
    /// model family's preprocessing at its default resolution.
    public static func read(_ url: URL, plainModel: String? = nil) throws -> (file: SafeTensorsFile, info: CheckpointInfo) {
        let file: SafeTensorsFile
        do { file = try WeightsFile.open(url).file } catch let e as PthError {
            throw e  // names the file and what is wrong with it
        } catch {
            throw CheckpointError(path: url.path, reason: "not a readable checkpoint (\(error))")
        }
        guard let text = file.metadata["dtrain"] else {
            guard let plainModel else {
                throw CheckpointError(path: url.path, reason: "no dtrain training state in it (plain weights); give the model (--model NAME) or make a checkpoint with `dtrain import`")
            }
            return (file, try plainInfo(file, model: plainModel, path: url.path))
        }
        guard let info = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8)) else {
            throw CheckpointError(path: url.path, reason: "dtrain training state in the header is not readable; expected a checkpoint written by dtrain")
        }
        guard info.formatVersion <= CheckpointInfo.currentFormatVersion else {
            throw CheckpointError(path: url.path, reason: "checkpoint format \(info.formatVersion) is newer than this dtrain understands (\(CheckpointInfo.currentFormatVersion))")
        }
        if let stored = file.metadata["checksum"] {
            var checksum = Checksum64()
            file.payload.withUnsafeBytes { checksum.update($0) }
            guard checksum.hex == stored else {
                throw CheckpointError(path: url.path, reason: "checksum mismatch (stored \(stored), computed \(checksum.hex)): the file is corrupted")
            }
        }
        return (file, info)
    }

    /// What plain weights of `model` stand for: the head's classes, the family's preprocessing.
    static func plainInfo(_ file: SafeTensorsFile, model name: String, path: String) throws -> CheckpointInfo {
        let spec = try ModelZoo.spec(named: name)
        let probe = try ModelZoo.make(name, options: ModelOptions(numClasses: 1))
        let headWeight = probe.headName + ".weight"
        guard let head = file.entries[headWeight], head.shape.count == 2 else {
            throw CheckpointError(path: path, reason: "no \(headWeight) of two dimensions, so not weights of \(name) (its head)")
        }
        var info = CheckpointInfo(model: name, numClasses: head.shape[0])
        let preset: Preset = spec.family == .cifar ? .cifar : .imagenet
        info.preset = preset.rawValue
        info.mean = preset.mean.map(Double.init)
        info.std = preset.std.map(Double.init)
        info.resolution = spec.defaultResolution
        return info
    }

    /// Loads model tensors (and optimizer state, if given) from a verified file.
    public static func restore(_ file: SafeTensorsFile, path: String, into model: Model, optimizer: Optimizer?) throws {
        do { try StateDict.load(file, into: model, source: path, ignoringPrefixes: [optimizerPrefix]) } catch let m as StateDictMismatch {
            throw CheckpointError(path: path, reason: m.description)
        }
        guard let optimizer else { return }
        for (bufferName, storage) in optimizer.stateBuffers {
            for entry in model.state {
                guard case .parameter(let p) = entry.kind else { continue }
                let key = "\(optimizerPrefix)\(bufferName).\(entry.name)"
                guard file.entries[key] != nil else {
                    throw CheckpointError(path: path, reason: "optimizer state \(key) is missing")
                }
                let v = p.internalOrder(try file.floats(key))
                (storage.pointer + p.offset).update(from: v, count: p.count)
            }
        }
    }
}
