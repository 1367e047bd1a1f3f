/// TensorBoard's `Event` message (tensorboard/compat/proto/event.proto) with the two payloads
/// dtrain writes: the file-version record that opens every event file, and a `Summary` of scalar
/// values (`Summary.Value.simple_value`, which TensorBoard's scalar dashboard and
/// `EventAccumulator.Scalars` read).
///
/// Field numbers: Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3;
/// Summary summary = 5; } }, Summary { repeated Value value = 1; }, Value { string tag = 1;
/// oneof value { float simple_value = 2; } }. As proto3 encoders do, a zero `wall_time` or `step` is
/// left out; a oneof member is always written.
public enum TensorBoardEvent {
    /// The `file_version` TensorBoard's own writers put in an event file's first record.
    public static let fileVersion = "brain.Event:2"

    /// The first record of an event file.
    public static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        if wallTime != 0 { event.double(1, wallTime) }
        event.string(3, fileVersion)
        return event.bytes
    }

    /// One event holding `scalars` (tag, value) at `step`.
    public static func scalarsEvent(_ scalars: [(tag: String, value: Float)], step: Int64, wallTime: Double) -> [UInt8] {
        var summary = ProtobufWriter()
        for s in scalars {
            var value = ProtobufWriter()
            value.string(1, s.tag)
            value.float(2, s.value)
            summary.lengthDelimited(1, value.bytes)
        }
        var event = ProtobufWriter()
        if wallTime != 0 { event.double(1, wallTime) }
        if step != 0 { event.int64(2, step) }
        event.lengthDelimited(5, summary.bytes)
        return event.bytes
    }
}

/// TFRecord framing, as TensorBoard's event files use it: for each record, its length (uint64,
/// little-endian), the masked CRC-32C of those 8 bytes, the record, and the masked CRC-32C of the
/// record (both uint32, little-endian).
public enum TFRecord {
    public static func frame(_ record: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(record.count + 16)
        var length: [UInt8] = []
        withUnsafeBytes(of: UInt64(record.count).littleEndian) { length.append(contentsOf: $0) }
        out += length
        withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { out.append(contentsOf: $0) }
        out += record
        withUnsafeBytes(of: CRC32C.masked(record).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// The records of a framed byte stream, with both checksums verified; nil when the stream is
    /// truncated or a checksum does not match.
    public static func records(in bytes: [UInt8]) -> [[UInt8]]? {
        var records: [[UInt8]] = []
        var i = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while i < bytes.count {
            guard bytes.count - i >= 12 else { return nil }
            let lengthBytes = Array(bytes[i..<(i + 8)])
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * $1) }
            guard u32(i + 8) == CRC32C.masked(lengthBytes) else { return nil }
            let (end, overflow) = (i + 12).addingReportingOverflow(Int(clamping: length))
            guard !overflow, end <= bytes.count - 4 else { return nil }
            let record = Array(bytes[(i + 12)..<end])
            guard u32(end) == CRC32C.masked(record) else { return nil }
            records.append(record)
            i = end + 4
        }
        return records
    }
}
