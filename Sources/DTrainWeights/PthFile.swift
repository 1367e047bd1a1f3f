import Foundation
import ZIPFoundation

/// A PyTorch state_dict read from torch.save's zip format (PyTorch ≥ 1.6, as torchvision's
/// published weights such as resnet34-b627a593.pth): `ARCHIVE/data.pkl` (a pickle of an
/// OrderedDict of tensors whose storages are persistent ids) and one raw little-endian record
/// `ARCHIVE/data/KEY` per storage.
///
/// The zip is read with ZIPFoundation (stored or deflated records, CRC-checked); the pickle with
/// `TorchUnpickler`, which builds values and never runs code. Tensors are returned contiguous in
/// torch's row-major order, whatever their strides and storage offsets, in the dict's order.
/// A training script's checkpoint is accepted too: a dict whose state_dict sits under
/// "state_dict", "model_state_dict", "model" or "net" (its other entries are read but not used),
/// and a "module." prefix on every key is dropped.
public struct PthFile {
    /// One entry of the state_dict.
    public struct Tensor {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Contiguous little-endian values, row-major.
        public let data: Data
    }

    /// The folder every record sits in (torch names it after the file).
    public let archiveName: String
    public let tensors: [Tensor]
    /// Records under `ARCHIVE/extra/` by name (dtrain keeps its training metadata there).
    public let extras: [String: Data]
    /// The key of a training checkpoint's dict the state_dict was found under ("state_dict",
    /// "model", …), nil when the file is a state_dict itself.
    public let wrapperKey: String?
    /// Whether every key started with "module." (DataParallel, DistributedDataParallel) and the
    /// prefix was dropped.
    public let strippedModulePrefix: Bool

    public init(contentsOf url: URL) throws {
        do { try self.init(reading: url) } catch let e as PthError {
            throw PthError("\(url.path): \(e.message)")
        }
    }

    private init(reading url: URL) throws {
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw PthError("not a zip archive; expected torch.save's format (PyTorch 1.6 or later; re-save older files with torch.save in a recent PyTorch)")
        }
        let pickles = archive.filter { $0.path.hasSuffix("data.pkl") && $0.path.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickleEntry = pickles.first else {
            throw PthError(pickles.isEmpty ? "no ARCHIVE/data.pkl record; expected a file written by torch.save"
                                           : "\(pickles.count) data.pkl records; expected one")
        }
        let prefix = String(pickleEntry.path.dropLast("data.pkl".count))
        archiveName = String(prefix.dropLast())

        func record(_ name: String) throws -> Data? {
            guard let entry = archive[prefix + name] else { return nil }
            var data = Data(capacity: Int(entry.uncompressedSize))
            let crc: CRC32
            do { crc = try archive.extract(entry, bufferSize: 1 << 20) { data.append($0) } } catch {
                throw PthError("record \(entry.path) cannot be read (\(error)); the file is truncated or corrupted")
            }
            guard crc == entry.checksum else { throw PthError("record \(entry.path): CRC mismatch; the file is corrupted") }
            return data
        }

        if let order = try record("byteorder"), let text = String(data: order, encoding: .utf8), text != "little" {
            throw PthError("byteorder is \(text); only little-endian files are supported")
        }
        guard let pickle = try record("data.pkl") else { throw PthError("\(prefix)data.pkl cannot be read") }
        let root = try TorchUnpickler.load(pickle)
        guard case .dict(let top) = root else {
            throw PthError("data.pkl holds \(root.kindDescription); expected a state_dict (an OrderedDict of tensors)")
        }
        let (dict, wrapper) = try PthFile.stateDict(in: top)
        self.wrapperKey = wrapper
        // DataParallel and DistributedDataParallel save their module's keys under "module.".
        let stripsModule = !dict.keys.isEmpty && dict.keys.allSatisfy { if case .string(let k) = $0 { return k.hasPrefix("module.") } else { return false } }
        self.strippedModulePrefix = stripsModule

        var storages: [String: Data] = [:]
        var tensors: [Tensor] = []
        for key in dict.keys {
            guard case .string(let fullName) = key else { throw PthError("state_dict key \(key) is not a string") }
            let name = stripsModule ? String(fullName.dropFirst("module.".count)) : fullName
            guard case .tensor(let ref)? = dict[key] else {
                throw PthError("state_dict entry \(fullName) is \(dict[key]!.kindDescription); expected a tensor")
            }
            let s = ref.storage
            if storages[s.key] == nil {
                guard let bytes = try record("data/\(s.key)") else { throw PthError("storage record data/\(s.key) of \(name) is missing") }
                guard bytes.count == s.numel * s.dtype.size else {
                    throw PthError("storage data/\(s.key) has \(bytes.count) bytes; \(s.numel) \(s.dtype.rawValue) elements need \(s.numel * s.dtype.size)")
                }
                storages[s.key] = bytes
            }
            tensors.append(Tensor(name: name, dtype: s.dtype, shape: ref.shape, data: PthFile.contiguous(ref, storages[s.key]!)))
        }
        self.tensors = tensors

        var extras: [String: Data] = [:]
        for entry in archive where entry.path.hasPrefix(prefix + "extra/") && entry.type == .file {
            let name = String(entry.path.dropFirst(prefix.count + "extra/".count))
            extras[name] = try record("extra/" + name)
        }
        self.extras = extras
    }

