import Foundation
import DTrainCore

/// A state_dict that does not fit a model: every problem, by name.
public struct StateDictMismatch: Error, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var shapeMismatches: [String] = []
    public var source = "weights"

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    public var description: String {
        var parts: [String] = []
        func list(_ xs: [String]) -> String { xs.count <= 6 ? xs.joined(separator: ", ") : xs.prefix(6).joined(separator: ", ") + ", … (\(xs.count) in all)" }
        if !missing.isEmpty { parts.append("missing keys: \(list(missing))") }
        if !unexpected.isEmpty { parts.append("unexpected keys: \(list(unexpected))") }
        if !shapeMismatches.isEmpty { parts.append("shape mismatches: \(list(shapeMismatches))") }
        return "\(source) does not fit the model: " + parts.joined(separator: "; ")
    }
}

/// Named tensors a model's state can be loaded from (a weights file, read by DTrainWeights).
public protocol StateDictSource {
    /// Tensor names, in the file's order.
    var names: [String] { get }
    /// The shape of the tensor called `name`, nil when there is none.
    func shape(of name: String) -> [Int]?
    /// A tensor's values as Float.
    func floats(_ name: String) throws -> [Float]
    /// A tensor's values as Int64.
    func int64s(_ name: String) throws -> [Int64]
}

/// Where a model's state can be written as named tensors (a weights file writer in DTrainWeights).
public protocol StateDictSink {
    mutating func add(_ name: String, floats: [Float], shape: [Int])
    mutating func add(_ name: String, int64s: [Int64], shape: [Int])
}

/// Moves a model's state to and from torch's state_dict form: torchvision's names, torch's shapes
/// and memory order (OIHW convolutions), float32 tensors and an int64 num_batches_tracked.
/// The file formats themselves live in DTrainWeights; here the state is named tensors.
public enum StateDict {
    /// Adds every state entry of `model` to `writer`, under `prefix`.
    public static func write<Sink: StateDictSink>(_ model: Model, into writer: inout Sink, prefix: String = "") {
        for entry in model.state {
            let name = prefix + entry.name
            switch entry.kind {
            case .parameter(let p): writer.add(name, floats: p.torchValues(), shape: p.torchShape)
            case .buffer(let b): writer.add(name, floats: Array(b.storage.buffer), shape: b.torchShape)
            case .counter(let c): writer.add(name, int64s: [c.value], shape: [])
            }
        }
    }

    /// Loads the entries of `file` named `prefix + name` into `model`.
    ///
    /// With `skip`, entries for which it returns true are left as they are (a replaced head).
    /// Throws `StateDictMismatch` listing missing, unexpected and mis-shaped keys, before changing anything.
    /// Keys starting with one of `ignoringPrefixes` (other state kept in the same file) are not
    /// reported as unexpected. A file with none of the model's counters (num_batches_tracked, which
    /// PyTorch 0.4.0 and earlier never saved) sets them to 0, as torchvision's BatchNorm does.
    public static func load(_ file: some StateDictSource, into model: Model, prefix: String = "", source: String = "weights",
                            ignoringPrefixes: [String] = [], skip: (StateEntry) -> Bool = { _ in false }) throws {
        var mismatch = StateDictMismatch(source: source)
        let ours = Set(model.state.map { prefix + $0.name })
        let counters = model.state.filter { if case .counter = $0.kind { return !skip($0) } else { return false } }
        let countersAbsent = !counters.isEmpty && counters.allSatisfy { file.shape(of: prefix + $0.name) == nil }
        for entry in model.state where !skip(entry) {
            let key = prefix + entry.name
            if countersAbsent, case .counter = entry.kind { continue }
            guard let shape = file.shape(of: key) else { mismatch.missing.append(entry.name); continue }
            let expected = entry.torchShape
            // torch stores num_batches_tracked as a 0-d tensor; accept [1] too.
            let fits = shape == expected || (expected.isEmpty && shape.reduce(1, *) == 1)
            if !fits { mismatch.shapeMismatches.append("\(entry.name) \(shape) vs \(expected)") }
        }
        for key in file.names where key.hasPrefix(prefix) && !ours.contains(key) && !ignoringPrefixes.contains(where: { key.hasPrefix($0) }) {
            mismatch.unexpected.append(String(key.dropFirst(prefix.count)))
        }
        guard mismatch.isEmpty else { throw mismatch }
        for entry in model.state where !skip(entry) {
            let key = prefix + entry.name
            switch entry.kind {
            case .parameter(let p): p.setTorchValues(try file.floats(key))
            case .buffer(let b): _ = b.storage.buffer.update(fromContentsOf: try file.floats(key))
            case .counter(let c): c.value = countersAbsent ? 0 : try file.int64s(key).first ?? 0
            }
        }
    }
}
