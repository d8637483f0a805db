/// How an upstream response's body is delimited and whether its connection can be reused (RFC 9112 §6.3, §9.3),
/// strictly: what Gatehouse cannot frame unambiguously it refuses (502) instead of guessing.
extension ResponseHead {
    public enum FramingError: Error, Sendable, Equatable {
        case invalidContentLength
        case duplicateContentLength
        case contentLengthWithTransferEncoding
        case unsupportedTransferCoding
    }

    public struct Framing: Sendable, Equatable {
        public var body: BodyFraming
        /// The connection may carry another request after this response (not `Connection: close`, keep-alive on
        /// HTTP/1.0, and the body not delimited by the close).
        public var keepAlive: Bool
    }

    /// - `requestWasHEAD`: a response to HEAD has no body whatever its fields say.
    public func framing(requestWasHEAD: Bool) throws(FramingError) -> Framing {
        var contentLength: Int64?
        var transferEncoding: Int?
        var close = false
        var keepAliveToken = false
        let problem: FramingError? = withBytes { raw -> FramingError? in
            for (i, f) in fields.enumerated() {
                let name = UnsafeRawBufferPointer(rebasing: raw[f.nameRange])
                switch f.nameLength {
                case 14 where HTTPBytes.equalsLowercase(name, "content-length"):
                    guard contentLength == nil else { return .duplicateContentLength }
                    guard let n = HTTPBytes.decimal(UnsafeRawBufferPointer(rebasing: raw[f.valueRange])) else {
                        return .invalidContentLength
                    }
                    contentLength = n
                case 17 where HTTPBytes.equalsLowercase(name, "transfer-encoding"):
                    guard transferEncoding == nil else { return .unsupportedTransferCoding }
                    transferEncoding = i
                case 10 where HTTPBytes.equalsLowercase(name, "connection"):
                    HTTPBytes.forEachListElement(UnsafeRawBufferPointer(rebasing: raw[f.valueRange])) { token in
                        if HTTPBytes.equalsLowercase(token, "close") { close = true }
                        if HTTPBytes.equalsLowercase(token, "keep-alive") { keepAliveToken = true }
                        return true
                    }
                default:
                    break
                }
            }
            if let te = transferEncoding {
                guard contentLength == nil else { return .contentLengthWithTransferEncoding }
                // Only `chunked` alone: another coding would have to reach the client as a transfer coding, and
                // HTTP/2 has none.
                let value = HTTPBytes.trimmed(UnsafeRawBufferPointer(rebasing: raw[fields[te].valueRange]))
                guard HTTPBytes.equalsLowercase(value, "chunked") else { return .unsupportedTransferCoding }
            }
            return nil
        }
        if let problem { throw problem }
        let persistent = versionMinor == 1 ? !close : (keepAliveToken && !close)
        if requestWasHEAD || status < 200 || status == 204 || status == 304 {
            return Framing(body: .none, keepAlive: persistent)
        }
        if transferEncoding != nil { return Framing(body: .chunked, keepAlive: persistent) }
        if let n = contentLength { return Framing(body: n == 0 ? .none : .length(n), keepAlive: persistent) }
        return Framing(body: .untilClose, keepAlive: false)
    }
}
