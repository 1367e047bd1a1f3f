import DTrainNN

extension TrainConfig.Freeze {
    /// Parses `none`, `backbone` or `until=LAYER`.
    public static func parse(_ text: String) -> TrainConfig.Freeze? {
        switch text {
        case "none": return TrainConfig.Freeze.none
        case "backbone": return .backbone
        default:
            guard text.hasPrefix("until="), text.count > 6 else { return nil }
            return .until(String(text.dropFirst(6)))
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .backbone: return "backbone"
        case .until(let layer): return "until=\(layer)"
        }
    }

    /// Freezes `model` (before it is built): `backbone`, everything but the classifier head;
    /// `until=LAYER`, every state entry up to and including the last one under LAYER (a top-level
    /// module such as layer3, or any module path such as layer3.1). Returns a one-line summary, or
    /// nil for `none`. Throws naming the flag when LAYER is not a module of the model or nothing
    /// would be left to train.
    @discardableResult
    public func apply(to model: Model) throws -> String? {
        let names = model.state.map(\.name)
        let frozen: Set<String>
        switch self {
        case .none:
            model.freeze { _ in false }
            return nil
        case .backbone:
            let head = Set(model.headEntries.map(\.name))
            frozen = Set(names.filter { !head.contains($0) })
        case .until(let layer):
            guard let last = names.lastIndex(where: { $0 == layer || $0.hasPrefix(layer + ".") }) else {
                var modules: [String] = []
                for n in names { let top = String(n.split(separator: ".")[0]); if modules.last != top { modules.append(top) } }
                throw TrainingError("--freeze until=\(layer): \(model.name) has no module \(layer); its modules are \(modules.joined(separator: ", "))")
            }
            frozen = Set(names[...last])
        }
        model.freeze { frozen.contains($0) }
        let trainable = model.trainableParameterCount
        guard trainable > 0 else { throw TrainingError("--freeze \(description): every parameter of \(model.name) would be frozen; nothing would train") }
        let frozenNames = model.state.filter { if case .parameter(let p) = $0.kind { return !p.trainable } else { return false } }.map(\.name)
        let training = model.state.filter { if case .parameter(let p) = $0.kind { return p.trainable } else { return false } }.map(\.name)
        return "freeze \(description): \(model.parameterCount - trainable) parameters frozen in \(PretrainedReport.grouped(frozenNames)) "
            + "(their BatchNorms in eval mode); training \(trainable) in \(PretrainedReport.grouped(training))"
    }
}
