import Foundation

/// A .pth file that dtrain cannot or will not read, with what was expected.
public struct PthError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A restricted pickle interpreter for the pickles torch.save writes: the zip format's data.pkl,
/// the legacy format's header pickles, main pickle and storage-key list, and the tar format's
/// member pickles.
///
/// It runs the opcodes these files use (protocol 2, Python 2's byte strings, plus the protocol-4
/// framing, MEMOIZE, SHORT_BINUNICODE and STACK_GLOBAL that `pickle_protocol=4` adds) and nothing
/// else. Globals are looked up in `TorchGlobal` — collections.OrderedDict, torch._utils's tensor
/// rebuilders, the storage and tensor type names — and any other global is refused by name as soon
/// as it is read. Nothing is ever imported or called: REDUCE on an allowed global builds a
/// `PickleValue` (a dict, a tensor reference), and persistent ids become storage or tensor
/// references as `PersistentIDs` says. Every length, index and size is checked against the data,
/// containers nest at most `maxDepth` deep, and the memo and stack are bounded.
public struct TorchUnpickler {
    /// What a persistent id names in the file being read.
    public enum PersistentIDs {
        /// The zip format: ('storage', type, key, location, numel).
        case zipStorages
        /// The legacy format (PyTorch 0.4–1.5): ('storage', type, root key, location, root numel,
        /// view metadata: None or (view key, offset, numel)).
        case legacyStorages
        /// The tar format (PyTorch ≤ 0.3): a tensor key (an int or its decimal string).
        case tarTensors([Int64: TorchTensorRef])
        /// No persistent ids are allowed (header pickles, lists of keys).
        case notAllowed
    }

    /// Containers nested deeper than this are refused (a state_dict nests four or five deep).
    public static let maxDepth = 64
    /// At most this many memo entries and values on the stack.
    public static let maxEntries = 1 << 22

    private let bytes: Data
    private let name: String
    private let start: Int
    /// The absolute index in the data of the next byte to read (after `run`, just past STOP).
    public private(set) var position: Int
    private var stack: [PickleValue] = []
    /// The nesting depth of each stack value (a list's or dict's is kept in the object).
    private var depths: [Int] = []
    private var marks: [Int] = []
    private var memo: [Int: (PickleValue, Int)] = [:]
    private let persistentIDs: PersistentIDs
    /// The legacy format's root storages met so far, by key: each must be named the same way.
    public private(set) var rootStorages: [String: TorchStorageRef] = [:]

    /// An unpickler of the pickle starting at index `start` of `data`, called `name` in errors.
    public init(_ data: Data, start: Int? = nil, name: String = "data.pkl", persistentIDs: PersistentIDs = .zipStorages) {
        bytes = data
        self.start = start ?? data.startIndex
        position = self.start
        self.name = name
        self.persistentIDs = persistentIDs
    }

    /// Runs the pickle to STOP and returns the value it leaves.
    public static func load(_ data: Data, persistentIDs: PersistentIDs = .zipStorages) throws -> PickleValue {
        var u = TorchUnpickler(data, persistentIDs: persistentIDs)
        return try u.run()
    }

    private func fail(_ what: String, at: Int? = nil) -> PthError {
        PthError("\(name): \(what) (at byte \((at ?? position) - bytes.startIndex))")
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.endIndex else { throw fail("truncated pickle: ended without STOP") }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func take(_ n: Int) throws -> Data {
        guard n >= 0, n <= bytes.endIndex - position else { throw fail("truncated pickle: \(n) bytes wanted, \(bytes.endIndex - position) left") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        try take(n).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// A length read from the pickle, as an Int that fits what is left.
    private mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.endIndex - position) else { throw fail("truncated pickle: a string of \(v) bytes, \(bytes.endIndex - position) left") }
        return Int(v)
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("GLOBAL without a newline") }
        defer { position = end + 1 }
        guard let s = String(bytes: bytes[position..<end], encoding: .utf8) else { throw fail("GLOBAL name is not UTF-8") }
        return s
    }

    private mutating func utf8(_ n: Int) throws -> String {
        let at = position
        guard let s = String(bytes: try take(n), encoding: .utf8) else { throw fail("string is not UTF-8", at: at) }
        return s
    }

