import Foundation

/// A malformed or unreadable safetensors file, with what was expected.
public struct SafeTensorsError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Element types of safetensors tensors that dtrain reads and writes.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", u8 = "U8"

    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f64, .i64: return 8
        case .u8: return 1
        }
    }
}

/// A parsed safetensors file (the format of PyTorch's, JAX's and Hugging Face's tools):
/// an 8-byte little-endian header length, a JSON header of name → {dtype, shape, data_offsets}
/// plus optional string `__metadata__`, then the raw little-endian tensor bytes.
public struct SafeTensorsFile {
    public struct Entry {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range inside `payload`.
        public let range: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public let metadata: [String: String]
    public let entries: [String: Entry]
    /// Tensor names in the order of their data.
    public let names: [String]
    public let payload: Data

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SafeTensorsError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        do { try self.init(data: data) } catch let e as SafeTensorsError {
            throw SafeTensorsError("\(url.path): \(e.message)")
        }
    }

    public init(data: Data) throws {
        guard data.count >= 8 else { throw SafeTensorsError("not a safetensors file: \(data.count) bytes, expected an 8-byte header length first") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8), headerLength < 100_000_000 else {
            throw SafeTensorsError("truncated or not a safetensors file: header of \(headerLength) bytes in a \(data.count)-byte file")
        }
        let start = data.startIndex + 8
        let headerData = data[start..<(start + Int(headerLength))]
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw SafeTensorsError("safetensors header is not a JSON object")
        }
        payload = data[(start + Int(headerLength))...]
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw SafeTensorsError("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafeTensorsError("tensor \(name): expected dtype, shape and data_offsets in the header")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw SafeTensorsError("tensor \(name): unsupported dtype \(dtypeName)") }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload.count else {
                throw SafeTensorsError("tensor \(name): data [\(offsets[0]), \(offsets[1])) lies outside the \(payload.count) data bytes (truncated file?)")
            }
            // Only now a range: offsets in the wrong order would trap in `..<`.
            let range = offsets[0]..<offsets[1]
            // The header is untrusted: the shape's byte count is computed with checked arithmetic.
            var bytes: Int? = dtype.size
            for d in shape {
                guard d >= 0, let b = bytes else { bytes = nil; break }
                let (p, overflow) = b.multipliedReportingOverflow(by: d)
                bytes = overflow ? nil : p
            }
            guard let bytes, range.count == bytes else {
                throw SafeTensorsError("tensor \(name): \(range.count) bytes do not hold shape \(shape) of \(dtypeName)")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: range)
        }
        self.metadata = metadata
        self.entries = entries
        names = entries.values.sorted { $0.range.lowerBound < $1.range.lowerBound }.map(\.name)
    }

    public func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw SafeTensorsError("no tensor named \(name)") }
        return e
    }

    /// The raw bytes of a tensor.
    public func bytes(_ name: String) throws -> Data {
        let e = try entry(name)
        return payload[(payload.startIndex + e.range.lowerBound)..<(payload.startIndex + e.range.upperBound)]
    }

    /// A tensor's values as Float, converting from F32, F16, BF16, F64, I64 or I32.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        let raw = try bytes(name)
        return raw.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> [Float] in
            (0..<e.count).map { i in
                switch e.dtype {
                case .f32: return b.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                case .f64: return Float(b.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
                case .f16: return Float(halfBits: b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                case .bf16: return Float(bitPattern: UInt32(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                case .i64: return Float(b.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                case .i32: return Float(b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                case .u8: return Float(b[i])
                }
            }
        }
    }

    /// A tensor's values as Int64 (from I64 or I32).
    public func int64s(_ name: String) throws -> [Int64] {
        let e = try entry(name)
        let raw = try bytes(name)
        return try raw.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> [Int64] in
            switch e.dtype {
            case .i64: return (0..<e.count).map { b.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
            case .i32: return (0..<e.count).map { Int64(b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            default: throw SafeTensorsError("tensor \(name) is \(e.dtype.rawValue), expected an integer type")
            }
        }
    }
}

/// Builds a safetensors file: tensors in the order added, 8-byte aligned header.
public struct SafeTensorsWriter {
    private var header: [(String, String)] = []
    private var payload = Data()
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "\(name): byte count does not match shape")
        let begin = payload.count
        payload.append(contentsOf: bytes)
        let shapeText = shape.map(String.init).joined(separator: ",")
        header.append((name, "{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shapeText)],\"data_offsets\":[\(begin),\(payload.count)]}"))
    }

    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        floats.withUnsafeBytes { add(name, dtype: .f32, shape: shape, bytes: $0) }
    }

    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        int64s.withUnsafeBytes { add(name, dtype: .i64, shape: shape, bytes: $0) }
    }

    /// Calls `body` with the tensor bytes written so far (for a checksum stored in the metadata).
    public func withPayload<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { payload.withUnsafeBytes(body) }

    /// The complete file.
    public func serialized() -> Data {
        var parts = header.map { "\(jsonString($0.0)):\($0.1)" }
        if !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.insert("\"__metadata__\":{\(m.joined(separator: ","))}", at: 0)
        }
        var text = "{" + parts.joined(separator: ",") + "}"
        while (text.utf8.count % 8) != 0 { text += " " }
        var out = Data()
        var length = UInt64(text.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(text.utf8))
        out.append(payload)
        return out
    }
}

/// A JSON string literal for `s`.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

extension Float {
    /// Converts IEEE 754 half-precision bits.
    public init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            self = sign == 0 ? magnitude : -magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
        }
    }
}
