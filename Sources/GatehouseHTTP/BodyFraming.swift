/// How a message body is delimited (RFC 9112 §6).
public enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int64)
    case chunked
    /// A response body that ends when the upstream closes the connection.
    case untilClose
}
