import DTrainCore

/// torchvision's `RASampler` (references/classification/sampler.py, from DeiT): repeated
/// augmentation. Each sample of an epoch's permutation appears `repetitions` times in a row, and
/// consecutive positions go to consecutive ranks, so the repeats of a sample are augmented on
/// different ranks (with at least `repetitions` ranks) and differently (`Sample.repetition` keys
/// the augmentation, see `ImageTransform.random(seed:epoch:index:repetition:)`).
///
/// The permutation is torch's: `torch.randperm(N, generator=torch.Generator().manual_seed(seed +
/// epoch))` (`MersenneTwister`), so the indices equal RASampler's. Every rank takes
/// `floor(floor(N / 256) · 256 / W)` samples (RASampler's `num_selected_samples`), the positions
/// rank, rank + W, … of the repeated order; together the ranks take its first
/// `samplesPerRank · W` positions, so the padding RASampler adds is never reached.
///
/// Resuming, as `DistributedSampler`: `samples(epoch:skippingFirst: k)` drops the first k
/// positions of that global order (k counts samples of all ranks) and shards the rest, truncated
/// to a multiple of the world size so the ranks take equal steps.
public struct RepeatedAugmentationSampler: Equatable, Sendable {
    /// One position of an epoch: a dataset index and which of its repeats it is.
    public struct Sample: Equatable, Sendable {
        public var index: Int
        /// 0 ..< repetitions.
        public var repetition: Int

        public init(index: Int, repetition: Int) {
            self.index = index
            self.repetition = repetition
        }
    }

    public let datasetSize: Int
    public let rank: Int
    public let worldSize: Int
    public let repetitions: Int
    public let shuffle: Bool
    public let seed: UInt64

    public init(datasetSize: Int, rank: Int, worldSize: Int, repetitions: Int = 3, shuffle: Bool = true, seed: UInt64) {
        precondition(datasetSize >= 0, "negative dataset size")
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) outside world of \(worldSize)")
        precondition(repetitions >= 1, "repetitions must be at least 1")
        self.datasetSize = datasetSize
        self.rank = rank
        self.worldSize = worldSize
        self.repetitions = repetitions
        self.shuffle = shuffle
        self.seed = seed
    }

    /// Samples every rank takes in a full epoch (RASampler's `num_selected_samples`); 0 when the
    /// dataset has fewer than 256 samples or fewer whole 256s than ranks.
    public var samplesPerRank: Int { datasetSize / 256 * 256 / worldSize }

    /// The permutation of `epoch` (torch's randperm seeded with seed + epoch), or the dataset order.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<datasetSize) }
        var generator = MersenneTwister(seed: seed &+ UInt64(bitPattern: Int64(epoch)))
        return generator.randperm(datasetSize)
    }

    /// The positions all ranks take in `epoch`, in order: each index of `order(epoch:)` repeated
    /// `repetitions` times, the first `samplesPerRank × worldSize` of them.
    public func globalOrder(epoch: Int) -> [Sample] {
        let count = samplesPerRank * worldSize
        guard count > 0 else { return [] }
        let order = order(epoch: epoch)
        return (0..<count).map { Sample(index: order[$0 / repetitions], repetition: $0 % repetitions) }
    }

    /// This rank's samples of `epoch` after the first `globalSamples` positions of the global
    /// order; see the type's documentation.
    public func samples(epoch: Int, skippingFirst globalSamples: Int = 0) -> [Sample] {
        precondition(globalSamples >= 0, "negative skip")
        let rest = globalOrder(epoch: epoch).dropFirst(globalSamples)
        let usable = rest.count / worldSize * worldSize
        return Array(rest.prefix(usable).enumerated().lazy.filter { $0.offset % worldSize == rank }.map(\.element))
    }

    /// The dataset indices of `samples(epoch:skippingFirst:)`.
    public func indices(epoch: Int, skippingFirst globalSamples: Int = 0) -> [Int] {
        samples(epoch: epoch, skippingFirst: globalSamples).map(\.index)
    }
}
