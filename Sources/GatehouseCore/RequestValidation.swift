/// Checks on a parsed request head that close the request-smuggling and header-injection holes an upstream
/// could interpret differently (RFC 9112 §6.1, §6.3; RFC 9110 §5.5). The HTTP parser already rejects bare CR/LF
/// and bad framing syntax; these rules are the proxy's own, stricter contract, applied before anything else.
public enum RequestValidation {
    public struct Head: Sendable {
        public var method: String
        public var target: String
        public var versionMajor: Int
        public var versionMinor: Int
        public init(method: String, target: String, versionMajor: Int, versionMinor: Int) {
            self.method = method
            self.target = target
            self.versionMajor = versionMajor
            self.versionMinor = versionMinor
        }
    }

    /// What the rest of the pipeline needs from a valid head.
    public struct Outcome: Sendable, Equatable {
        /// Normalised host for routing (nil only for HTTP/1.0 without Host).
        public var host: String?
        /// The Host header as sent (used for X-Forwarded-Host and preserve_host).
        public var rawHost: String?
        public var contentLength: Int64?
        public var chunked: Bool
        public var target: CanonicalTarget
        public var expectContinue: Bool
        /// The client asked to close after this request (HTTP/1.0 without keep-alive, or Connection: close).
        public var wantsClose: Bool

        public init(
            host: String?, rawHost: String?, contentLength: Int64?, chunked: Bool, target: CanonicalTarget,
            expectContinue: Bool, wantsClose: Bool
        ) {
            self.host = host
            self.rawHost = rawHost
            self.contentLength = contentLength
            self.chunked = chunked
            self.target = target
            self.expectContinue = expectContinue
            self.wantsClose = wantsClose
        }
    }

    @inline(__always)
    public static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// ASCII case-insensitive equality with a lower-case literal, without allocating.
    @inline(__always)
    static func equalsLowercase(_ name: String, _ lower: StaticString) -> Bool {
        equalsLowercase(bytes: name.utf8, lower)
    }

