import Foundation
import ZIPFoundation

/// A PyTorch state_dict read from any format torch.save has written, recognised by content:
///
/// - the zip format (PyTorch ≥ 1.6, as torchvision's newer weights such as resnet34-b627a593.pth):
///   `ARCHIVE/data.pkl` (a pickle of an OrderedDict of tensors whose storages are persistent ids)
///   and one raw little-endian record `ARCHIVE/data/KEY` per storage, read with ZIPFoundation
///   (stored or deflated records, CRC-checked);
/// - the legacy format (PyTorch 0.4–1.5, and `_use_new_zipfile_serialization=False`, as
///   torchvision's resnet50-19c8e357.pth): see `LegacyPthReader`;
/// - the tar format (PyTorch ≤ 0.3, as resnet18-5c106cde.pth): see `TarPthReader`.
///
/// Every pickle is read by `TorchUnpickler`, which builds values and never runs code. Tensors are
/// returned contiguous in torch's row-major order, whatever their strides and storage offsets, in
/// the dict's order. A training script's checkpoint is accepted too: a dict whose state_dict sits
/// under "state_dict", "model_state_dict", "model" or "net" (its other entries are read but not
/// used), and a "module." prefix on every key is dropped.
public struct PthFile {
    /// One entry of the state_dict.
    public struct Tensor {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Contiguous little-endian values, row-major.
        public let data: Data
    }

    /// torch.save's file layouts, by the PyTorch versions that write them.
    public enum Layout: String, Sendable {
        /// PyTorch ≥ 1.6's zip archive.
        case zip
        /// PyTorch 0.4–1.5's pickle stream (magic number, headers, pickle, raw storages).
        case legacy
        /// PyTorch ≤ 0.3's tar archive (storages, tensors, pickle).
        case tar

        public var description: String {
            switch self {
            case .zip: return "torch.save zip format, PyTorch 1.6 or later"
            case .legacy: return "torch.save legacy format, PyTorch 0.4 to 1.5"
            case .tar: return "torch.save tar format, PyTorch 0.3 or earlier"
            }
        }
    }

    /// Which of torch.save's layouts the file has.
    public let layout: Layout
    /// The folder every record sits in (torch names it after the file); empty for the older layouts.
    public let archiveName: String
    /// The state_dict's tensors, in its order.
    public let tensors: [Tensor]
    /// Records under `ARCHIVE/extra/` by name (dtrain keeps its training metadata there).
    public let extras: [String: Data]
    /// The key of a training checkpoint's dict the state_dict was found under ("state_dict",
    /// "model", …), nil when the file is a state_dict itself.
    public let wrapperKey: String?
    /// Whether every key started with "module." (DataParallel, DistributedDataParallel) and the
    /// prefix was dropped.
    public let strippedModulePrefix: Bool

