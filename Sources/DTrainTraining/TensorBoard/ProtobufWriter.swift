/// The few protocol-buffer encodings TensorBoard's event messages need: varints, 64-bit doubles,
/// 32-bit floats and length-delimited fields (proto3 wire format, fields in number order).
///
/// Written by hand instead of with a protobuf library: three messages of two to four scalar
/// fields each do not justify a code generator, its runtime and a build-time plugin.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// A `double` field (wire type 1, little-endian).
    mutating func double(_ field: Int, _ value: Double) {
        key(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `float` field (wire type 5, little-endian).
    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// An `int64` field (wire type 0; negative values as ten-byte two's complement varints).
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    /// A `bytes`, `string` or embedded-message field (wire type 2).
    mutating func lengthDelimited<C: Collection>(_ field: Int, _ payload: C) where C.Element == UInt8 {
        key(field, wireType: 2)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }
}
