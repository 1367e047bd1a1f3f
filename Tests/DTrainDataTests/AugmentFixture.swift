import XCTest
@testable import DTrainData

/// Tests/DTrainDataTests/Fixtures/augment_fixtures.json, written by
/// Tests/FixtureScripts/augment_fixtures.py with torchvision.
struct AugmentFixture: Decodable {
    struct Image: Decodable {
        let width: Int
        let height: Int
        let hex: String
    }

    struct OpCase: Decodable {
        let op: String
        let magnitude: Double
        let interpolation: String
        let image: String
        let hex: String
    }

    struct Erase: Decodable {
        let i: Int, j: Int, h: Int, w: Int
        let mean: [Float]
        let std: [Float]
        let values: [Float]
    }

    struct Mix: Decodable {
        let original: Double
        let weights: [Double]
        let chains: [String]
        let hex: String
    }

    struct SpaceEntry: Decodable {
        let op: String
        let signed: Bool
        let magnitudes: [Double]
    }

    /// One AutoAugment step, `[name, probability, bin or null]`.
    struct Step: Decodable {
        let op: String
        let probability: Double
        let bin: Int?

        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            op = try c.decode(String.self)
            probability = try c.decode(Double.self)
            bin = try c.decodeNil() ? nil : try c.decode(Int.self)
        }
    }

    let torchvision: String
    let images: [String: Image]
    let ops: [OpCase]
    let erase: Erase
    let mix: Mix
    /// Image size ("24x20") → policy → the ops in order.
    let spaces: [String: [String: [SpaceEntry]]]
    let policies: [String: [[Step]]]

    static func load() throws -> AugmentFixture {
        try JSONDecoder().decode(AugmentFixture.self, from: fixtureData("augment_fixtures.json"))
    }
}

/// Bytes of a hex string.
func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    precondition(digits.count % 2 == 0, "odd hex string")
    func value(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}

/// `body` with the bytes as an `RGB8Image` and a spare image of the same size; returns the bytes after.
func withImage(_ pixels: [UInt8], width: Int, height: Int, _ body: (RGB8Image, RGB8Image) -> Void) -> [UInt8] {
    var out = pixels
    var spare = [UInt8](repeating: 0, count: pixels.count)
    out.withUnsafeMutableBufferPointer { p in
        spare.withUnsafeMutableBufferPointer { s in
            body(RGB8Image(pixels: p.baseAddress!, width: width, height: height),
                 RGB8Image(pixels: s.baseAddress!, width: width, height: height))
        }
    }
    return out
}
