import GatehouseCore
import GatehouseHTTP
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Gatehouse's HTTP/1 parsers against SwiftNIO's llhttp-based decoders on the same bytes. Whatever Gatehouse
/// accepts, NIO must read the same way: method, target, version, every field name and value in order, and the
/// same body (framing). Gatehouse may be stricter (it refuses what an upstream could read two ways); it must
/// never be more lenient. Used by the differential test and by the fuzz targets.
public enum Differential {
    /// One message as read: its head as text and, when its body was complete in the bytes, the body.
    public struct Message: Equatable, Sendable, CustomStringConvertible {
        public var startLine: String
        public var fields: [String]
        /// The decoded body when its end was reached; nil when the bytes ended first.
        public var body: [UInt8]?

        public var description: String {
            "\(startLine) \(fields) body: \(body.map { "\($0.count) bytes" } ?? "incomplete")"
        }
    }

    /// llhttp knows a fixed list of methods; Gatehouse accepts any token (RFC 9110 §9.1), passes it on, and
    /// routes decide which methods they allow. Heads with other methods are not compared.
    public static let llhttpMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ]

    /// llhttp refuses whitespace after a Content-Length value, which RFC 9110 §5.5 allows (and Gatehouse
    /// accepts: the length is read one way). Such messages are not compared.
    public static func hasPaddedContentLength(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").contains { line in
            line.lowercased().hasPrefix("content-length:") && (line.hasSuffix(" ") || line.hasSuffix("\t"))
        }
    }

    /// True when the bytes are in the comparable domain (see `llhttpMethods`, `hasPaddedContentLength`).
    public static func comparable(_ message: Message, bytes: [UInt8]) -> Bool {
        let method = message.startLine.split(separator: " ").first.map(String.init) ?? ""
        return !hasPaddedContentLength(bytes)
            && (message.startLine.hasPrefix("HTTP/") || llhttpMethods.contains(method))
    }

    /// NIO keeps a value's trailing whitespace; RFC 9110 §5.5 says it is not part of the value (Gatehouse drops it).
    static func trimmed(_ value: String) -> String {
        var v = Substring(value)
        while let last = v.last, last == " " || last == "\t" { v.removeLast() }
        return String(v)
    }

    /// The first request as Gatehouse reads it: accepted by the parser and the proxy's request rules (what reaches
    /// routing and the upstream), with its body decoded by the framing those rules chose.
    public static func ourRequest(_ bytes: [UInt8]) -> Message? {
        var parser = RequestHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .head(let h) = parser.parse(&buffer), let outcome = try? h.validate(maxHeaderBytes: 64 * 1024)
        else { return nil }
        guard let body = ourBody(&buffer, framing: RequestHead.framing(of: outcome)) else { return nil }
        return Message(
            startLine: "\(h.method) \(h.target) HTTP/\(h.versionMajor).\(h.versionMinor)",
            fields: h.stringFields.map { "\($0.name): \($0.value)" }, body: body.complete ? body.bytes : nil)
    }

    /// The first response as Gatehouse reads it (to a GET) when it is final and its body can be delimited; the
    /// bytes are everything the upstream sent before closing.
    public static func ourResponse(_ bytes: [UInt8]) -> Message? {
        var parser = ResponseHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .head(let h) = parser.parse(&buffer), h.status >= 200,
            let framing = try? h.framing(requestWasHEAD: false),
            let body = ourBody(&buffer, framing: framing.body)
        else { return nil }
        return Message(
            startLine: "HTTP/1.\(h.versionMinor) \(h.status)",
            fields: h.stringFields.map { "\($0.name): \($0.value)" }, body: body.complete ? body.bytes : nil)
    }

    /// The body after a head, by Gatehouse's framing; nil when the chunked decoder refuses it.
    static func ourBody(_ buffer: inout ByteBuffer, framing: BodyFraming) -> (bytes: [UInt8], complete: Bool)? {
        switch framing {
        case .none:
            return ([], true)
        case .length(let n):
            let take = Int(min(Int64(buffer.readableBytes), n))
            let bytes = buffer.readBytes(length: take) ?? []
            return (bytes, Int64(take) == n)
        case .untilClose:
            return (buffer.readBytes(length: buffer.readableBytes) ?? [], true)
        case .chunked:
            var decoder = ChunkedDecoder()
            var out: [UInt8] = []
            while true {
                switch decoder.next(&buffer, mode: .payload) {
                case .bytes(let b): out += b.readableBytesView
                case .needMore: return (out, false)
                case .end: return (out, true)
                case .failure: return nil
                }
            }
        }
    }

    public static func nioRequest(_ bytes: [UInt8]) -> Message? {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        // A head NIO delivered counts even if an error follows it; the body counts only up to its end.
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        guard case .head(let h)? = try? channel.readInbound(as: HTTPServerRequestPart.self) else { return nil }
        var body: [UInt8] = []
        var complete = false
        loop: while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .body(let b): body += b.readableBytesView
            case .end:
                complete = true
                break loop
            case .head: break loop
            }
        }
        return Message(
            startLine: "\(h.method.rawValue) \(h.uri) HTTP/\(h.version.major).\(h.version.minor)",
            fields: h.headers.map { "\($0.name): \(trimmed($0.value))" }, body: complete ? body : nil)
    }

    /// NIO's reading of a response to GET, the connection closing after the bytes (which ends a body delimited by
    /// the close).
    public static func nioResponse(_ bytes: [UInt8]) -> Message? {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
        // The response decoder pairs each response with a request it saw going out.
        _ = try? channel.writeOutbound(HTTPClientRequestPart.head(.init(version: .http1_1, method: .GET, uri: "/")))
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelInactive()
        defer { _ = try? channel.finish() }
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var complete = false
        loop: while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let h):
                if h.status.code < 200 { continue }  // interim responses
                head = h
            case .body(let b): body += b.readableBytesView
            case .end:
                if head != nil {
                    complete = true
                    break loop
                }
            }
        }
        guard let head else { return nil }
        return Message(
            startLine: "HTTP/\(head.version.major).\(head.version.minor) \(head.status.code)",
            fields: head.headers.map { "\($0.name): \(trimmed($0.value))" }, body: complete ? body : nil)
    }
}