    /// Python 2's str: bytes, read as Latin-1 as torch's `_maybe_decode_ascii` does for ASCII.
    private mutating func latin1(_ n: Int) throws -> String {
        String(decoding: try take(n).map { UInt16($0) }, as: UTF16.self)
    }

    private func depth(of v: PickleValue, stored: Int) -> Int {
        switch v {
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return stored
        }
    }

    private mutating func push(_ v: PickleValue, depth: Int = 0) throws {
        guard stack.count < TorchUnpickler.maxEntries else { throw fail("more than \(TorchUnpickler.maxEntries) values on the stack") }
        stack.append(v)
        depths.append(depth)
    }

    private mutating func pop() throws -> (PickleValue, Int) {
        guard stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        let v = stack.removeLast(), d = depths.removeLast()
        return (v, depth(of: v, stored: d))
    }

    /// The values pushed since the last MARK, which is removed, and their greatest depth.
    private mutating func popMark() throws -> ([PickleValue], Int) {
        guard let m = marks.popLast() else { throw fail("no MARK to pop to") }
        defer { stack.removeSubrange(m...); depths.removeSubrange(m...) }
        var deepest = 0
        for i in m..<stack.count { deepest = max(deepest, depth(of: stack[i], stored: depths[i])) }
        return (Array(stack[m...]), deepest)
    }

