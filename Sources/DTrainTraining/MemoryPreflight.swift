import Foundation
import DTrainCore
import DTrainNN

/// Checks, before a model is built, that training it fits in the memory this process may use,
/// so that a batch size or resolution that is too large is a clear error naming the numbers
/// instead of an allocation failure or the kernel's OOM killer.
///
/// The estimate builds the model at batch 1 and 2 at a small resolution and measures what it
/// allocates (`Storage.liveBytes`): the difference is one image's activations, gradients and
/// workspace, scaled by the pixel count to the resolution asked for; the rest is parameters and
/// gradients, plus two more copies for optimizer state, plus the loader's batches in flight.
public enum MemoryPreflight {
    public struct Estimate: Equatable, Sendable {
        /// Parameters, their gradients and optimizer state.
        public var fixedBytes: Double
        /// Activations, gradients and workspace per image at the resolution asked for.
        public var perImageBytes: Double
        public var batch: Int
        /// Decoded images the loader holds at once (its workers' batches and the one in use).
        public var loaderImages: Int
        public var resolution: Int
        public var totalBytes: Double {
            fixedBytes + perImageBytes * Double(batch) + Double(loaderImages) * Double(resolution * resolution * 3 * 4)
        }
    }

    /// Estimates what training `spec` with `options` takes at `batch` images of `resolution`² and
    /// `precision` (bf16 stores activations in less memory).
    public static func estimate(spec: ModelSpec, options: ModelOptions, batch: Int, resolution: Int, loaderBatches: Int,
                                precision: Precision = .fp32) -> Estimate {
        let probeResolution = min(resolution, spec.defaultResolution)
        func built(_ b: Int) -> Double {
            let before = Storage.liveBytes
            let model = Model(spec: spec, options: options)
            model.build(batch: b, resolution: probeResolution, precision: precision)
            return Double(Storage.liveBytes - before)
        }
        let one = built(1), two = built(2)
        let perImageProbe = max(0, two - one)
        let parameters = Double(Model(spec: spec, options: options).parameterCount) * 4
        let scale = Double(resolution) * Double(resolution) / (Double(probeResolution) * Double(probeResolution))
        return Estimate(fixedBytes: max(0, one - perImageProbe) + 2 * parameters, perImageBytes: perImageProbe * scale,
                        batch: batch, loaderImages: batch * max(1, loaderBatches), resolution: resolution)
    }

    /// Memory this process may still take: the smaller of MemAvailable and the cgroup's limit
    /// less its usage, with where that number comes from; nil where neither can be read.
    public static func available() -> (bytes: Double, source: String)? {
        var best: (Double, String)?
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kib = Double(line.split(separator: " ").dropFirst().first ?? "") {
            best = (kib * 1024, "MemAvailable")
        }
        func number(_ path: String) -> Double? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        // cgroup v2, then v1 (a limit near 2^63 means none).
        let limits = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                      ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
        for (limitPath, usagePath) in limits {
            guard let limit = number(limitPath), limit < 1e18 else { continue }
            let free = max(0, limit - (number(usagePath) ?? 0))
            if best == nil || free < best!.0 { best = (free, "the cgroup's memory limit") }
            break
        }
        return best.map { (bytes: $0.0, source: $0.1) }
    }

    static func gib(_ bytes: Double) -> String { String(format: "%.1f GiB", bytes / 1_073_741_824) }

    /// Throws when `estimate` for each of `ranksOnNode` ranks exceeds 90 % of what is available.
    public static func check(_ estimate: Estimate, model: String, ranksOnNode: Int,
                             available: (bytes: Double, source: String)? = MemoryPreflight.available()) throws {
        guard let available else { return }
        let share = available.bytes / Double(max(1, ranksOnNode))
        guard estimate.totalBytes > 0.9 * share else { return }
        let ranks = ranksOnNode > 1 ? " per rank (\(ranksOnNode) ranks on this node share \(gib(available.bytes)))" : ""
        throw TrainingError("--batch-size \(estimate.batch) at --resolution \(estimate.resolution): \(model) needs about \(gib(estimate.totalBytes))\(ranks), but \(gib(share)) is available (\(available.source)); lower --batch-size or --resolution")
    }
}
