import Foundation
import ZIPFoundation

/// Writes a zip archive the way torch.save's PyTorchStreamWriter does: every record stored
/// (uncompressed), its data starting on a 64-byte boundary (padding in a "FB" extra field of the
/// local header, as torch's), names in UTF-8. Sizes are known up front, so the local headers carry
/// them and no data descriptors follow. CRC-32 comes from ZIPFoundation. Archives over 4 GiB or
/// 65,535 records (which would need ZIP64) are refused.
public struct TorchZipWriter {
    public static let alignment = 64
    private var out = Data()
    private var central = Data()
    private var records = 0

    public init() {}

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    /// Adds a record named `name` holding `bytes`.
    public mutating func add(_ name: String, _ bytes: Data) throws {
        let nameBytes = Array(name.utf8)
        let offset = out.count
        let headerEnd = offset + 30 + nameBytes.count
        // torch's padding: an extra field "FB" (4-byte header) then 'Z's up to the boundary.
        let pad = (TorchZipWriter.alignment - (headerEnd + 4) % TorchZipWriter.alignment) % TorchZipWriter.alignment
        var extra = Data()
        if headerEnd % TorchZipWriter.alignment != 0 {
            extra.append(contentsOf: [0x46, 0x42])  // "FB"
            TorchZipWriter.append(UInt16(pad), to: &extra)
            extra.append(Data(repeating: 0x5A, count: pad))
        }
        guard offset + 30 + nameBytes.count + extra.count + bytes.count < Int(UInt32.max), records < Int(UInt16.max) else {
            throw PthError("\(name): the archive would exceed 4 GiB or 65,535 records (ZIP64 is not written)")
        }
        let crc = bytes.crc32(checksum: 0)
        let size = UInt32(bytes.count)
        let flags: UInt16 = 0x0800  // UTF-8 names

        TorchZipWriter.append(UInt32(0x0403_4B50), to: &out)
        TorchZipWriter.append(UInt16(20), to: &out)  // version needed: 2.0
        TorchZipWriter.append(flags, to: &out)
        TorchZipWriter.append(UInt16(0), to: &out)   // stored
        TorchZipWriter.append(UInt16(0), to: &out)   // time
        TorchZipWriter.append(UInt16(0x21), to: &out) // date: 1980-01-01
        TorchZipWriter.append(crc, to: &out)
        TorchZipWriter.append(size, to: &out)
        TorchZipWriter.append(size, to: &out)
        TorchZipWriter.append(UInt16(nameBytes.count), to: &out)
        TorchZipWriter.append(UInt16(extra.count), to: &out)
        out.append(contentsOf: nameBytes)
        out.append(extra)
        precondition(out.count % TorchZipWriter.alignment == 0, "record \(name) is not aligned")
        out.append(bytes)

        TorchZipWriter.append(UInt32(0x0201_4B50), to: &central)
        TorchZipWriter.append(UInt16(20), to: &central)  // made by
        TorchZipWriter.append(UInt16(20), to: &central)  // needed
        TorchZipWriter.append(flags, to: &central)
        TorchZipWriter.append(UInt16(0), to: &central)
        TorchZipWriter.append(UInt16(0), to: &central)
        TorchZipWriter.append(UInt16(0x21), to: &central)
        TorchZipWriter.append(crc, to: &central)
        TorchZipWriter.append(size, to: &central)
        TorchZipWriter.append(size, to: &central)
        TorchZipWriter.append(UInt16(nameBytes.count), to: &central)
        TorchZipWriter.append(UInt16(0), to: &central)   // extra
        TorchZipWriter.append(UInt16(0), to: &central)   // comment
        TorchZipWriter.append(UInt16(0), to: &central)   // disk
        TorchZipWriter.append(UInt16(0), to: &central)   // internal attributes
        TorchZipWriter.append(UInt32(0o100644) << 16, to: &central)  // external: a regular file, rw-r--r--
        TorchZipWriter.append(UInt32(offset), to: &central)
        central.append(contentsOf: nameBytes)
        records += 1
    }

    /// The complete archive: records, central directory, end-of-central-directory record.
    public func finished() -> Data {
        var data = out
        let centralOffset = data.count
        data.append(central)
        TorchZipWriter.append(UInt32(0x0605_4B50), to: &data)
        TorchZipWriter.append(UInt16(0), to: &data)
        TorchZipWriter.append(UInt16(0), to: &data)
        TorchZipWriter.append(UInt16(records), to: &data)
        TorchZipWriter.append(UInt16(records), to: &data)
        TorchZipWriter.append(UInt32(central.count), to: &data)
        TorchZipWriter.append(UInt32(centralOffset), to: &data)
        TorchZipWriter.append(UInt16(0), to: &data)
        return data
    }
}
