import Foundation

/// Reads torch.save's tar format (PyTorch 0.3 and earlier, as torchvision's resnet18-5c106cde.pth),
/// as torch/serialization.py's `_legacy_load` does, without running any code. The tar archive
/// holds three members that matter:
///
/// - `storages`: a pickled count; per storage a pickled (key, location, storage type), an 8-byte
///   element count and the raw data; then a pickled list of views (key, root key, offset, numel);
/// - `tensors`: a pickled count; per tensor a pickled (key, storage key, tensor type), ndim as a
///   little-endian int32 and 4 bytes of padding, then ndim sizes, ndim strides and the storage
///   offset as little-endian int64;
/// - `pickle`: the state_dict, whose persistent ids are tensor keys.
///
/// Tar headers are checked (their checksums, octal sizes within the file); every count, size and
/// offset is checked with overflow-checked arithmetic.
struct TarPthReader {
    let root: PickleValue
    private let storages: [String: Data]

    /// The members of a tar archive by name (regular files only).
    static func members(_ data: Data) throws -> [String: Data] {
        var members: [String: Data] = [:]
        var offset = data.startIndex
        func octal(_ field: Data, _ what: String, member: String) throws -> Int {
            guard field.first.map({ $0 & 0x80 == 0 }) ?? false else { throw PthError("tar member \(member): \(what) in base-256, which torch never writes") }
            var v = 0
            for c in field.drop(while: { $0 == 0x20 }).prefix(while: { $0 >= 0x30 && $0 <= 0x37 }) {
                let (m, o1) = v.multipliedReportingOverflow(by: 8)
                let (s, o2) = m.addingReportingOverflow(Int(c - 0x30))
                guard !o1, !o2 else { throw PthError("tar member \(member): \(what) overflows") }
                v = s
            }
            return v
        }
        while true {
            guard data.endIndex - offset >= 512 else {
                throw PthError("truncated tar: a header at byte \(offset - data.startIndex) needs 512 bytes, \(data.endIndex - offset) left")
            }
            let header = data[offset..<(offset + 512)]
            if header.allSatisfy({ $0 == 0 }) { break }
            let name = String(decoding: header.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
            let size = try octal(header[(offset + 124)..<(offset + 136)], "size", member: name)
            let stored = try octal(header[(offset + 148)..<(offset + 156)], "checksum", member: name)
            var sum = 0
            for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(b) }
            guard sum == stored else { throw PthError("tar member \(name): header checksum \(stored), computed \(sum); the file is corrupted") }
            let type = header[offset + 156]
            let start = offset + 512
            guard size <= data.endIndex - start else {
                throw PthError("truncated tar: member \(name) of \(size) bytes at byte \(start - data.startIndex), \(data.endIndex - start) left")
            }
            if type == 0x30 || type == 0 {  // a regular file
                members[name] = data[start..<(start + size)]
            }
            let padded = (size + 511) / 512 * 512
            guard padded <= data.endIndex - start else {
                throw PthError("truncated tar: member \(name) ends without its padding to 512 bytes")
            }
            offset = start + padded
            if offset == data.endIndex { break }
        }
        return members
    }

    init(_ data: Data) throws {
        let members = try TarPthReader.members(data)
        func member(_ name: String) throws -> Data {
            guard let m = members[name] else { throw PthError("the tar archive has no \(name) member; expected torch.save's (storages, tensors, pickle)") }
            return Data(m)  // re-based at 0
        }

        // storages: count, then (key, location, type) + count + data per storage, then views.
        let storageData = try member("storages")
        var stream = PickleStream(storageData, member: "storages")
        let storageCount = try stream.count("storage count")
        var roots: [Int64: TorchStorageRef] = [:]
        var bytes: [String: Data] = [:]
        for _ in 0..<storageCount {
            guard case .tuple(let t) = try stream.next("storage record"), t.count == 3 else {
                throw PthError("storages: a storage record is not (key, location, type)")
            }
            let key = try TarPthReader.key(t[0], "storage key")
            guard case .global(let g) = t[2], let dtype = g.storageDType else {
                throw PthError("storages: storage \(key)'s type is \(t[2].kindDescription); expected torch.FloatStorage, HalfStorage or LongStorage")
            }
            guard roots[key] == nil else { throw PthError("storages: storage \(key) appears twice") }
            let numel = try stream.int64("storage \(key)'s element count")
            guard numel >= 0, numel <= Int64(Int.max) else { throw PthError("storages: storage \(key) has \(numel) elements") }
            let (size, overflow) = Int(numel).multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw PthError("storages: storage \(key) of \(numel) elements is too large") }
            bytes[String(key)] = try stream.raw(size, "storage \(key)'s \(numel) elements")
            roots[key] = TorchStorageRef(key: String(key), dtype: dtype, numel: Int(numel))
        }
        var storages = roots
        guard case .list(let views) = try stream.next("storage views") else { throw PthError("storages: the views are not a list") }
        for view in views.items {
            guard case .tuple(let v) = view, v.count == 4 else { throw PthError("storages: a view is \(view.kindDescription); expected (key, root key, offset, numel)") }
            let key = try TarPthReader.key(v[0], "view key"), rootKey = try TarPthReader.key(v[1], "view's root key")
            guard case .int(let offset) = v[2], case .int(let numel) = v[3], offset >= 0, numel >= 0 else {
                throw PthError("storages: view \(key) has a negative or missing offset or size")
            }
            guard let root = storages[rootKey] else { throw PthError("storages: view \(key) of storage \(rootKey), which is not in the file") }
            guard offset <= Int64(root.numel), numel <= Int64(root.numel) - offset else {
                throw PthError("storages: view \(key) of \(numel) elements at \(offset) lies outside storage \(rootKey) of \(root.numel)")
            }
            storages[key] = TorchStorageRef(key: root.key, dtype: root.dtype, numel: Int(numel), offset: root.offset + Int(offset))
        }

