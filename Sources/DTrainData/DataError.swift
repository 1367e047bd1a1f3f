import DTrainCore

/// A sample that could not be read or decoded: the file and why. The description names the file
/// with control characters escaped (`MessageText.path`).
public struct DataError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(MessageText.path(path)): \(reason)" }
}
