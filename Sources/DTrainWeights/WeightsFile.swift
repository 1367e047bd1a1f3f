import Foundation

/// The weight file formats dtrain reads wherever it takes a weights path.
public enum WeightsFormat: String, Sendable {
    /// safetensors (dtrain's checkpoints, safetensors.torch.save_file).
    case safetensors
    /// torch.save's zip format (.pth, .pt).
    case pth
}

/// Opens weights in either format as a `SafeTensorsFile`, recognised by content (a zip archive
/// starts with "PK\u{3}\u{4}"), not by extension. A .pth's `extra/KEY.json` records become the
/// metadata entry KEY, so a checkpoint exported by dtrain keeps its training metadata.
public enum WeightsFile {
    public static func format(of url: URL) throws -> WeightsFormat {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw SafeTensorsError("\(url.path): no such file or not readable")
        }
        defer { try? handle.close() }
        let magic = handle.readData(ofLength: 4)
        return magic == Data([0x50, 0x4B, 0x03, 0x04]) ? .pth : .safetensors
    }

    public static func open(_ url: URL) throws -> (file: SafeTensorsFile, format: WeightsFormat) {
        switch try format(of: url) {
        case .safetensors:
            return (try SafeTensorsFile(contentsOf: url), .safetensors)
        case .pth:
            let pth = try PthFile(contentsOf: url)
            var metadata: [String: String] = [:]
            for (name, data) in pth.extras where name.hasSuffix(".json") {
                if let text = String(data: data, encoding: .utf8) { metadata[String(name.dropLast(5))] = text }
            }
            return (try pth.safeTensors(metadata: metadata), .pth)
        }
    }
}