    /// The keys under which training scripts' checkpoints keep the model's state_dict.
    static let wrapperKeys = ["state_dict", "model_state_dict", "model", "net"]

    /// The state_dict in a pickled top-level dict: the dict itself when every value is a tensor,
    /// else a dict of tensors under one of `wrapperKeys` (a checkpoint such as {"epoch": …,
    /// "state_dict": …, "optimizer": …}), with that key.
    static func stateDict(in top: PickleDict) throws -> (PickleDict, String?) {
        func allTensors(_ d: PickleDict) -> Bool {
            d.keys.allSatisfy { if case .tensor? = d[$0] { return true } else { return false } }
        }
        if allTensors(top) { return (top, nil) }
        for key in wrapperKeys {
            if case .dict(let inner)? = top[.string(key)], !inner.keys.isEmpty, allTensors(inner) { return (inner, key) }
        }
        let offending = top.keys.first { if case .tensor? = top[$0] { return false } else { return true } }!
        throw PthError("data.pkl holds a dict whose entry \(offending) is \(top[offending]!.kindDescription), and none of "
                       + wrapperKeys.map { "\"\($0)\"" }.joined(separator: ", ")
                       + " holds a dict of tensors; expected a state_dict (an OrderedDict of tensors) or a checkpoint with one under those keys")
    }

    /// The elements of a strided view, copied out in row-major order.
    static func contiguous(_ ref: TorchTensorRef, _ storage: Data) -> Data {
        let size = ref.storage.dtype.size
        let count = ref.shape.reduce(1, *)
        if count == 0 { return Data() }
        var rowMajor = [Int](repeating: 1, count: ref.shape.count)
        for d in stride(from: ref.shape.count - 2, through: 0, by: -1) { rowMajor[d] = rowMajor[d + 1] * ref.shape[d + 1] }
        // Dimensions of extent 1 may carry any stride.
        let isContiguous = zip(zip(ref.shape, ref.stride), rowMajor).allSatisfy { $0.0.0 == 1 || $0.0.1 == $0.1 }
        return storage.withUnsafeBytes { (src: UnsafeRawBufferPointer) -> Data in
            if isContiguous {
                return Data(src[(ref.offset * size)..<((ref.offset + count) * size)])
            }
            var out = Data(count: count * size)
            out.withUnsafeMutableBytes { dst in
                var index = [Int](repeating: 0, count: ref.shape.count)
                var element = ref.offset
                for i in 0..<count {
                    (dst.baseAddress! + i * size).copyMemory(from: src.baseAddress! + element * size, byteCount: size)
                    // Odometer over the indices, last dimension fastest.
                    var d = ref.shape.count - 1
                    while d >= 0 {
                        index[d] += 1
                        element += ref.stride[d]
                        if index[d] < ref.shape[d] { break }
                        element -= ref.stride[d] * ref.shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
            return out
        }
    }

    /// The tensors as an in-memory safetensors file (same names, dtypes, shapes and order), so
    /// everything that reads weights takes either format.
    public func safeTensors(metadata: [String: String] = [:]) throws -> SafeTensorsFile {
        var writer = SafeTensorsWriter()
        writer.metadata = metadata
        for t in tensors { t.data.withUnsafeBytes { writer.add(t.name, dtype: t.dtype, shape: t.shape, bytes: $0) } }
        return try SafeTensorsFile(data: writer.serialized())
    }
}
