import ArgumentParser
import Foundation
import DTrainDistributed
import DTrainTraining

/// Set by SIGINT/SIGTERM: the watcher finishes the evaluation in hand and exits.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

/// One line of DIR/eval.jsonl.
struct WatchedEvaluation: Codable {
    var checkpoint: String
    var epoch: Int
    var samples: Int
    var loss: Double
    var top1: Double
    var top5: Double
}

extension EvalCommand {
    /// Epoch checkpoints complete in `dir` (dtrain writes them atomically: a file only appears
    /// under its final name once whole; temporary files start with a dot).
    static func epochCheckpoints(in dir: String) -> [(epoch: Int, name: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-epoch-"), name.hasSuffix(".safetensors"),
                  let e = Int(name.dropFirst("checkpoint-epoch-".count).dropLast(".safetensors".count)) else { return nil }
            return (e, name)
        }.sorted { $0.0 < $1.0 }
    }

    /// `--watch DIR`: evaluates each new epoch checkpoint of a training run once, appending a line
    /// to DIR/eval.jsonl, until `--until-epoch` has been evaluated or a signal arrives. Under
    /// mpirun rank 0 picks the next checkpoint and broadcasts it, so all ranks evaluate the same.
    func watchDirectory(_ dir: String, _ communicator: Communicator) throws {
        signal(SIGINT) { _ in stopRequested = 1 }
        signal(SIGTERM) { _ in stopRequested = 1 }
        let logURL = URL(fileURLWithPath: dir).appendingPathComponent("eval.jsonl")
        var done = Set<Int>()
        if communicator.rank == 0, let text = try? String(contentsOf: logURL, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let e = try? JSONDecoder().decode(WatchedEvaluation.self, from: Data(line.utf8)) { done.insert(e.epoch) }
            }
        }
        var log: JSONLinesLog?
        if communicator.rank == 0 {
            guard FileManager.default.fileExists(atPath: dir) else { throw ValidationError("--watch \(dir): no such directory") }
            log = try JSONLinesLog(url: logURL)
            FileHandle.standardError.write("eval: watching \(dir) for epoch checkpoints\(untilEpoch.map { " until epoch \($0)" } ?? "")\n".data(using: .utf8)!)
        }
        while true {
            // Rank 0 decides: the next epoch to evaluate, 0 to wait, -1 to stop.
            var decision: [Int64] = [0]
            if communicator.rank == 0 {
                let reachedEnd = untilEpoch.map { until in (done.max() ?? 0) >= until } ?? false
                if stopRequested != 0 || reachedEnd {
                    decision[0] = -1
                } else if let next = Self.epochCheckpoints(in: dir).first(where: { !done.contains($0.epoch) }) {
                    decision[0] = Int64(next.epoch)
                }
            }
            try decision.withUnsafeMutableBytes { try communicator.broadcast($0.baseAddress!, count: 1, type: .int64, root: 0) }
            if decision[0] < 0 { return }
            if decision[0] == 0 {
                usleep(UInt32(pollSeconds * 1_000_000))
                continue
            }
            let epoch = Int(decision[0])
            let name = String(format: "checkpoint-epoch-%04d.safetensors", epoch)
            let totals = try evaluate((dir as NSString).appendingPathComponent(name), communicator,
                                      output: (dir as NSString).appendingPathComponent("eval-epoch-\(epoch)"), report: false)
            done.insert(epoch)
            if communicator.rank == 0 {
                let entry = WatchedEvaluation(checkpoint: name, epoch: epoch, samples: Int(totals.samples), loss: totals.meanLoss,
                                              top1: totals.top1Fraction, top5: totals.top5Fraction)
                try log?.append(entry)
                print(String(format: "epoch %d: %d samples  loss %.4f  top1 %.2f%%  top5 %.2f%%", epoch, entry.samples, entry.loss,
                             entry.top1 * 100, entry.top5 * 100))
            }
        }
    }
}
