/// The loader gave up: no readable sample was found near a failing one, or the source threw an
/// error that is not a `DataError`.
public struct LoaderError: Error, CustomStringConvertible {
    /// What went wrong, naming the sample.
    public let message: String
    /// The error the data source threw, if any.
    public let underlying: Error?
    public var description: String { message }
}
