import GatehouseCore

/// The proxy's own request rules on top of the parser's syntax (RFC 9112 §6.1, §6.3; RFC 9110 §5.5, §7.2,
/// §10.1.1): framing that an upstream could read differently is refused, and the target is canonicalised once
/// for routing, authorization and forwarding.
extension RequestHead {
    /// - `maxHeaderBytes`: the head's size limit (431).
    public func validate(maxHeaderBytes: Int) throws(GatehouseError) -> RequestValidation.Outcome {
        let http2 = versionMajor == 2
        guard (versionMajor == 1 && versionMinor <= 1) || (http2 && versionMinor == 0) else {
            throw .badRequest("unsupported HTTP version")
        }
        let modern = http2 || versionMinor == 1
        if size > maxHeaderBytes { throw .headerTooLarge }
        var hostIndex: Int?
        var hostCount = 0
        var contentLength: Int64?
        var transferEncodingIndex: Int?
        var expectContinue = false
        var connectionClose = false
        var connectionKeepAlive = false
        enum Problem: Error {
            case bad(String)
            case expectation
        }
        let problem: Problem? = withBytes { raw -> Problem? in
            let method = UnsafeRawBufferPointer(rebasing: raw[methodRange])
            guard !method.isEmpty, method.allSatisfy(HTTPBytes.isTokenByte) else { return .bad("invalid method") }
            for (index, field) in fields.enumerated() {
                let name = UnsafeRawBufferPointer(rebasing: raw[field.nameRange])
                let value = UnsafeRawBufferPointer(rebasing: raw[field.valueRange])
                switch name.count {
                case 4 where HTTPBytes.equalsLowercase(name, "host"):
                    hostCount += 1
                    hostIndex = index
                case 14 where HTTPBytes.equalsLowercase(name, "content-length"):
                    guard contentLength == nil else { return .bad("duplicate Content-Length") }
                    guard let n = HTTPBytes.decimal(value) else { return .bad("invalid Content-Length") }
                    contentLength = n
                case 17 where HTTPBytes.equalsLowercase(name, "transfer-encoding"):
                    guard transferEncodingIndex == nil else { return .bad("duplicate Transfer-Encoding") }
                    transferEncodingIndex = index
                case 6 where HTTPBytes.equalsLowercase(name, "expect"):
                    // Ignored in HTTP/1.0; anything but 100-continue is 417.
                    guard modern else { break }
                    guard HTTPBytes.equalsLowercase(value, "100-continue") else { return .expectation }
                    expectContinue = true
                case 10 where HTTPBytes.equalsLowercase(name, "connection"):
                    HTTPBytes.forEachListElement(value) { token in
                        if HTTPBytes.equalsLowercase(token, "close") { connectionClose = true }
                        if HTTPBytes.equalsLowercase(token, "keep-alive") { connectionKeepAlive = true }
                        return true
                    }
                default:
                    break
                }
            }
            if let te = transferEncodingIndex {
                // HTTP/2 forbids the field on the wire; the HTTP/2 edge never writes it.
                guard modern, !http2 else { return .bad("Transfer-Encoding in HTTP/1.0") }
                guard contentLength == nil else { return .bad("both Content-Length and Transfer-Encoding") }
                let value = HTTPBytes.trimmed(UnsafeRawBufferPointer(rebasing: raw[fields[te].valueRange]))
                guard HTTPBytes.equalsLowercase(value, "chunked") else {
                    return .bad("Transfer-Encoding other than chunked")
                }
            }
            return nil
        }
        switch problem {
        case .bad(let why)?: throw .badRequest(why)
        case .expectation?: throw .expectationFailed
        case nil: break
        }
        let method = self.method
        if method == "CONNECT" { throw .methodNotAllowed(allowed: []) }
        var chunked = transferEncodingIndex != nil
        guard hostCount <= 1 else { throw .badRequest("more than one Host header") }
        if modern, hostCount == 0 { throw .badRequest("missing Host header") }
        // An HTTP/2 body has no length unless Content-Length says so (DATA frames end with the stream): toward
        // the HTTP/1.1 upstream it goes chunked. Methods that do not carry bodies are sent without one.
        if http2, contentLength == nil, !["GET", "HEAD", "DELETE", "OPTIONS", "TRACE"].contains(method) {
            chunked = true
        }
        var host: String?
        var rawHost: String?
        if let hostIndex {
            let value = self.value(hostIndex)
            guard let h = HostName.normalise(value) else { throw .badRequest("invalid Host header") }
            host = h
            rawHost = value
        }
        let target = try RequestValidation.canonicalTarget(self.target, host: host)
        let wantsClose = !http2 && (connectionClose || (versionMinor == 0 && !connectionKeepAlive))
        return RequestValidation.Outcome(
            host: host, rawHost: rawHost, contentLength: contentLength, chunked: chunked, target: target,
            expectContinue: expectContinue, wantsClose: wantsClose)
    }

    /// How the request's body is delimited, from a validated outcome.
    public static func framing(of outcome: RequestValidation.Outcome) -> BodyFraming {
        if outcome.chunked { return .chunked }
        if let n = outcome.contentLength, n > 0 { return .length(n) }
        return .none
    }
}
