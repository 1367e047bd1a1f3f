/// A value built by `TorchUnpickler`: only what torch's state_dict pickles contain.
///
/// Lists and dicts are reference types, as in Python: the pickle's memo can hand out the same
/// list or dict again (BINGET) and later opcodes (APPEND, SETITEM, BUILD) change it in place.
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// One of the allowed globals (a function or class that REDUCE may call, or a storage type).
    case global(TorchGlobal)
    /// A storage named by a persistent id: ('storage', type, key, location, numel).
    case storage(TorchStorageRef)
    /// A tensor from torch._utils._rebuild_tensor_v2 (or _rebuild_parameter).
    case tensor(TorchTensorRef)

    /// What the value is, for error messages ("a tuple", "the global torch.FloatStorage").
    public var kindDescription: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
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
    public init() {}
}

/// A Python dict (or OrderedDict) that keeps its insertion order. Keys are strings or ints.
public final class PickleDict {
    public private(set) var keys: [PickleKey] = []
    public private(set) var values: [PickleKey: PickleValue] = [:]
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
    case rebuildParameter
    case floatStorage, halfStorage, bfloat16Storage, longStorage

    public var module: String {
        switch self {
        case .orderedDict: return "collections"
        case .rebuildTensorV2, .rebuildParameter: return "torch._utils"
        case .floatStorage, .halfStorage, .bfloat16Storage, .longStorage: return "torch"
        }
    }

    public var name: String {
        switch self {
        case .orderedDict: return "OrderedDict"
        case .rebuildTensorV2: return "_rebuild_tensor_v2"
        case .rebuildParameter: return "_rebuild_parameter"
        case .floatStorage: return "FloatStorage"
        case .halfStorage: return "HalfStorage"
        case .bfloat16Storage: return "BFloat16Storage"
        case .longStorage: return "LongStorage"
        }
    }

    public var qualifiedName: String { "\(module).\(name)" }

    /// The element type of a storage type; nil for the functions.
    public var storageDType: SafeTensorsDType? {
        switch self {
        case .floatStorage: return .f32
        case .halfStorage: return .f16
        case .bfloat16Storage: return .bf16
        case .longStorage: return .i64
        default: return nil
        }
    }

    public init?(module: String, name: String) {
        guard let g = TorchGlobal.allCases.first(where: { $0.module == module && $0.name == name }) else { return nil }
        self = g
    }

    /// The storage type global for a dtype (for writing).
    public static func storage(for dtype: SafeTensorsDType) -> TorchGlobal? {
        allCases.first { $0.storageDType == dtype }
    }
}

/// A storage as a persistent id names it: its record key in the archive, element type and length.
public struct TorchStorageRef: Equatable {
    public let key: String
    public let dtype: SafeTensorsDType
    public let numel: Int
}

/// A tensor as a view of a storage: shape, strides (in elements) and storage offset.
public struct TorchTensorRef: Equatable {
    public let storage: TorchStorageRef
    public let offset: Int
    public let shape: [Int]
    public let stride: [Int]
}
