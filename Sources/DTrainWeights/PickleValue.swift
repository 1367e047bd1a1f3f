/// A value built by `TorchUnpickler`: only what torch's state_dict pickles contain.
///
/// Lists and dicts are reference types, as in Python: the pickle's memo can hand out the same
/// list or dict again (BINGET) and later opcodes (APPEND, SETITEM, BUILD) change it in place, until
/// it is placed in another container.
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer beyond 64 bits, as its little-endian two's complement bytes (the legacy
    /// format's magic number).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// One of the allowed globals (a function or class that REDUCE may call, or a storage type).
    case global(TorchGlobal)
    /// A storage named by a persistent id.
    case storage(TorchStorageRef)
    /// A tensor from torch._utils._rebuild_tensor(_v2) (or _rebuild_parameter), or the tar
    /// format's tensors member.
    case tensor(TorchTensorRef)

    /// What the value is, for error messages ("a tuple", "the global torch.FloatStorage").
    public var kindDescription: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .bigInt(let b): return "an int of \(b.count) bytes"
        case .float: return "a float"
        case .string: return "a string"
        case .tuple(let t): return "a tuple of \(t.count)"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return "the global \(g.qualifiedName)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// A Python list under construction.
public final class PickleList {
    public var items: [PickleValue] = []
    /// How deep containers nest in it (1 for a list of plain values).
    var depth = 1
    /// Placed in another container: no longer changed.
    var frozen = false
    public init() {}
}

/// A Python dict (or OrderedDict) that keeps its insertion order. Keys are strings or ints.
public final class PickleDict {
    public private(set) var keys: [PickleKey] = []
    public private(set) var values: [PickleKey: PickleValue] = [:]
    /// How deep containers nest in it (1 for a dict of plain values).
    var depth = 1
    /// Placed in another container: no longer changed.
    var frozen = false
    public init() {}

    public func set(_ key: PickleKey, _ value: PickleValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    public subscript(_ key: PickleKey) -> PickleValue? { values[key] }
}

/// A dict key: torch's state_dicts use strings; nested metadata may use ints.
public enum PickleKey: Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        }
    }
}

/// The only globals a torch state_dict needs; every other (module, name) is refused.
public enum TorchGlobal: CaseIterable {
    case orderedDict
    case rebuildTensorV2
    case rebuildTensor
    case rebuildParameter
    case floatStorage, halfStorage, bfloat16Storage, longStorage
    /// The tar format (PyTorch ≤ 0.3) names a GPU storage's type; its bytes are the same.
    case cudaFloatStorage, cudaHalfStorage, cudaLongStorage
    /// The tar format's tensors member records each tensor's original type.
    case floatTensor, halfTensor, longTensor, cudaFloatTensor, cudaHalfTensor, cudaLongTensor

    public var module: String {
        switch self {
        case .orderedDict: return "collections"
        case .rebuildTensorV2, .rebuildTensor, .rebuildParameter: return "torch._utils"
        case .floatStorage, .halfStorage, .bfloat16Storage, .longStorage, .floatTensor, .halfTensor, .longTensor: return "torch"
        case .cudaFloatStorage, .cudaHalfStorage, .cudaLongStorage, .cudaFloatTensor, .cudaHalfTensor, .cudaLongTensor: return "torch.cuda"
        }
    }

    public var name: String {
        switch self {
        case .orderedDict: return "OrderedDict"
        case .rebuildTensorV2: return "_rebuild_tensor_v2"
        case .rebuildTensor: return "_rebuild_tensor"
        case .rebuildParameter: return "_rebuild_parameter"
        case .floatStorage, .cudaFloatStorage: return "FloatStorage"
        case .halfStorage, .cudaHalfStorage: return "HalfStorage"
        case .bfloat16Storage: return "BFloat16Storage"
        case .longStorage, .cudaLongStorage: return "LongStorage"
        case .floatTensor, .cudaFloatTensor: return "FloatTensor"
        case .halfTensor, .cudaHalfTensor: return "HalfTensor"
        case .longTensor, .cudaLongTensor: return "LongTensor"
        }
    }

    public var qualifiedName: String { "\(module).\(name)" }

    /// Whether error messages list it (the CUDA aliases go unnamed).
    var isListed: Bool { module != "torch.cuda" }

    /// The element type of a storage type; nil for the functions and tensor types.
    public var storageDType: SafeTensorsDType? {
        switch self {
        case .floatStorage, .cudaFloatStorage: return .f32
        case .halfStorage, .cudaHalfStorage: return .f16
        case .bfloat16Storage: return .bf16
        case .longStorage, .cudaLongStorage: return .i64
        default: return nil
        }
    }

    /// The element type of a tensor type; nil for everything else.
    public var tensorDType: SafeTensorsDType? {
        switch self {
        case .floatTensor, .cudaFloatTensor: return .f32
        case .halfTensor, .cudaHalfTensor: return .f16
        case .longTensor, .cudaLongTensor: return .i64
        default: return nil
        }
    }

    public init?(module: String, name: String) {
        guard let g = TorchGlobal.allCases.first(where: { $0.module == module && $0.name == name }) else { return nil }
        self = g
    }

    /// The storage type global for a dtype (for writing): always the CPU one.
    public static func storage(for dtype: SafeTensorsDType) -> TorchGlobal? {
        allCases.first { $0.storageDType == dtype && $0.isListed }
    }
}

/// A storage as a persistent id names it: its key (the root storage's, for a view), element type,
/// length, and for a view its offset in the root storage.
public struct TorchStorageRef: Equatable {
    public let key: String
    public let dtype: SafeTensorsDType
    /// Elements of this storage (of the view, for a view).
    public let numel: Int
    /// Where a view starts in its root storage, in elements; 0 for a root storage.
    public var offset: Int = 0
}

/// A tensor as a view of a storage: shape, strides (in elements) and storage offset.
public struct TorchTensorRef: Equatable {
    public let storage: TorchStorageRef
    public let offset: Int
    public let shape: [Int]
    public let stride: [Int]

    /// Elements of the tensor, or nil when the product overflows.
    public var count: Int? {
        var n = 1
        for d in shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }

    /// Throws unless the shape's product fits, strides match the dimensions and the largest
    /// element the view touches lies inside its storage (all with checked arithmetic).
    func checkBounds() throws {
        guard shape.count == stride.count else { throw PthError("tensor of \(shape.count) dimensions with \(stride.count) strides") }
        guard let count = count else { throw PthError("tensor of shape \(shape) has more elements than fit 64 bits") }
        guard count > 0 else { return }
        var last = offset
        for (n, s) in zip(shape, stride) {
            let (reach, o1) = (n - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(reach)
            guard !o1, !o2 else { throw PthError("tensor \(shape) with strides \(stride) at offset \(offset) reaches past 64 bits") }
            last = sum
        }
        guard last < storage.numel else {
            throw PthError("tensor \(shape) with strides \(stride) at offset \(offset) reaches element \(last) of a storage of \(storage.numel)")
        }
    }
}
