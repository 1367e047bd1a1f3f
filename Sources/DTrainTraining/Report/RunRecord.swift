import Foundation

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
    /// The kernel set the engine runs on this CPU.
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
