/// A 64-bit FNV-1a-style hash over 8-byte words (then the tail bytes). Each step is a bijection of
/// the running hash, so any change confined to one word always changes the result; it runs at
/// memory speed. Used to detect truncated or corrupted checkpoint data.
public struct Checksum64 {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01B3

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        let words = bytes.count / 8
        for i in 0..<words {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* Checksum64.prime
        }
        for i in (words * 8)..<bytes.count { h = (h ^ UInt64(bytes[i])) &* Checksum64.prime }
        value = h
    }

    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
