/// The 32-bit Mersenne Twister (MT19937) as torch's CPU generator runs it, so dtrain can draw what
/// `torch.Generator().manual_seed(seed)` draws: `torch.randperm(n, generator=g)` is `randperm(n)`.
public struct MersenneTwister: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var next = 624

    /// torch's `manual_seed(seed)`: the low 32 bits of `seed` seed the generator.
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            let p = state[i - 1]
            state[i] = 1_812_433_253 &* (p ^ (p >> 30)) &+ UInt32(i)
        }
    }

    /// The next 32-bit output (torch's `CPUGeneratorImpl::random()`).
    public mutating func nextUInt32() -> UInt32 {
        if next >= 624 { twist() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for k in 0..<624 {
            let y = (state[k] & 0x8000_0000) | (state[(k + 1) % 624] & 0x7FFF_FFFF)
            state[k] = state[(k + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
        }
        next = 0
    }

    /// torch's CPU `randperm(n)` (for n below 2³²/20): the identity permutation shuffled forward,
    /// swapping position i with i + random() mod (n − i).
    public mutating func randperm(_ n: Int) -> [Int] {
        precondition(n >= 0 && n < Int(UInt32.max / 20), "randperm of \(n)")
        var r = Array(0..<n)
        guard n > 1 else { return r }
        for i in 0..<(n - 1) {
            let z = Int(nextUInt32() % UInt32(n - i))
            r.swapAt(i, i + z)
        }
        return r
    }
}
