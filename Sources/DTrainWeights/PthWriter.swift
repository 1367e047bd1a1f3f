import Foundation

/// Writes a state_dict in torch.save's zip format, so that `torch.load(path, weights_only=True)`
/// returns an OrderedDict of tensors (each contiguous, with its own storage).
///
/// Records, in torch's order, all under the archive folder: data.pkl (protocol 2, the opcodes torch
/// itself emits), .format_version, .storage_alignment, byteorder, data/0, data/1, …, version,
/// .data/serialization_id; then any `extra/NAME` records (torch.load ignores them). The
/// serialization id is derived from the content, so the same tensors give the same file.
public struct PthWriter {
    private var tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], data: Data)] = []
    /// Extra records stored as `ARCHIVE/extra/NAME`.
    public var extras: [String: Data] = [:]

    public init() {}

    /// Adds a tensor of `shape` whose contiguous little-endian values are `data`.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], data: Data) throws {
        guard TorchGlobal.storage(for: dtype) != nil else { throw PthError("\(name): dtype \(dtype.rawValue) cannot be written to .pth (F32, F16, BF16 or I64)") }
        guard data.count == shape.reduce(1, *) * dtype.size else { throw PthError("\(name): \(data.count) bytes do not hold \(shape) of \(dtype.rawValue)") }
        tensors.append((name, dtype, shape, data))
    }

    /// The pickle of the OrderedDict: storages are persistent ids ('storage', type, key, 'cpu', numel).
    func pickle() -> Data {
        var p = PickleEmitter()
        p.proto()
        var memo: [String: Int] = [:]
        func global(_ g: TorchGlobal) {
            if let i = memo[g.qualifiedName] { p.get(i); return }
            p.global(g.module, g.name)
            memo[g.qualifiedName] = p.put()
        }
        global(.orderedDict)
        p.emptyTuple()
        p.reduce()
        _ = p.put()
        // Python's pickle batches dict items 1,000 to a SETITEMS.
        for batch in stride(from: 0, to: tensors.count, by: 1000) {
            p.mark()
            for (key, t) in tensors[batch..<min(batch + 1000, tensors.count)].enumerated() {
                p.unicode(t.name)
                global(.rebuildTensorV2)
                p.mark()
                p.mark()
                p.unicode("storage")
                global(TorchGlobal.storage(for: t.dtype)!)
                p.unicode(String(batch + key))
                p.unicode("cpu")
                p.int(t.shape.reduce(1, *))
                p.tuple()
                p.persistentID()
                p.int(0)
                p.intTuple(t.shape)
                var strides = [Int](repeating: 1, count: t.shape.count)
                for d in stride(from: t.shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * t.shape[d + 1] }
                p.intTuple(strides)
                p.newFalse()
                global(.orderedDict)
                p.emptyTuple()
                p.reduce()
                p.tuple()
                p.reduce()
            }
            p.setItems()
        }
        p.stop()
        return p.data
    }

    /// The archive for a file whose name (without extension) is `archiveName`.
    public func serialized(archiveName: String) throws -> Data {
        let root = archiveName.isEmpty ? "archive" : archiveName
        var zip = TorchZipWriter()
        try zip.add("\(root)/data.pkl", pickle())
        try zip.add("\(root)/.format_version", Data("1".utf8))
        try zip.add("\(root)/.storage_alignment", Data("64".utf8))
        try zip.add("\(root)/byteorder", Data("little".utf8))
        var checksum = Checksum64()
        for (i, t) in tensors.enumerated() {
            try zip.add("\(root)/data/\(i)", t.data)
            t.data.withUnsafeBytes { checksum.update($0) }
        }
        try zip.add("\(root)/version", Data("3\n".utf8))
        // torch writes a 40-digit decimal id; ours is the content checksum, zero-padded.
        let id = String(checksum.value)
        try zip.add("\(root)/.data/serialization_id", Data((String(repeating: "0", count: 40 - id.count) + id).utf8))
        for name in extras.keys.sorted() { try zip.add("\(root)/extra/\(name)", extras[name]!) }
        return zip.finished()
    }
}

/// Emits protocol-2 pickle opcodes.
struct PickleEmitter {
    private(set) var data = Data()
    private var memoCount = 0

    mutating func proto() { data.append(contentsOf: [0x80, 2]) }
    mutating func stop() { data.append(0x2E) }
    mutating func mark() { data.append(0x28) }
    mutating func emptyTuple() { data.append(0x29) }
    mutating func tuple() { data.append(0x74) }
    mutating func reduce() { data.append(0x52) }
    mutating func setItems() { data.append(0x75) }
    mutating func persistentID() { data.append(0x51) }
    mutating func newFalse() { data.append(0x89) }

    mutating func global(_ module: String, _ name: String) {
        data.append(0x63)
        data.append(contentsOf: Array("\(module)\n\(name)\n".utf8))
    }

    mutating func unicode(_ s: String) {
        let bytes = Array(s.utf8)
        data.append(0x58)
        le(UInt32(bytes.count))
        data.append(contentsOf: bytes)
    }

    mutating func int(_ v: Int) {
        switch v {
        case 0..<256: data.append(contentsOf: [0x4B, UInt8(v)])
        case 256..<65536: data.append(0x4D); le(UInt16(v))
        case Int(Int32.min)...Int(Int32.max): data.append(0x4A); le(Int32(v))
        default: data.append(contentsOf: [0x8A, 8]); le(Int64(v))
        }
    }

    /// A tuple of ints (TUPLE1/2/3 for short ones, as pickle does).
    mutating func intTuple(_ values: [Int]) {
        if values.isEmpty { emptyTuple(); return }
        if values.count > 3 { mark() }
        for v in values { int(v) }
        switch values.count {
        case 1: data.append(0x85)
        case 2: data.append(0x86)
        case 3: data.append(0x87)
        default: tuple()
        }
    }

    /// Stores the top of the stack in the memo; returns its index.
    mutating func put() -> Int {
        let i = memoCount
        if i < 256 { data.append(contentsOf: [0x71, UInt8(i)]) } else { data.append(0x72); le(UInt32(i)) }
        memoCount += 1
        return i
    }

    mutating func get(_ i: Int) {
        if i < 256 { data.append(contentsOf: [0x68, UInt8(i)]) } else { data.append(0x6A); le(UInt32(i)) }
    }

    private mutating func le<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }
}