        // tensors: count, then (key, storage key, type) + ndim + sizes + strides + offset per tensor.
        var tensorStream = PickleStream(try member("tensors"), member: "tensors")
        let tensorCount = try tensorStream.count("tensor count")
        var tensors: [Int64: TorchTensorRef] = [:]
        for _ in 0..<tensorCount {
            guard case .tuple(let t) = try tensorStream.next("tensor record"), t.count == 3 else {
                throw PthError("tensors: a tensor record is not (key, storage key, type)")
            }
            let key = try TarPthReader.key(t[0], "tensor key"), storageKey = try TarPthReader.key(t[1], "tensor's storage key")
            guard let storage = storages[storageKey] else { throw PthError("tensors: tensor \(key) names storage \(storageKey), which is not in the file") }
            if case .global(let g) = t[2], let dtype = g.tensorDType, dtype != storage.dtype {
                throw PthError("tensors: tensor \(key) is a \(g.qualifiedName) over a \(storage.dtype.rawValue) storage")
            }
            let ndim = try tensorStream.int32("tensor \(key)'s number of dimensions")
            guard ndim >= 0, ndim <= 64 else { throw PthError("tensors: tensor \(key) has \(ndim) dimensions") }
            _ = try tensorStream.raw(4, "padding")
            var shape: [Int] = [], strides: [Int] = []
            for _ in 0..<ndim { shape.append(try tensorStream.nonNegative("tensor \(key)'s size")) }
            for _ in 0..<ndim { strides.append(try tensorStream.nonNegative("tensor \(key)'s stride")) }
            let offset = try tensorStream.nonNegative("tensor \(key)'s storage offset")
            let ref = TorchTensorRef(storage: storage, offset: offset, shape: shape, stride: strides)
            do { try ref.checkBounds() } catch let e as PthError { throw PthError("tensors: tensor \(key): \(e.message)") }
            tensors[key] = ref
        }

        var u = TorchUnpickler(try member("pickle"), name: "pickle", persistentIDs: .tarTensors(tensors))
        root = try u.run()
        self.storages = bytes
    }

    /// A storage or tensor key: an int, or its decimal string.
    static func key(_ v: PickleValue, _ what: String) throws -> Int64 {
        switch v {
        case .int(let n): return n
        case .string(let s): if let n = Int64(s) { return n }
        default: break
        }
        throw PthError("\(what) is \(v.kindDescription); expected an integer key")
    }

    func storage(_ s: TorchStorageRef) throws -> Data {
        guard let data = storages[s.key] else { throw PthError("storage \(s.key) is not in the storages member") }
        return data
    }
}

/// Pickles and raw little-endian numbers one after another in a tar member.
struct PickleStream {
    let data: Data
    let member: String
    var position = 0

    init(_ data: Data, member: String) {
        self.data = data
        self.member = member
    }

    mutating func next(_ what: String) throws -> PickleValue {
        var u = TorchUnpickler(data, start: position, name: "\(member): \(what)", persistentIDs: .notAllowed)
        let v = try u.run()
        position = u.position
        return v
    }

    mutating func count(_ what: String) throws -> Int {
        guard case .int(let n) = try next(what), n >= 0 else { throw PthError("\(member): the \(what) is not a count") }
        return Int(n)
    }

    mutating func raw(_ n: Int, _ what: String) throws -> Data {
        guard n >= 0, n <= data.count - position else {
            throw PthError("\(member): \(what) need \(n) bytes at byte \(position), \(data.count - position) left (truncated or bad count)")
        }
        defer { position += n }
        return data[position..<(position + n)]
    }

    mutating func int64(_ what: String) throws -> Int64 {
        let b = try raw(8, what)
        return Int64(bitPattern: b.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    mutating func int32(_ what: String) throws -> Int32 {
        let b = try raw(4, what)
        return Int32(bitPattern: b.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }

    mutating func nonNegative(_ what: String) throws -> Int {
        let v = try int64(what)
        guard v >= 0 else { throw PthError("\(member): \(what) is \(v)") }
        return Int(v)
    }
}
