import Foundation
import DTrainCore
import DTrainDistributed

/// Where each rank's step time goes, and what a run shows while it trains: the share of step time
/// spent computing, waiting for data and waiting for the gradient allreduce (per rank, gathered
/// every `--print-freq` steps and every epoch), written by rank 0 to TensorBoard
/// (`OUTPUT/tensorboard/`) and, per epoch, to metrics.jsonl.
///
/// Every rank calls `step(...)` after every step and `epoch(...)` at every epoch's end, at the
/// same points: both make a collective (one small allgather) when one is due.
final class RunTelemetry {
    private let communicator: Communicator
    private let printEvery: Int
    private let writer: TensorBoardWriter?
    /// This rank's seconds since the last gather and since the epoch started: compute, data
    /// wait, allreduce wait.
    private var window = [Double](repeating: 0, count: 3)
    private var epochTotals = [Double](repeating: 0, count: 3)
    /// Gathered (rank-major) triples, allocated once.
    private var gathered: [Double]

    init(communicator: Communicator, printEvery: Int, writer: TensorBoardWriter?) {
        self.communicator = communicator
        self.printEvery = max(1, printEvery)
        self.writer = writer
        gathered = [Double](repeating: 0, count: 3 * communicator.size)
    }

    /// Starts an epoch's totals.
    func beginEpoch() {
        for i in 0..<3 { window[i] = 0; epochTotals[i] = 0 }
    }

    /// Records one step (`dataWait` before it, `stepSeconds` of compute and communication,
    /// `allreduceWait` of that spent waiting after backward) and, every `printEvery` global steps,
    /// gathers the ranks' shares and writes the step's scalars.
    func step(globalStep: Int, dataWait: Double, stepSeconds: Double, allreduceWait: Double,
              loss: Double, top1: Double, lr: Double, imagesPerSecond: Double) throws {
        let compute = max(0, stepSeconds - allreduceWait)
        window[0] += compute; window[1] += dataWait; window[2] += allreduceWait
        epochTotals[0] += compute; epochTotals[1] += dataWait; epochTotals[2] += allreduceWait
        guard globalStep % printEvery == 0 else { return }
        let perRank = try gather(window)
        for i in 0..<3 { window[i] = 0 }
        guard let writer else { return }
        var scalars: [(tag: String, value: Double)] = [("train/loss", loss), ("train/top1", top1), ("train/lr", lr),
                                                       ("train/images_per_s", imagesPerSecond)]
        scalars += RunTelemetry.shares(perRank)
        try writer.add(scalars, step: globalStep)
    }

    /// The epoch's per-rank seconds (compute, data wait, allreduce wait) in `metrics`, and the
    /// epoch's scalars to TensorBoard at `globalStep`.
    func epoch(_ metrics: inout EpochMetrics, globalStep: Int) throws {
        let perRank = try gather(epochTotals)
        metrics.compute_seconds = perRank.map { $0[0] }
        metrics.data_wait_seconds = perRank.map { $0[1] }
        metrics.allreduce_wait_seconds = perRank.map { $0[2] }
        guard let writer else { return }
        var scalars: [(tag: String, value: Double)] = [("epoch/train_loss", metrics.train_loss), ("epoch/train_top1", metrics.train_top1),
                                                       ("epoch/lr", metrics.lr), ("epoch/images_per_s", metrics.images_per_s)]
        if let v = metrics.val_loss { scalars.append(("epoch/val_loss", v)) }
        if let v = metrics.val_top1 { scalars.append(("epoch/val_top1", v)) }
        if let v = metrics.val_top5 { scalars.append(("epoch/val_top5", v)) }
        for (tag, value) in [("epoch/ema_val_loss", metrics.ema_val_loss), ("epoch/ema_val_top1", metrics.ema_val_top1),
                             ("epoch/ema_val_top5", metrics.ema_val_top5)] {
            if let value { scalars.append((tag, value)) }
        }
        scalars += RunTelemetry.shares(perRank).map { ("epoch/" + $0.tag.dropFirst("time/".count), $0.value) }
        try writer.add(scalars, step: globalStep)
        try writer.synchronize()
    }

    /// Every rank's triple, in rank order (one allgather; none for a single process).
    private func gather(_ mine: [Double]) throws -> [[Double]] {
        if communicator.size == 1 { return [mine] }
        try mine.withUnsafeBytes { send in
            try gathered.withUnsafeMutableBytes { recv in
                try communicator.allgather(send.baseAddress!, recv.baseAddress!, count: 3, type: .float64)
            }
        }
        return (0..<communicator.size).map { r in Array(gathered[(3 * r)..<(3 * r + 3)]) }
    }

    /// time/compute_share_rankN, time/data_wait_share_rankN, time/allreduce_wait_share_rankN.
    static func shares(_ perRank: [[Double]]) -> [(tag: String, value: Double)] {
        var out: [(tag: String, value: Double)] = []
        for (r, t) in perRank.enumerated() {
            let total = t.reduce(0, +)
            guard total > 0 else { continue }
            out += [("time/compute_share_rank\(r)", t[0] / total), ("time/data_wait_share_rank\(r)", t[1] / total),
                    ("time/allreduce_wait_share_rank\(r)", t[2] / total)]
        }
        return out
    }
}
