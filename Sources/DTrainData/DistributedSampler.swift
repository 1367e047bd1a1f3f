import DTrainCore

/// Which dataset indices each rank visits in an epoch, with the semantics of PyTorch's
/// `DistributedSampler`.
///
/// The global order of an epoch is the dataset order, or with `shuffle` a Fisher–Yates
/// permutation drawn from `SeededRandom(keys: seed &+ epoch)` — the same on every rank and for
/// every world size. It is then made a multiple of the world size W:
/// - `padToEqual` (training): padded to `ceil(N/W)·W` by repeating its own beginning (PyTorch's
///   `indices += indices[:padding_size]`, wrapping again if needed), so every rank gets the
///   same number of samples and takes the same number of steps;
/// - `dropLast`: truncated to `floor(N/W)·W` instead (PyTorch's `drop_last`; it takes precedence
///   over `padToEqual`);
/// - neither (evaluation): left as it is, so every sample is visited exactly once and shards
///   differ in length by at most one.
///
/// Rank r takes positions r, r+W, r+2W, … of that global order.
///
/// Resuming: `indices(epoch:skippingFirst: k)` drops the first k positions of the global order
/// before sharding. k counts samples, not steps (a run at world size W that finished s steps of
/// per-rank batch b has consumed k = s·b·W positions), so a checkpoint written at one world size
/// resumes at another: together the ranks visit exactly the positions k, k+1, … that one rank
/// would. The remainder is then made a multiple of W again by the same rule (padded by repeating
/// its beginning, or truncated, or left uneven), so training ranks still take equal steps.
public struct DistributedSampler: Equatable, Sendable {
    public let datasetSize: Int
    public let rank: Int
    public let worldSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool
    public let padToEqual: Bool

    /// - Parameters:
    ///   - shuffle: a new permutation each epoch (training); false keeps the dataset order.
    ///   - dropLast: truncate the global order to a multiple of the world size (wins over
    ///     `padToEqual`).
    ///   - padToEqual: pad the global order to a multiple of the world size (training).
    public init(datasetSize: Int, rank: Int, worldSize: Int, shuffle: Bool, seed: UInt64,
                dropLast: Bool, padToEqual: Bool) {
        precondition(datasetSize >= 0, "negative dataset size")
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) outside world of \(worldSize)")
        self.datasetSize = datasetSize
        self.rank = rank
        self.worldSize = worldSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.padToEqual = padToEqual
    }

    /// The global order of `epoch` before it is made a multiple of the world size.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<datasetSize)
        guard shuffle && datasetSize > 1 else { return order }
        var random = SeededRandom(keys: seed &+ UInt64(bitPattern: Int64(epoch)))
        for i in stride(from: datasetSize - 1, to: 0, by: -1) {
            order.swapAt(i, random.int(below: i + 1))
        }
        return order
    }

    /// Length of a global order of `count` positions after the padding/truncation rule.
    func adjustedLength(_ count: Int) -> Int {
        if dropLast { return count / worldSize * worldSize }
        if padToEqual && count > 0 { return (count + worldSize - 1) / worldSize * worldSize }
        return count
    }

    /// This rank's dataset indices for `epoch`, after skipping the first `globalSamples` positions
    /// of the (padded or truncated) global order. See the type's documentation.
    public func indices(epoch: Int, skippingFirst globalSamples: Int = 0) -> [Int] {
        precondition(globalSamples >= 0, "negative skip")
        let base = order(epoch: epoch)
        var global = Array(base.prefix(adjustedLength(base.count)))
        if padToEqual && !dropLast { pad(&global, to: adjustedLength(base.count), from: base) }
        let rest = Array(global.dropFirst(min(globalSamples, global.count)))
        var remaining = Array(rest.prefix(adjustedLength(rest.count)))
        if padToEqual && !dropLast { pad(&remaining, to: adjustedLength(rest.count), from: rest) }
        return Swift.stride(from: rank, to: remaining.count, by: worldSize).map { remaining[$0] }
    }

    /// PyTorch's padding: append the beginning of `source`, repeated as often as needed.
    private func pad(_ indices: inout [Int], to length: Int, from source: [Int]) {
        guard !source.isEmpty else { return }
        var i = 0
        while indices.count < length {
            indices.append(source[i % source.count])
            i += 1
        }
    }

    /// Samples this rank gets in a full epoch (the same every epoch).
    public var samplesPerRank: Int {
        let total = adjustedLength(datasetSize)
        return total > rank ? (total - rank + worldSize - 1) / worldSize : 0
    }

    /// Batches this rank runs in a full epoch: `ceil(samplesPerRank / batchSize)`, or the floor
    /// when the loader drops the last partial batch.
    public func stepsPerEpoch(batchSize: Int, dropLastPartial: Bool = false) -> Int {
        precondition(batchSize > 0, "batch size must be positive")
        return dropLastPartial ? samplesPerRank / batchSize : (samplesPerRank + batchSize - 1) / batchSize
    }
}
