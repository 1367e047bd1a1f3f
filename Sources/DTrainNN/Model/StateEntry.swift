import DTrainCore

/// A float buffer that is part of the state but not trained (BatchNorm's running statistics).
public final class StateBuffer {
    public let torchShape: [Int]
    public let storage: Storage

    public init(torchShape: [Int], fill: Float) {
        self.torchShape = torchShape
        storage = Storage(count: torchShape.reduce(1, *))
        if fill != 0 { storage.buffer.update(repeating: fill) }
    }

    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}

/// An int64 counter in the state (BatchNorm's num_batches_tracked).
public final class StateCounter {
    public var value: Int64 = 0
    public init() {}
}

/// One named entry of a model's state, named as in torchvision's state_dict.
public struct StateEntry {
    public enum Kind {
        case parameter(Parameter)
        case buffer(StateBuffer)
        case counter(StateCounter)
    }
    public let name: String
    public let kind: Kind

    public var torchShape: [Int] {
        switch kind {
        case .parameter(let p): return p.torchShape
        case .buffer(let b): return b.torchShape
        case .counter: return []
        }
    }
}

/// Joins a prefix and a name the way torch's state_dict does ("layer1.0" + "conv1").
@inline(__always)
public func qualified(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : (name.isEmpty ? prefix : prefix + "." + name)
}
