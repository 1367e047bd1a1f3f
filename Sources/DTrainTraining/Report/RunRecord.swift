import Foundation
import DTrainCore

/// What a run was started with, written by rank 0 to `OUTPUT/run.json` when training starts (and
/// rewritten on resume): the settings and the machine, for `dtrain report` and for people reading
/// the directory later. Keys are snake_case, as in metrics.jsonl.
public struct RunRecord: Codable, Equatable, Sendable {
    public var dtrain_version: String
    public var model: String
    public var ranks: Int
    public var threads_per_rank: Int
    /// The CPU's model name, from /proc/cpuinfo.
    public var cpu: String
    /// Rank 0's kernel set (`KernelSet`: avx2, avx512) and the lanes of its vectors.
    public var kernels: String
    /// ISO 8601 time the run (or its latest resume) started.
    public var started: String
    /// Every training setting, by its command-line name.
    public var settings: [String: String]

    public init(dtrain_version: String, model: String, ranks: Int, threads_per_rank: Int, cpu: String, kernels: String,
                started: String, settings: [String: String]) {
        self.dtrain_version = dtrain_version
        self.model = model
        self.ranks = ranks
        self.threads_per_rank = threads_per_rank
        self.cpu = cpu
        self.kernels = kernels
        self.started = started
        self.settings = settings
    }

    /// The record of a run starting now with `config`: every setting by its flag name
    /// (`batchSize` → `batch-size`), nested values flattened as their descriptions; `kernels` is
    /// the set the model was built with.
    public init(config: TrainConfig, version: String, ranks: Int, threads: Int, kernels: KernelSet, now: Date = Date()) {
        var settings: [String: String] = [:]
        for child in Mirror(reflecting: config).children {
            guard let label = child.label else { continue }
            var text = "\(child.value)"
            if text.hasPrefix("Optional(") && text.hasSuffix(")") { text = String(text.dropFirst(9).dropLast()) }
            if text == "nil" { continue }
            settings[RunRecord.flagName(label)] = text
        }
        self.init(dtrain_version: version, model: config.model, ranks: ranks, threads_per_rank: threads, cpu: RunRecord.cpuModelName,
                  kernels: kernels.summary, started: ISO8601DateFormatter().string(from: now), settings: settings)
    }

    /// `batchSize` → `batch-size`, `syncBN` → `sync-bn`, `modelEMASteps` → `model-ema-steps`: the
    /// words of `TrainConfig.readableName`, an acronym kept as one word.
    static func flagName(_ property: String) -> String {
        TrainConfig.readableName(property).lowercased().replacingOccurrences(of: " ", with: "-")
    }

    /// The file name in the run directory.
    public static let fileName = "run.json"

    /// The CPU's model name ("unknown" where /proc/cpuinfo has none).
    public static var cpuModelName: String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        return "unknown"
    }
}
