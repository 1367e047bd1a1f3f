import Foundation

extension TrainConfig {
    /// The fields of `TrainConfig` that may differ from rank to rank, so `agreementFields` leaves
    /// them out: where each node finds its data (the data itself is compared by class list and
    /// sizes), the output directory and checkpoint to resume from (rank 0 alone writes; the ranks
    /// agree on the resumed step), --overwrite (read by rank 0 alone), each node's compute threads
    /// and loader workers, rank 0's progress interval and each rank's collective timeout.
    public static let perRankFields: Set<String> = [
        "dataPath", "output", "resume", "overwrite", "threads", "workers", "printFreq", "collectiveTimeout",
    ]

    /// Every stored field of the configuration except `perRankFields`, found by reflection
    /// (`Mirror`), in declaration order, as (readable name, value): `batchSize` is "batch size",
    /// an absent optional is "none", and a nested dtrain structure (`modelOptions`) contributes
    /// each of its fields. A field added to `TrainConfig` later is covered without being listed
    /// anywhere. The names and their order depend only on the type, so every rank sends the same
    /// list.
    public var agreementFields: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        for child in Mirror(reflecting: self).children {
            guard let label = child.label, !TrainConfig.perRankFields.contains(label) else { continue }
            TrainConfig.flatten(child.value, name: TrainConfig.readableName(label), into: &fields)
        }
        return fields
    }

    private static func flatten(_ value: Any, name: String, into fields: inout [(name: String, value: String)]) {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            fields.append((name, mirror.children.first.map { String(describing: $0.value) } ?? "none"))
        } else if mirror.displayStyle == .struct, String(reflecting: type(of: value)).hasPrefix("DTrain"),
                  !(value is CustomStringConvertible) {
            for child in mirror.children {
                flatten(child.value, name: name + " " + readableName(child.label ?? "?"), into: &fields)
            }
        } else {
            fields.append((name, String(describing: value)))
        }
    }

    /// "batchSize" → "batch size", "noBNWeightDecay" → "no BN weight decay".
    static func readableName(_ label: String) -> String {
        let chars = Array(label)
        var words: [String] = []
        var word = ""
        for (i, c) in chars.enumerated() {
            let startsWord = c.isUppercase && i > 0
                && (chars[i - 1].isLowercase || (i + 1 < chars.count && chars[i + 1].isLowercase))
            if startsWord && !word.isEmpty {
                words.append(word)
                word = ""
            }
            word.append(c)
        }
        if !word.isEmpty { words.append(word) }
        return words.map { w in w.count > 1 && w.allSatisfy(\.isUppercase) ? w : w.lowercased() }.joined(separator: " ")
    }
}
