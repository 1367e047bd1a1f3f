/// A run that cannot start or continue: a one-line reason naming the flag, file or step.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
