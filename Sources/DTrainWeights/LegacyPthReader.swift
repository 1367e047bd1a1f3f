import Foundation

/// Reads torch.save's legacy format (PyTorch 0.4 to 1.5, and later versions given
/// `_use_new_zipfile_serialization=False`), as torch/serialization.py's `_legacy_load` does,
/// without running any code. The file is a sequence of pickles followed by raw data:
///
/// 1. the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001 and a sys-info dict
///    (byte order and type sizes), each its own pickle;
/// 2. the main pickle (the state_dict), whose persistent ids name storages as
///    ('storage', type, root key, location, numel, view), view being None or (key, offset, numel);
/// 3. a pickled list of the root storages' keys;
/// 4. for each key in that order, an 8-byte little-endian element count and the raw data.
struct LegacyPthReader {
    /// The magic number's bytes as pickle's LONG1 holds them (little-endian).
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion: Int64 = 1001

    /// Whether `head` starts with the pickled magic number (PROTO, an optional FRAME, LONG1).
    static func startsWithMagic(_ head: [UInt8]) -> Bool {
        guard head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) else { return false }
        var i = 2
        if head.count > i, head[i] == 0x95 { i += 9 }
        guard head.count >= i + 12 else { return false }
        return head[i] == 0x8A && head[i + 1] == 10 && Array(head[(i + 2)..<(i + 12)]) == magic
    }

    let root: PickleValue
    private let storages: [String: Data]

    init(_ data: Data) throws {
        var position = data.startIndex
        func pickle(_ name: String, _ ids: TorchUnpickler.PersistentIDs = .notAllowed) throws -> (PickleValue, TorchUnpickler) {
            var u = TorchUnpickler(data, start: position, name: name, persistentIDs: ids)
            let value = try u.run()
            position = u.position
            return (value, u)
        }
        guard case (.bigInt(let magic), _) = try pickle("magic number pickle"), magic == LegacyPthReader.magic else {
            throw PthError("the magic number is not torch.save's; the file is corrupted")
        }
        guard case (.int(let version), _) = try pickle("protocol version pickle"), version == LegacyPthReader.protocolVersion else {
            throw PthError("legacy protocol version is not \(LegacyPthReader.protocolVersion); expected a file torch.save wrote")
        }
        let (sysInfo, _) = try pickle("sys info pickle")
        if case .dict(let info) = sysInfo, case .bool(false)? = info[.string("little_endian")] {
            throw PthError("the file was written on a big-endian machine; only little-endian files are supported")
        }
        let (main, unpickler) = try pickle("main pickle", .legacyStorages)
        root = main
        guard case (.list(let keyList), _) = try pickle("storage key list") else {
            throw PthError("the storage key list is not a list; the file is truncated or corrupted")
        }
        let known = unpickler.rootStorages
        var storages: [String: Data] = [:]
        for item in keyList.items {
            guard case .string(let key) = item else { throw PthError("a storage key is \(item.kindDescription), not a string") }
            guard let storage = known[key] else { throw PthError("storage \(key) is listed but never named by the pickle") }
            guard storages[key] == nil else { throw PthError("storage \(key) is listed twice") }
            let at = position - data.startIndex
            guard data.endIndex - position >= 8 else {
                throw PthError("storage \(key): its element count at byte \(at) lies past the end of the \(data.count)-byte file (truncated)")
            }
            let count = data[position..<(position + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            position += 8
            guard count == UInt64(storage.numel) else {
                throw PthError("storage \(key) holds \(count) elements at byte \(at); the pickle names \(storage.numel)")
            }
            let (bytes, overflow) = storage.numel.multipliedReportingOverflow(by: storage.dtype.size)
            guard !overflow, bytes <= data.endIndex - position else {
                throw PthError("storage \(key): \(storage.numel) \(storage.dtype.rawValue) elements at byte \(at + 8) reach past the end of the \(data.count)-byte file (truncated)")
            }
            storages[key] = data[position..<(position + bytes)]
            position += bytes
        }
        self.storages = storages
    }

    func storage(_ s: TorchStorageRef) throws -> Data {
        guard let data = storages[s.key] else { throw PthError("storage \(s.key) is not in the file's list of storages") }
        return data
    }
}
