import Foundation

/// A .pth file that dtrain cannot or will not read, with what was expected.
public struct PthError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A restricted pickle interpreter for the data.pkl of torch.save's zip format.
///
/// It runs the opcodes torch emits for a state_dict (protocol 2, plus the protocol-4 framing,
/// MEMOIZE, SHORT_BINUNICODE and STACK_GLOBAL that `pickle_protocol=4` adds) and nothing else.
/// Globals are looked up in `TorchGlobal` — collections.OrderedDict, torch._utils._rebuild_tensor_v2
/// and _rebuild_parameter, torch.Float/Half/BFloat16/LongStorage — and any other global is refused
/// by name as soon as it is read. Nothing is ever imported or called: REDUCE on an allowed global
/// builds a `PickleValue` (an empty dict, a tensor reference), and persistent ids become storage
/// references. Every length and index is checked against the data.
public struct TorchUnpickler {
    private let bytes: [UInt8]
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    public init(_ data: Data) { bytes = [UInt8](data) }

    /// Runs the pickle to STOP and returns the value it leaves.
    public static func load(_ data: Data) throws -> PickleValue {
        var u = TorchUnpickler(data)
        return try u.run()
    }

    private func fail(_ what: String, at: Int? = nil) -> PthError {
        PthError("data.pkl: \(what) (at byte \(at ?? position))")
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("truncated pickle: ended without STOP") }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated pickle: \(n) bytes wanted, \(bytes.count - position) left") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        try take(n).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("GLOBAL without a newline") }
        defer { position = end + 1 }
        guard let s = String(bytes: bytes[position..<end], encoding: .utf8) else { throw fail("GLOBAL name is not UTF-8") }
        return s
    }

    private mutating func utf8(_ n: Int) throws -> String {
        let start = position
        guard let s = String(bytes: try take(n), encoding: .utf8) else { throw fail("string is not UTF-8", at: start) }
        return s
    }

    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return stack.removeLast()
    }

    /// The values pushed since the last MARK, which is removed.
    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK to pop to") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    private mutating func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return v
    }

    private mutating func global(module: String, name: String, at: Int) throws -> PickleValue {
        guard let g = TorchGlobal(module: module, name: name) else {
            throw fail("refused global \(module).\(name): a state_dict only needs "
                        + TorchGlobal.allCases.map(\.qualifiedName).joined(separator: ", "), at: at)
        }
        return .global(g)
    }

    private mutating func memoGet(_ index: Int) throws -> PickleValue {
        guard let v = memo[index] else { throw fail("memo entry \(index) was never stored") }
        return v
    }

    private mutating func memoPut(_ index: Int) throws {
        memo[index] = try top()
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
            case 0x28: marks.append(stack.count) // MARK
            case 0x4E: stack.append(.none) // NONE
            case 0x88: stack.append(.bool(true)) // NEWTRUE
            case 0x89: stack.append(.bool(false)) // NEWFALSE
            case 0x4A: stack.append(.int(Int64(Int32(truncatingIfNeeded: UInt32(try uint(4)))))) // BININT
            case 0x4B: stack.append(.int(Int64(try byte()))) // BININT1
            case 0x4D: stack.append(.int(Int64(try uint(2)))) // BININT2
            case 0x8A: // LONG1: little-endian two's complement of n bytes
                let n = Int(try byte())
                guard n <= 8 else { throw fail("LONG1 of \(n) bytes does not fit 64 bits", at: at) }
                let raw = try uint(n)
                let shift = UInt64(64 - 8 * n)
                stack.append(.int(n == 0 ? 0 : Int64(bitPattern: raw << shift) >> Int64(shift)))
            case 0x47: // BINFLOAT: big-endian double
                let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: raw)))
            case 0x58: stack.append(.string(try utf8(Int(try uint(4))))) // BINUNICODE
            case 0x8C: stack.append(.string(try utf8(Int(try byte())))) // SHORT_BINUNICODE
            case 0x29: stack.append(.tuple([])) // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popMark())) // TUPLE
            case 0x85: let a = try pop(); stack.append(.tuple([a])) // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b])) // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x5D: stack.append(.list(PickleList())) // EMPTY_LIST
            case 0x61: // APPEND
                let v = try pop()
                guard case .list(let l) = try top() else { throw fail("APPEND to \(try top().kindDescription)", at: at) }
                l.items.append(v)
            case 0x65: // APPENDS
                let items = try popMark()
                guard case .list(let l) = try top() else { throw fail("APPENDS to \(try top().kindDescription)", at: at) }
                l.items += items
            case 0x7D: stack.append(.dict(PickleDict())) // EMPTY_DICT
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v], at: at)
            case 0x75: try setItems(try popMark(), at: at) // SETITEMS
            case 0x63: // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module: module, name: name, at: at))
            case 0x93: // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                stack.append(try global(module: module, name: name, at: at))
            case 0x71: try memoPut(Int(try byte())) // BINPUT
            case 0x72: try memoPut(Int(try uint(4))) // LONG_BINPUT
            case 0x94: try memoPut(memo.count) // MEMOIZE
            case 0x68: stack.append(try memoGet(Int(try byte()))) // BINGET
            case 0x6A: stack.append(try memoGet(Int(try uint(4)))) // LONG_BINGET
            case 0x51: stack.append(try persistentLoad(try pop(), at: at)) // BINPERSID
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args, at: at))
            case 0x62: // BUILD: a state_dict's _metadata attribute; kept out of the tensors
                let state = try pop()
                guard case .dict = try top(), case .dict = state else {
                    throw fail("BUILD of \(try top().kindDescription) with \(state.kindDescription); only a dict's attributes are allowed", at: at)
                }
            default:
                throw fail(String(format: "unsupported pickle opcode 0x%02X (torch.save's state_dicts use protocol 2 opcodes only)", op), at: at)
            }
        }
    }

    private mutating func setItems(_ pairs: [PickleValue], at: Int) throws {
        guard pairs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values", at: at) }
        guard case .dict(let d) = try top() else { throw fail("SETITEM on \(try top().kindDescription)", at: at) }
        for i in stride(from: 0, to: pairs.count, by: 2) {
            switch pairs[i] {
            case .string(let s): d.set(.string(s), pairs[i + 1])
            case .int(let n): d.set(.int(n), pairs[i + 1])
            default: throw fail("dict key is \(pairs[i].kindDescription); expected a string", at: at)
            }
        }
    }

    /// ('storage', storage type, key, location, numel) → a storage reference.
    private func persistentLoad(_ pid: PickleValue, at: Int) throws -> PickleValue {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0] else {
            throw fail("persistent id is \(pid.kindDescription); expected ('storage', type, key, location, numel)", at: at)
        }
        guard case .global(let g) = t[1], let dtype = g.storageDType else {
            throw fail("persistent id names \(t[1].kindDescription) as its storage type; expected torch.FloatStorage, HalfStorage, BFloat16Storage or LongStorage", at: at)
        }
        guard case .string(let key) = t[2], case .int(let numel) = t[4], numel >= 0 else {
            throw fail("persistent id lacks a string key or element count", at: at)
        }
        return .storage(TorchStorageRef(key: key, dtype: dtype, numel: Int(numel)))
    }

    private func ints(_ v: PickleValue, _ what: String, at: Int) throws -> [Int] {
        guard case .tuple(let t) = v else { throw fail("tensor \(what) is \(v.kindDescription); expected a tuple of ints", at: at) }
        return try t.map {
            guard case .int(let n) = $0, n >= 0 else { throw fail("tensor \(what) holds \($0.kindDescription) or a negative value", at: at) }
            return Int(n)
        }
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue, at: Int) throws -> PickleValue {
        guard case .global(let g) = callable else { throw fail("REDUCE calls \(callable.kindDescription); only allowed globals can be called", at: at) }
        guard case .tuple(let a) = args else { throw fail("REDUCE arguments are \(args.kindDescription), not a tuple", at: at) }
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail("OrderedDict called with \(a.count) arguments; expected none", at: at) }
            return .dict(PickleDict())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else { throw fail("_rebuild_tensor_v2 with \(a.count) arguments; expected 6 or 7", at: at) }
            guard case .storage(let s) = a[0] else { throw fail("_rebuild_tensor_v2's storage is \(a[0].kindDescription)", at: at) }
            guard case .int(let offset) = a[1], offset >= 0 else { throw fail("_rebuild_tensor_v2's storage offset is \(a[1].kindDescription)", at: at) }
            let shape = try ints(a[2], "size", at: at), stride = try ints(a[3], "stride", at: at)
            guard shape.count == stride.count else { throw fail("tensor of \(shape.count) dimensions with \(stride.count) strides", at: at) }
            if case .dict(let hooks) = a[5], !hooks.keys.isEmpty { throw fail("tensor with backward hooks", at: at) }
            let tensor = TorchTensorRef(storage: s, offset: Int(offset), shape: shape, stride: stride)
            // The largest element the view touches must lie inside the storage.
            if shape.allSatisfy({ $0 > 0 }) {
                let last = tensor.offset + zip(shape, stride).reduce(0) { $0 + ($1.0 - 1) * $1.1 }
                guard last < s.numel else {
                    throw fail("tensor \(shape) with strides \(stride) at offset \(offset) reaches element \(last) of a storage of \(s.numel)", at: at)
                }
            }
            return .tensor(tensor)
        case .rebuildParameter:
            // (data, requires_grad, backward_hooks): the parameter is its tensor.
            guard a.count == 3, case .tensor = a[0] else { throw fail("_rebuild_parameter expects (tensor, requires_grad, hooks)", at: at) }
            return a[0]
        case .floatStorage, .halfStorage, .bfloat16Storage, .longStorage:
            throw fail("\(g.qualifiedName) called directly; storages come only from persistent ids", at: at)
        }
    }
}
