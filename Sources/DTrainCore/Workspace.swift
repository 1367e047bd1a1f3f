/// Scratch memory shared by every layer of a model.
///
/// Layers run one at a time, so one buffer serves them all: while a model is built each layer
/// `reserve`s what its largest pass needs, then `allocate()` creates the buffer once. Layers call
/// `pointer(count:)` inside a pass and must not keep the memory across passes.
public final class Workspace {
    public private(set) var capacity = 0
    private var storage: Storage?

    public init() {}

    /// Records that some pass needs `count` floats of scratch.
    public func reserve(_ count: Int) { capacity = max(capacity, count) }

    /// Allocates the buffer at the largest reserved size; does nothing if it is already that big.
    public func allocate() {
        if let storage, storage.count >= capacity { return }
        storage = Storage(count: capacity)
    }

    /// Scratch of at least `count` floats, valid until the next call from any layer.
    @inline(__always)
    public func pointer(count: Int) -> UnsafeMutablePointer<Float> {
        guard let storage, count <= storage.count else {
            fatalError("workspace: \(count) floats asked for but \(capacity) were reserved; a layer's build() under-reserved")
        }
        return storage.pointer
    }

    public var allocatedBytes: Int { (storage?.count ?? 0) * MemoryLayout<Float>.stride }
}
