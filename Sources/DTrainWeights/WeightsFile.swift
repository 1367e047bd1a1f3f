import Foundation
import DTrainNN

/// The weight file formats dtrain reads wherever it takes a weights path.
public enum WeightsFormat: String, Sendable {
    /// safetensors (dtrain's checkpoints, safetensors.torch.save_file).
    case safetensors
    /// torch.save's zip format (PyTorch 1.6 and later; .pth, .pt).
    case pth
    /// torch.save's legacy pickle stream (PyTorch 0.4 to 1.5, or `_use_new_zipfile_serialization=False`).
    case pthLegacy = "pth-legacy"
    /// torch.save's tar archive (PyTorch 0.3 and earlier).
    case pthTar = "pth-tar"

    /// The format in words, for reports ("pth: torch.save zip format, PyTorch 1.6 or later").
    public var description: String {
        switch self {
        case .safetensors: return "safetensors"
        case .pth: return "pth: " + PthFile.Layout.zip.description
        case .pthLegacy: return "pth: " + PthFile.Layout.legacy.description
        case .pthTar: return "pth: " + PthFile.Layout.tar.description
        }
    }

    /// Whether dtrain writes this format (`dtrain export --format`).
    public var isWritable: Bool { self == .safetensors || self == .pth }

    init(_ layout: PthFile.Layout) {
        switch layout {
        case .zip: self = .pth
        case .legacy: self = .pthLegacy
        case .tar: self = .pthTar
        }
    }
}

/// A weights file read through dtrain's one door: every command that takes weights (train --resume
/// and --pretrained, eval, eval --watch, predict, import, export) reads them with `read`.
///
/// The format is recognised by content, not by extension (.pth, .pt, .th, .pth.tar alike): a zip
/// archive, torch.save's legacy magic number, a tar header, or safetensors' header length followed
/// by JSON. The content is verified wherever the file carries a check: a safetensors file's
/// "checksum" metadata (Checksum64 of all tensor bytes, which dtrain writes), every zip record's
/// CRC-32 for a .pth in the zip format (the older formats carry none beyond tar header checksums). dtrain's training state ("dtrain" metadata; a .pth's `extra/dtrain.json`)
/// is decoded and its format version checked. The tensors are served as a `SafeTensorsFile`.
public struct WeightsFile {
    /// What the content was checked against when it was read.
    public enum Verification: Equatable, Sendable {
        /// The stored Checksum64 (hex) matched the tensor bytes.
        case checksum(String)
        /// Every zip record's CRC-32 matched.
        case zipCRC
        /// The file carries no check (a safetensors state_dict from another tool).
        case unchecked
    }

    /// The file read.
    public let path: String
    /// Its format, by content.
    public let format: WeightsFormat
    /// The tensors, with the file's names, dtypes, shapes and order.
    public let tensors: SafeTensorsFile
    /// dtrain's training state when the file carries it; nil for plain weights.
    public let info: CheckpointInfo?
    /// What the content was checked against.
    public let verification: Verification
    /// Why the file's "dtrain" metadata could not be decoded, when it could not (the tensors are
    /// still usable as plain weights; `checkpointInfo` refuses them).
    let unreadableInfo: String?

    /// The format of the file at `url`, by its first bytes; a file in none of them is an error
    /// naming the formats tried.
    public static func format(of url: URL) throws -> WeightsFormat {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw CheckpointError(path: url.path, reason: "no such file or not readable")
        }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 512)
        if let layout = PthFile.layout(of: head) { return WeightsFormat(layout) }
        // safetensors: an 8-byte little-endian header length, then the JSON header.
        if head.count > 8, head[head.startIndex + 8] == UInt8(ascii: "{") { return .safetensors }
        throw CheckpointError(path: url.path, reason: "not a weights file dtrain reads; tried safetensors (an 8-byte header length, then JSON), "
                              + "torch.save's zip format (PyTorch 1.6 or later), its legacy format (0.4 to 1.5) and its tar format (0.3 or earlier)")
    }

    /// Reads and verifies the weights at `url`; throws an error naming the file and what is wrong.
    public static func read(_ url: URL) throws -> WeightsFile {
        let format = try format(of: url)
        let tensors: SafeTensorsFile
        let verification: Verification
        do {
            switch format {
            case .safetensors:
                tensors = try SafeTensorsFile(contentsOf: url)
                verification = .unchecked
            case .pth, .pthLegacy, .pthTar:
                let pth = try PthFile(contentsOf: url)
                var metadata: [String: String] = [:]
                for (name, data) in pth.extras where name.hasSuffix(".json") {
                    if let text = String(data: data, encoding: .utf8) { metadata[String(name.dropLast(5))] = text }
                }
                tensors = try pth.safeTensors(metadata: metadata)
                verification = pth.layout == .zip ? .zipCRC : .unchecked
            }
        } catch let e as PthError {
            throw e  // names the file and what is wrong with it
        } catch {
            throw CheckpointError(path: url.path, reason: "not a readable checkpoint (\(error))")
        }

        var info: CheckpointInfo?
        var unreadableInfo: String?
        if let text = tensors.metadata["dtrain"] {
            if let decoded = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8)) {
                guard decoded.formatVersion <= CheckpointInfo.currentFormatVersion else {
                    throw CheckpointError(path: url.path, reason: "checkpoint format \(decoded.formatVersion) is newer than this dtrain understands (\(CheckpointInfo.currentFormatVersion))")
                }
                info = decoded
            } else {
                unreadableInfo = "dtrain training state in the header is not readable; expected a checkpoint written by dtrain"
            }
        }
        var checked = verification
        if format == .safetensors, let stored = tensors.metadata["checksum"] {
            var checksum = Checksum64()
            tensors.payload.withUnsafeBytes { checksum.update($0) }
            guard checksum.hex == stored else {
                throw CheckpointError(path: url.path, reason: "checksum mismatch (stored \(stored), computed \(checksum.hex)): the file is corrupted")
            }
            checked = .checksum(stored)
        }
        return WeightsFile(path: url.path, format: format, tensors: tensors, info: info, verification: checked, unreadableInfo: unreadableInfo)
    }

    /// `read`'s tensors and format, for callers that need nothing else.
    public static func open(_ url: URL) throws -> (file: SafeTensorsFile, format: WeightsFormat) {
        let weights = try read(url)
        return (weights.tensors, weights.format)
    }

    /// dtrain's training state, or for plain weights (a torchvision .pth, a safetensors state_dict)
    /// what they stand for as weights of zoo model `plainModel`: the classes of their head and the
    /// model family's preprocessing at its default resolution. Without `plainModel`, plain weights
    /// are an error.
    public func checkpointInfo(plainModel: String?) throws -> CheckpointInfo {
        if let info { return info }
        if let unreadableInfo { throw CheckpointError(path: path, reason: unreadableInfo) }
        guard let plainModel else {
            throw CheckpointError(path: path, reason: "no dtrain training state in it (plain weights); give the model (--model NAME) or make a checkpoint with `dtrain import`")
        }
        let headWeight = try ModelZoo.make(plainModel, options: ModelOptions(numClasses: 1)).headName + ".weight"
        guard let head = tensors.entries[headWeight], head.shape.count == 2 else {
            throw CheckpointError(path: path, reason: "no \(headWeight) of two dimensions, so not weights of \(plainModel) (its head)")
        }
        return try CheckpointInfo.plain(model: plainModel, numClasses: head.shape[0])
    }
}