    /// The layout of `data` by its first bytes, nil when it is none of torch.save's.
    public static func layout(of data: Data) -> Layout? {
        let head = [UInt8](data.prefix(512))
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .zip }
        if LegacyPthReader.startsWithMagic(head) { return .legacy }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) { return .tar }
        return nil
    }

    /// Reads the file at `url` in whichever layout it has; errors name the file.
    public init(contentsOf url: URL) throws {
        do { try self.init(reading: url) } catch let e as PthError {
            throw PthError("\(url.path): \(e.message)")
        }
    }

    private init(reading url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw PthError("cannot read (\(error.localizedDescription))")
        }
        guard let layout = PthFile.layout(of: data) else {
            throw PthError("not a file torch.save writes: neither its zip format (PyTorch 1.6 or later), its legacy format (0.4 to 1.5) nor its tar format (0.3 or earlier)")
        }
        self.layout = layout
        let read: (root: PickleValue, storage: (TorchStorageRef) throws -> Data)
        switch layout {
        case .zip:
            let zip = try ZipPthReader(url: url)
            archiveName = zip.archiveName
            extras = try zip.extras()
            read = (try zip.root(), zip.storage)
        case .legacy:
            let legacy = try LegacyPthReader(data)
            archiveName = ""
            extras = [:]
            read = (legacy.root, legacy.storage)
        case .tar:
            let tar = try TarPthReader(data)
            archiveName = ""
            extras = [:]
            read = (tar.root, tar.storage)
        }
        (tensors, wrapperKey, strippedModulePrefix) = try PthFile.stateDictTensors(read.root, storage: read.storage)
    }

    /// The tensors of the state_dict in a file's main pickle, each copied out of its storage.
    static func stateDictTensors(_ root: PickleValue, storage: (TorchStorageRef) throws -> Data) throws -> ([Tensor], String?, Bool) {
        guard case .dict(let top) = root else {
            throw PthError("the pickle holds \(root.kindDescription); expected a state_dict (an OrderedDict of tensors)")
        }
        let (dict, wrapper) = try PthFile.stateDict(in: top)
        // DataParallel and DistributedDataParallel save their module's keys under "module.".
        let stripsModule = !dict.keys.isEmpty && dict.keys.allSatisfy { if case .string(let k) = $0 { return k.hasPrefix("module.") } else { return false } }
        var entries: [(name: String, ref: TorchTensorRef)] = []
        for key in dict.keys {
            guard case .string(let fullName) = key else { throw PthError("state_dict key \(key) is not a string") }
            let name = stripsModule ? String(fullName.dropFirst("module.".count)) : fullName
            guard case .tensor(let ref)? = dict[key] else {
                throw PthError("state_dict entry \(fullName) is \(dict[key]?.kindDescription ?? "missing"); expected a tensor")
            }
            entries.append((name, ref))
        }
        // Every storage is read (each bounded by the file) before any tensor is copied out of one.
        var storages: [String: Data] = [:]
        for (_, ref) in entries where storages[ref.storage.key] == nil { storages[ref.storage.key] = try storage(ref.storage) }
        try checkExpansion(entries.map(\.ref), storageBytes: storages.values.reduce(0) { $0 + $1.count })
        var tensors: [Tensor] = []
        for (name, ref) in entries {
            guard let bytes = storages[ref.storage.key] else { throw PthError("storage \(ref.storage.key) of \(name) is missing") }
            tensors.append(Tensor(name: name, dtype: ref.storage.dtype, shape: ref.shape, data: try PthFile.contiguous(ref, bytes)))
        }
        return (tensors, wrapper, stripsModule)
    }

    /// The most bytes a strided (non-contiguous) tensor may expand to when copied out, and the
    /// most that all of a file's tensors together may need beyond its storages' own bytes.
    static let maxStridedBytes = 1 << 30

    /// Refuses, before any tensor is copied out, tensors whose copies together would need more
    /// than the file's storages (`storageBytes`) plus `maxStridedBytes`: a small file of stride-0
    /// views (`expand`) or of many views of one large storage would otherwise make reading it
    /// allocate gigabytes, each tensor within its own bound.
    static func checkExpansion(_ refs: [TorchTensorRef], storageBytes: Int) throws {
        var tensorBytes = 0
        for ref in refs {
            guard let count = ref.count else { throw PthError("tensor \(ref.shape) is too large") }
            let (bytes, o1) = count.multipliedReportingOverflow(by: ref.storage.dtype.size)
            let (total, o2) = tensorBytes.addingReportingOverflow(bytes)
            guard !o1 && !o2 else { throw PthError("tensor \(ref.shape) is too large") }
            tensorBytes = total
        }
        guard tensorBytes <= storageBytes + maxStridedBytes else {
            throw PthError("the tensors would expand to \(tensorBytes >> 20) MiB from \(storageBytes >> 20) MiB of storage; at most \(maxStridedBytes >> 20) MiB more is allowed")
        }
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
        let offending = top.keys.first { if case .tensor? = top[$0] { return false } else { return true } }
        let what = offending.map { "entry \($0) is \(top[$0]?.kindDescription ?? "missing")" } ?? "entries are not tensors"
        throw PthError("the pickle holds a dict whose \(what), and none of "
                       + wrapperKeys.map { "\"\($0)\"" }.joined(separator: ", ")
                       + " holds a dict of tensors; expected a state_dict (an OrderedDict of tensors) or a checkpoint with one under those keys")
    }

    /// The elements of a strided view, copied out in row-major order. `storage` holds the root
    /// storage's bytes; the view's own offset in it comes first.
    static func contiguous(_ ref: TorchTensorRef, _ storage: Data) throws -> Data {
        let size = ref.storage.dtype.size
        try ref.checkBounds()
        guard let count = ref.count else { throw PthError("tensor \(ref.shape) is too large") }
        if count == 0 { return Data() }
        let base = ref.storage.offset + ref.offset
        // The root storage must hold the view: checked where the storage was read, again here.
        guard ref.storage.offset + ref.storage.numel <= storage.count / size else {
            throw PthError("storage \(ref.storage.key) holds \(storage.count / size) elements; a view needs \(ref.storage.offset + ref.storage.numel)")
        }
        var rowMajor = [Int](repeating: 1, count: ref.shape.count)
        for d in stride(from: ref.shape.count - 2, through: 0, by: -1) { rowMajor[d] = rowMajor[d + 1] * ref.shape[d + 1] }
        // Dimensions of extent 1 may carry any stride.
        let isContiguous = zip(zip(ref.shape, ref.stride), rowMajor).allSatisfy { $0.0.0 == 1 || $0.0.1 == $0.1 }
        // A contiguous view is bounded by the file; a strided one (stride 0 repeats elements) is
        // copied out, so its size is capped before anything is allocated.
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard isContiguous || (!overflow && bytes <= PthFile.maxStridedBytes) else {
            throw PthError("tensor \(ref.shape) with strides \(ref.stride) would expand to more than \(PthFile.maxStridedBytes >> 20) MiB")
        }
        return storage.withUnsafeBytes { (src: UnsafeRawBufferPointer) -> Data in
            if isContiguous {
                return Data(src[(base * size)..<((base + count) * size)])
            }
            var out = Data(count: count * size)
            out.withUnsafeMutableBytes { dst in
                var index = [Int](repeating: 0, count: ref.shape.count)
                var element = base
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

/// torch.save's zip format read with ZIPFoundation: every record CRC-checked.
struct ZipPthReader {
    let archive: Archive
    /// "ARCHIVE/": the folder every record sits in.
    let prefix: String
    var archiveName: String { String(prefix.dropLast()) }

    init(url: URL) throws {
        try ZipDirectoryBounds.check(url)
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw PthError("not a zip archive; expected torch.save's format (PyTorch 1.6 or later)")
        }
        let pickles = archive.filter { $0.path.hasSuffix("data.pkl") && $0.path.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickleEntry = pickles.first else {
            throw PthError(pickles.isEmpty ? "no ARCHIVE/data.pkl record; expected a file written by torch.save"
                                           : "\(pickles.count) data.pkl records; expected one")
        }
        prefix = String(pickleEntry.path.dropLast("data.pkl".count))
        if let order = try record("byteorder"), let text = String(data: order, encoding: .utf8), text != "little" {
            throw PthError("byteorder is \(text); only little-endian files are supported")
        }
    }

    func record(_ name: String) throws -> Data? {
        guard let entry = archive[prefix + name] else { return nil }
        var data = Data(capacity: Int(min(entry.uncompressedSize, 1 << 30)))
        let crc: CRC32
        do { crc = try archive.extract(entry, bufferSize: 1 << 20) { data.append($0) } } catch {
            throw PthError("record \(entry.path) cannot be read (\(error)); the file is truncated or corrupted")
        }
        guard crc == entry.checksum else { throw PthError("record \(entry.path): CRC mismatch; the file is corrupted") }
        return data
    }

    func root() throws -> PickleValue {
        guard let pickle = try record("data.pkl") else { throw PthError("\(prefix)data.pkl cannot be read") }
        return try TorchUnpickler.load(pickle, persistentIDs: .zipStorages)
    }

    func storage(_ s: TorchStorageRef) throws -> Data {
        guard let bytes = try record("data/\(s.key)") else { throw PthError("storage record data/\(s.key) is missing") }
        let (need, overflow) = s.numel.multipliedReportingOverflow(by: s.dtype.size)
        guard !overflow, bytes.count == need else {
            throw PthError("storage data/\(s.key) has \(bytes.count) bytes; \(s.numel) \(s.dtype.rawValue) elements need \(overflow ? "more than fit 64 bits" : String(need))")
        }
        return bytes
    }

    func extras() throws -> [String: Data] {
        var extras: [String: Data] = [:]
        for entry in archive where entry.path.hasPrefix(prefix + "extra/") && entry.type == .file {
            let name = String(entry.path.dropFirst(prefix.count + "extra/".count))
            extras[name] = try record("extra/" + name)
        }
        return extras
    }
}
