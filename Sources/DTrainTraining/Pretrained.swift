import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights

/// What loading pretrained weights did, by name.
public struct PretrainedReport: Sendable {
    public var path: String
    public var format: WeightsFormat
    /// State entries taken from the file.
    public var loaded: [String] = []
    /// Entries of the model not in the file or not fitting it: the replaced head, initialised anew.
    public var new: [String] = []
    /// Tensors of the file that were not used, with why.
    public var ignored: [String] = []

    /// Names grouped by their top-level module ("layer1 (60)"), in order.
    static func grouped(_ names: [String]) -> String {
        var groups: [(String, Int)] = []
        for n in names {
            let top = String(n.split(separator: ".").first ?? Substring(n))
            if groups.last?.0 == top { groups[groups.count - 1].1 += 1 } else { groups.append((top, 1)) }
        }
        return groups.map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
    }

    /// Report lines: loaded, new, ignored.
    public var lines: [String] {
        var out = ["pretrained \(path) (\(format.rawValue)): loaded \(loaded.count) tensors: \(PretrainedReport.grouped(loaded))"]
        out.append("pretrained: new: " + (new.isEmpty ? "nothing (the file's head fits)" : new.joined(separator: ", ")))
        out.append("pretrained: ignored: " + (ignored.isEmpty ? "nothing" : ignored.joined(separator: ", ")))
        return out
    }
}

/// Loads pretrained weights (a .pth from torch.save, a safetensors state_dict or a dtrain
/// checkpoint) into a freshly initialised model, for transfer learning. The file is read through
/// `WeightsFile.read`, so a corrupted checkpoint or .pth is refused before anything is loaded.
///
/// Every entry must be present with its shape except the classifier head: when the file's head
/// does not fit (another number of classes) it is replaced, i.e. left out of loading and
/// initialised as torchvision's nn.Linear (kaiming_uniform with a = √5 for the weight, which is
/// U(−1/√fan_in, 1/√fan_in), and the same bound for the bias), from `seed`. Any other missing,
/// unexpected or mis-shaped key is an error naming the keys; a dtrain checkpoint's optimizer state
/// is ignored.
public enum Pretrained {
    public static func load(_ path: String, into model: Model, seed: UInt64) throws -> PretrainedReport {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw TrainingError("--pretrained \(MessageText.path(path)): no such file") }
        let weights: WeightsFile
        do { weights = try WeightsFile.read(url) } catch {
            throw TrainingError("--pretrained \(MessageText.describe(error))")
        }
        let file = weights.tensors
        var report = PretrainedReport(path: path, format: weights.format)

        let head = model.headEntries
        let headNames = Set(head.map(\.name))
        let fits = head.allSatisfy { e in file.entries[e.name].map { $0.shape == e.torchShape } ?? false }
        let optimizerState = file.names.filter { $0.hasPrefix(Checkpoint.optimizerPrefix) }
        var ignoring = Checkpoint.nonModelPrefixes
        if !fits { ignoring += head.map(\.name) }
        do {
            try StateDict.load(file, into: model, source: "--pretrained \(path)", ignoringPrefixes: ignoring,
                               skip: { !fits && headNames.contains($0.name) })
        } catch let m as StateDictMismatch {
            throw TrainingError(m.description)
        }
        report.loaded = model.state.map(\.name).filter { (fits || !headNames.contains($0)) && file.entries[$0] != nil }
        if !fits {
            var rng = SeededRandom(seed: seed ^ 0x6865_6164)  // "head"
            for e in head {
                guard case .parameter(let p) = e.kind else { continue }
                let fanIn = head.first { $0.torchShape.count == 2 }?.torchShape[1] ?? p.count
                p.initialize(.uniform(bound: 1 / Float(fanIn).squareRoot()), random: &rng)
                report.new.append("\(e.name) \(e.torchShape)")
            }
            report.new[report.new.count - 1] += " (a head for \(model.numClasses) classes, initialised as nn.Linear)"
            let theirs = head.compactMap { e in file.entries[e.name].map { "\(e.name) \($0.shape)" } }
            if !theirs.isEmpty { report.ignored.append(theirs.joined(separator: ", ") + " (the file's head)") }
        }
        let counters = model.state.filter { if case .counter = $0.kind { return file.entries[$0.name] == nil } else { return false } }
        if !counters.isEmpty { report.new.append("\(counters.count) num_batches_tracked at 0 (the file predates them)") }
        if !optimizerState.isEmpty { report.ignored.append("\(optimizerState.count) optimizer state tensors") }
        return report
    }
}