    /// The same for any bytes (a header name, a query parameter's name); specialised within this module.
    @inline(__always)
    static func equalsLowercase(bytes n: some Collection<UInt8>, _ lower: StaticString) -> Bool {
        guard n.count == lower.utf8CodeUnitCount else { return false }
        return lower.withUTF8Buffer { l in
            var i = 0
            for b in n {
                let folded = (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b + 32 : b
                if folded != l[i] { return false }
                i += 1
            }
            return true
        }
    }

    public static func isToken(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { buf in !buf.isEmpty && buf.allSatisfy(isTokenByte) }
    }

    /// A field value may hold visible ASCII, obs-text, space and HTAB; never NUL, CR, LF or other controls.
    /// (A contiguous byte loop: header values such as bearer tokens are hundreds of bytes long.)
    public static func isValidFieldValue(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { buf in
            var i = 0
            // Eight bytes at a time: a word passes when none of its bytes is below 0x20 or equal to 0x7F (the
            // exact "has less than" and "has zero byte" word tests); a word that fails, e.g. for a tab, and
            // the tail are checked byte by byte. Long values (bearer tokens, cookies) cost an eighth of the loop.
            if let base = UnsafeRawPointer(buf.baseAddress) {
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                while i + 8 <= buf.count {
                    let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let below = (w &- ones &* 0x20) & ~w & highs
                    let x = w ^ (ones &* 0x7F)
                    let del = (x &- ones) & ~x & highs
                    if below | del != 0 { break }
                    i += 8
                }
            }
            while i < buf.count {
                let b = buf[i]
                guard b == 0x09 || (b >= 0x20 && b != 0x7f) else { return false }
                i += 1
            }
            return true
        }
    }

    public static func validate(
        head: Head, headers: HeaderFields, maxHeaderBytes: Int
    ) throws(GatehouseError) -> Outcome {
        // HTTP/1.0, HTTP/1.1, and HTTP/2 streams (converted to the same request parts by the HTTP/2 codec).
        let http2 = head.versionMajor == 2 && head.versionMinor == 0
        guard (head.versionMajor == 1 && head.versionMinor <= 1) || http2 else {
            throw .badRequest("unsupported HTTP version")
        }
        let modern = http2 || head.versionMinor == 1
        guard isToken(head.method) else { throw .badRequest("invalid method") }
        if head.method == "CONNECT" { throw .methodNotAllowed(allowed: []) }
        var size = head.method.utf8.count + head.target.utf8.count + 12
        var hostValue: String?
        var hostCount = 0
        var contentLength: Int64?
        var transferEncoding: String?
        var expectContinue = false
        var connectionClose = false
        var connectionKeepAlive = false
        for (name, value) in headers {
            size += name.utf8.count + value.utf8.count + 4
            guard isToken(name) else { throw .badRequest("invalid header name") }
            guard isValidFieldValue(value) else { throw .badRequest("invalid header value") }
            switch name.utf8.count {
            case 4 where equalsLowercase(name, "host"):
                hostCount += 1
                hostValue = value
            case 14 where equalsLowercase(name, "content-length"):
                guard contentLength == nil else { throw .badRequest("duplicate Content-Length") }
                guard !value.isEmpty, value.utf8.count <= 18, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let n = Int64(value)
                else { throw .badRequest("invalid Content-Length") }
                contentLength = n
            case 17 where equalsLowercase(name, "transfer-encoding"):
                guard transferEncoding == nil else { throw .badRequest("duplicate Transfer-Encoding") }
                transferEncoding = value
            case 6 where equalsLowercase(name, "expect"):
                // RFC 9110 §10.1.1: ignored in HTTP/1.0; anything but 100-continue is 417.
                guard modern else { break }
                guard value.lowercased() == "100-continue" else { throw .expectationFailed }
                expectContinue = true
            case 10 where equalsLowercase(name, "connection"):
                for token in value.split(separator: ",") {
                    let t = token.trimmingSpaces().lowercased()
                    if t == "close" { connectionClose = true }
                    if t == "keep-alive" { connectionKeepAlive = true }
                }
            default:
                break
            }
        }
        if size > maxHeaderBytes { throw .headerTooLarge }
        var chunked = false
        if let te = transferEncoding {
            // HTTP/2 forbids the field on the wire (NIOHTTP2 refuses it); on an HTTP/2 stream it is the codec's
            // own marker of a body without Content-Length.
            guard modern else { throw .badRequest("Transfer-Encoding in HTTP/1.0") }
            guard contentLength == nil else { throw .badRequest("both Content-Length and Transfer-Encoding") }
            guard te.trimmingSpaces().lowercased() == "chunked" else {
                throw .badRequest("Transfer-Encoding other than chunked")
            }
            chunked = true
        }
        guard hostCount <= 1 else { throw .badRequest("more than one Host header") }
        if modern, hostCount == 0 { throw .badRequest("missing Host header") }
        // An HTTP/2 request body has no length unless Content-Length says so (DATA frames end with the stream):
        // toward the HTTP/1.1 upstream it goes chunked. Methods that do not carry bodies are sent without one, and
        // a body on them is refused by the proxy.
        if http2, contentLength == nil, !["GET", "HEAD", "DELETE", "OPTIONS", "TRACE"].contains(head.method) {
            chunked = true
        }
        var host: String?
        if let hostValue {
            guard let h = HostName.normalise(hostValue) else { throw .badRequest("invalid Host header") }
            host = h
        }
        let canonical = try canonicalTarget(head.target, host: host)
        let wantsClose = !http2 && (connectionClose || (head.versionMinor == 0 && !connectionKeepAlive))
        return Outcome(
            host: host, rawHost: hostValue, contentLength: contentLength, chunked: chunked, target: canonical,
            expectContinue: expectContinue, wantsClose: wantsClose)
    }

    /// The canonical target of a request target: origin-form as it is; absolute-form (RFC 9112 §3.2.2) only
    /// when it names the request's own host, reduced to origin-form.
    public static func canonicalTarget(_ text: String, host: String?) throws(GatehouseError) -> CanonicalTarget {
        var target = Substring(text)
        if !target.hasPrefix("/") {
            let lower = target.prefix(8).lowercased()
            let schemeLength = lower.hasPrefix("http://") ? 7 : (lower.hasPrefix("https://") ? 8 : 0)
            guard schemeLength > 0 else { throw .badRequest("request target is not an absolute path") }
            let rest = target.dropFirst(schemeLength)
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            guard !authority.contains("@"), let absHost = HostName.normalise(String(authority)), absHost == host
            else { throw .badRequest("absolute-form target names another host") }
            target = rest[authorityEnd...]
            if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        }
        do {
            return try CanonicalTarget.parse(String(target))
        } catch {
            throw .badRequest(error.rawValue)
        }
    }
}

extension StringProtocol {
    /// Trims spaces and horizontal tabs (optional whitespace, RFC 9110 §5.6.3).
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