    private func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return v
    }

    /// A value placed inside a container: it may not change afterwards, and the container's depth
    /// must stay within bounds.
    private func contain(_ items: [PickleValue], deepest: Int, at: Int) throws -> Int {
        for v in items {
            switch v {
            case .list(let l): l.frozen = true
            case .dict(let d): d.frozen = true
            default: break
            }
        }
        guard deepest + 1 <= TorchUnpickler.maxDepth else { throw fail("containers nested more than \(TorchUnpickler.maxDepth) deep", at: at) }
        return deepest + 1
    }

    private mutating func pushTuple(_ items: [PickleValue], deepest: Int, at: Int) throws {
        try push(.tuple(items), depth: try contain(items, deepest: deepest, at: at))
    }

    private func global(module: String, name: String, at: Int) throws -> PickleValue {
        guard let g = TorchGlobal(module: module, name: name) else {
            throw fail("refused global \(module).\(name): a state_dict only needs "
                        + TorchGlobal.allCases.filter(\.isListed).map(\.qualifiedName).joined(separator: ", "), at: at)
        }
        return .global(g)
    }

    private mutating func memoGet(_ index: Int) throws {
        guard let (v, d) = memo[index] else { throw fail("memo entry \(index) was never stored") }
        try push(v, depth: d)
    }

    private mutating func memoPut(_ index: Int) throws {
        guard memo.count < TorchUnpickler.maxEntries || memo[index] != nil else { throw fail("more than \(TorchUnpickler.maxEntries) memo entries") }
        let v = try top()
        memo[index] = (v, depths[depths.count - 1])
    }

    public mutating func run() throws -> PickleValue {
        while true {
            let at = position
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let v = try byte()
                guard v >= 2 && v <= 5 else { throw fail("pickle protocol \(v); torch.save writes protocol 2", at: at) }
            case 0x95: // FRAME (protocol 4): a length hint only
                _ = try uint(8)
            case 0x2E: // STOP
                guard stack.count == 1, marks.isEmpty else { throw fail("STOP with \(stack.count) values on the stack", at: at) }
                return stack[0]
            case 0x28: // MARK
                guard marks.count < TorchUnpickler.maxDepth * 4 else { throw fail("MARKs nested more than \(TorchUnpickler.maxDepth * 4) deep", at: at) }
                marks.append(stack.count)
            case 0x4E: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x4A: try push(.int(Int64(Int32(truncatingIfNeeded: UInt32(try uint(4)))))) // BININT
            case 0x4B: try push(.int(Int64(try byte()))) // BININT1
            case 0x4D: try push(.int(Int64(try uint(2)))) // BININT2
            case 0x8A: // LONG1: little-endian two's complement of n bytes
                let n = Int(try byte())
                if n > 8 {
                    // Only the legacy format's magic number is this long; kept as its bytes.
                    try push(.bigInt([UInt8](try take(n))))
                } else {
                    let raw = try uint(n)
                    let shift = UInt64(64 - 8 * n)
                    try push(.int(n == 0 ? 0 : Int64(bitPattern: raw << shift) >> Int64(shift)))
                }
            case 0x47: // BINFLOAT: big-endian double
                let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                try push(.float(Double(bitPattern: raw)))
            case 0x58: try push(.string(try utf8(try length(4)))) // BINUNICODE
            case 0x8C: try push(.string(try utf8(try length(1)))) // SHORT_BINUNICODE
            case 0x54: try push(.string(try latin1(try length(4)))) // BINSTRING (Python 2)
            case 0x55: try push(.string(try latin1(try length(1)))) // SHORT_BINSTRING (Python 2)
            case 0x29: try push(.tuple([]), depth: 1) // EMPTY_TUPLE
            case 0x74: let (items, d) = try popMark(); try pushTuple(items, deepest: d, at: at) // TUPLE
            case 0x85: let (a, d) = try pop(); try pushTuple([a], deepest: d, at: at) // TUPLE1
            case 0x86: // TUPLE2
                let (b, db) = try pop(), (a, da) = try pop()
                try pushTuple([a, b], deepest: max(da, db), at: at)
            case 0x87: // TUPLE3
                let (c, dc) = try pop(), (b, db) = try pop(), (a, da) = try pop()
                try pushTuple([a, b, c], deepest: max(da, db, dc), at: at)
            case 0x5D: try push(.list(PickleList())) // EMPTY_LIST
            case 0x61: // APPEND
                let (v, d) = try pop()
                try append([v], deepest: d, at: at)
            case 0x65: // APPENDS
                let (items, d) = try popMark()
                try append(items, deepest: d, at: at)
            case 0x7D: try push(.dict(PickleDict())) // EMPTY_DICT
            case 0x73: // SETITEM
                let (v, dv) = try pop(), (k, _) = try pop()
                try setItems([k, v], deepest: dv, at: at)
            case 0x75: let (items, d) = try popMark(); try setItems(items, deepest: d, at: at) // SETITEMS
            case 0x63: // GLOBAL
                let module = try line(), name = try line()
                try push(try global(module: module, name: name, at: at))
            case 0x93: // STACK_GLOBAL
                guard case (.string(let name), _) = try pop(), case (.string(let module), _) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                try push(try global(module: module, name: name, at: at))
            case 0x71: try memoPut(Int(try byte())) // BINPUT
            case 0x72: try memoPut(Int(try uint(4))) // LONG_BINPUT
            case 0x94: try memoPut(memo.count) // MEMOIZE
            case 0x68: try memoGet(Int(try byte())) // BINGET
            case 0x6A: try memoGet(Int(try uint(4))) // LONG_BINGET
            case 0x51: // BINPERSID
                let (pid, _) = try pop()
                let value = try persistentLoad(pid, at: at)
                try push(value)
            case 0x52: // REDUCE
                let (args, d) = try pop(), (callable, _) = try pop()
                let (value, depth) = try reduce(callable, args, argsDepth: d, at: at)
                try push(value, depth: depth)
            case 0x62: // BUILD: a state_dict's _metadata attribute; kept out of the tensors
                let (state, _) = try pop()
                guard case .dict = try top(), case .dict = state else {
                    throw fail("BUILD of \(try top().kindDescription) with \(state.kindDescription); only a dict's attributes are allowed", at: at)
                }
            default:
                throw fail(String(format: "unsupported pickle opcode 0x%02X (torch.save's state_dicts use protocol 2 opcodes only)", op), at: at)
            }
        }
    }

    private mutating func append(_ items: [PickleValue], deepest: Int, at: Int) throws {
        guard case .list(let l) = try top() else { throw fail("APPEND to \(try top().kindDescription)", at: at) }
        guard !l.frozen else { throw fail("APPEND to a list already placed in another container", at: at) }
        l.depth = max(l.depth, try contain(items, deepest: deepest, at: at))
        l.items += items
    }

    private mutating func setItems(_ pairs: [PickleValue], deepest: Int, at: Int) throws {
        guard pairs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values", at: at) }
        guard case .dict(let d) = try top() else { throw fail("SETITEM on \(try top().kindDescription)", at: at) }
        guard !d.frozen else { throw fail("SETITEM on a dict already placed in another container", at: at) }
        d.depth = max(d.depth, try contain(pairs, deepest: deepest, at: at))
        for i in stride(from: 0, to: pairs.count, by: 2) {
            switch pairs[i] {
            case .string(let s): d.set(.string(s), pairs[i + 1])
            case .int(let n): d.set(.int(n), pairs[i + 1])
            default: throw fail("dict key is \(pairs[i].kindDescription); expected a string", at: at)
            }
        }
    }

    /// A storage type global's element type, or an error naming what was found.
    private func storageDType(_ v: PickleValue, at: Int) throws -> SafeTensorsDType {
        guard case .global(let g) = v, let dtype = g.storageDType else {
            throw fail("persistent id names \(v.kindDescription) as its storage type; expected torch.FloatStorage, HalfStorage, BFloat16Storage or LongStorage", at: at)
        }
        return dtype
    }

    private func count(_ v: PickleValue, _ what: String, at: Int) throws -> Int {
        guard case .int(let n) = v, n >= 0 else { throw fail("\(what) is \(v.kindDescription), not a count", at: at) }
        return Int(n)
    }

    private mutating func persistentLoad(_ pid: PickleValue, at: Int) throws -> PickleValue {
        if case .tuple(let t) = pid, case .string("module")? = t.first {
            throw fail("the file saves a whole model (its Python class), not a state_dict; save model.state_dict() instead", at: at)
        }
        switch persistentIDs {
        case .notAllowed:
            throw fail("a persistent id where none belongs", at: at)
        case .zipStorages:
            guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0] else {
                throw fail("persistent id is \(pid.kindDescription); expected ('storage', type, key, location, numel)", at: at)
            }
            let dtype = try storageDType(t[1], at: at)
            guard case .string(let key) = t[2], case .int(let numel) = t[4], numel >= 0 else {
                throw fail("persistent id lacks a string key or element count", at: at)
            }
            return .storage(TorchStorageRef(key: key, dtype: dtype, numel: Int(numel)))
        case .legacyStorages:
            guard case .tuple(let t) = pid, t.count == 6, case .string("storage") = t[0] else {
                throw fail("persistent id is \(pid.kindDescription); expected ('storage', type, key, location, numel, view)", at: at)
            }
            let dtype = try storageDType(t[1], at: at)
            guard case .string(let key) = t[2] else { throw fail("persistent id's storage key is \(t[2].kindDescription)", at: at) }
            let numel = try count(t[4], "storage \(key)'s element count", at: at)
            let root = TorchStorageRef(key: key, dtype: dtype, numel: numel)
            if let known = rootStorages[key], known != root {
                throw fail("storage \(key) is named as \(known.numel) \(known.dtype.rawValue) and as \(numel) \(dtype.rawValue) elements", at: at)
            }
            rootStorages[key] = root
            switch t[5] {
            case .none:
                return .storage(root)
            case .tuple(let view) where view.count == 3:
                let offset = try count(view[1], "a view's offset", at: at), size = try count(view[2], "a view's size", at: at)
                guard offset <= numel, size <= numel - offset else {
                    throw fail("a view of \(size) elements at \(offset) lies outside storage \(key) of \(numel)", at: at)
                }
                return .storage(TorchStorageRef(key: key, dtype: dtype, numel: size, offset: offset))
            default:
                throw fail("persistent id's view is \(t[5].kindDescription); expected None or (key, offset, size)", at: at)
            }
        case .tarTensors(let tensors):
            let key: Int64
            switch pid {
            case .int(let n): key = n
            case .string(let s) where Int64(s) != nil: key = Int64(s)!
            default: throw fail("persistent id is \(pid.kindDescription); expected a tensor key", at: at)
            }
            guard let tensor = tensors[key] else { throw fail("persistent id names tensor \(key), which the tensors member lacks", at: at) }
            return .tensor(tensor)
        }
    }

    private func ints(_ v: PickleValue, _ what: String, at: Int) throws -> [Int] {
        guard case .tuple(let t) = v else {
            // Python 2's torch.Size pickles as a tuple too; a list is accepted the same way.
            if case .list(let l) = v { return try ints(.tuple(l.items), what, at: at) }
            throw fail("tensor \(what) is \(v.kindDescription); expected a tuple of ints", at: at)
        }
        guard t.count <= TorchUnpickler.maxDepth else { throw fail("tensor of \(t.count) dimensions", at: at) }
        return try t.map {
            guard case .int(let n) = $0, n >= 0 else { throw fail("tensor \(what) holds \($0.kindDescription) or a negative value", at: at) }
            return Int(n)
        }
    }

    /// A tensor view of `storage`, checked to lie inside it.
    private func tensor(_ storage: PickleValue, offset: PickleValue, size: PickleValue, stride: PickleValue, at: Int) throws -> TorchTensorRef {
        guard case .storage(let s) = storage else { throw fail("a tensor's storage is \(storage.kindDescription)", at: at) }
        guard case .int(let offset) = offset, offset >= 0 else { throw fail("a tensor's storage offset is \(offset.kindDescription)", at: at) }
        let shape = try ints(size, "size", at: at), stride = try ints(stride, "stride", at: at)
        let t = TorchTensorRef(storage: s, offset: Int(offset), shape: shape, stride: stride)
        do { try t.checkBounds() } catch let e as PthError { throw fail(e.message, at: at) }
        return t
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue, argsDepth: Int, at: Int) throws -> (PickleValue, Int) {
        guard case .global(let g) = callable else { throw fail("REDUCE calls \(callable.kindDescription); only allowed globals can be called", at: at) }
        guard case .tuple(let a) = args else { throw fail("REDUCE arguments are \(args.kindDescription), not a tuple", at: at) }
        switch g {
        case .orderedDict:
            let dict = PickleDict()
            if a.isEmpty { return (.dict(dict), 1) }
            // Python 2's OrderedDict pickles its items as an argument: [[key, value], ...].
            guard a.count == 1, case .list(let items) = a[0] else { throw fail("OrderedDict called with \(a.count) arguments; expected none or a list of items", at: at) }
            for item in items.items {
                let pair: [PickleValue]
                switch item {
                case .list(let l): pair = l.items
                case .tuple(let t): pair = t
                default: throw fail("an OrderedDict item is \(item.kindDescription)", at: at)
                }
                guard pair.count == 2 else { throw fail("an OrderedDict item of \(pair.count) values", at: at) }
                switch pair[0] {
                case .string(let s): dict.set(.string(s), pair[1])
                case .int(let n): dict.set(.int(n), pair[1])
                default: throw fail("dict key is \(pair[0].kindDescription); expected a string", at: at)
                }
            }
            dict.depth = argsDepth
            return (.dict(dict), argsDepth)
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else { throw fail("_rebuild_tensor_v2 with \(a.count) arguments; expected 6 or 7", at: at) }
            if case .dict(let hooks) = a[5], !hooks.keys.isEmpty { throw fail("tensor with backward hooks", at: at) }
            guard case .storage = a[0] else { throw fail("_rebuild_tensor_v2's storage is \(a[0].kindDescription)", at: at) }
            return (.tensor(try tensor(a[0], offset: a[1], size: a[2], stride: a[3], at: at)), 0)
        case .rebuildTensor:
            // PyTorch 0.4.0: (storage, storage_offset, size, stride)
            guard a.count == 4 else { throw fail("_rebuild_tensor with \(a.count) arguments; expected 4", at: at) }
            return (.tensor(try tensor(a[0], offset: a[1], size: a[2], stride: a[3], at: at)), 0)
        case .rebuildParameter:
            // (data, requires_grad, backward_hooks): the parameter is its tensor.
            guard a.count == 3, case .tensor = a[0] else { throw fail("_rebuild_parameter expects (tensor, requires_grad, hooks)", at: at) }
            return (a[0], 0)
        default:
            throw fail("\(g.qualifiedName) called directly; storages come only from persistent ids", at: at)
        }
    }
}
