import GatehouseCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatehouseHTTP

/// Gatehouse's parsers against SwiftNIO's (llhttp-based) decoders on the same bytes: whatever Gatehouse accepts,
/// NIO must read the same way (method, target, version, every field name and value, in order). Gatehouse may be
/// stricter (it refuses what an upstream could read two ways); it must never be more lenient. A seeded mutation
/// loop extends the hand-written corpus with byte flips, insertions and deletions.
@Suite struct DifferentialTests {
    struct Parsed: Equatable {
        var method: String
        var target: String
        var version: String
        var fields: [String]
    }

    /// Accepted by the parser and by the proxy's request rules (what reaches routing and the upstream).
    static func ours(_ bytes: [UInt8]) -> Parsed? {
        var parser = RequestHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .head(let h) = parser.parse(&buffer), (try? h.validate(maxHeaderBytes: 64 * 1024)) != nil else {
            return nil
        }
        return Parsed(
            method: h.method, target: h.target, version: "\(h.versionMajor).\(h.versionMinor)",
            fields: h.stringFields.map { "\($0.name): \($0.value)" })
    }

    static func nio(_ bytes: [UInt8]) -> Parsed? {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        // A head NIO delivered counts even if an error follows it (in the body, which is not compared here).
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        guard case .head(let h)? = try? channel.readInbound(as: HTTPServerRequestPart.self) else { return nil }
        return Parsed(
            method: h.method.rawValue, target: h.uri, version: "\(h.version.major).\(h.version.minor)",
            fields: h.headers.map { "\($0.name): \(trimmed($0.value))" })
    }

    /// NIO keeps a value's trailing whitespace; RFC 9110 §5.5 says it is not part of the value (Gatehouse drops it).
    static func trimmed(_ value: String) -> String {
        var v = Substring(value)
        while let last = v.last, last == " " || last == "\t" { v.removeLast() }
        return String(v)
    }

    /// llhttp knows a fixed list of methods; Gatehouse accepts any token (RFC 9110 §9.1), passes it on, and
    /// routes decide which methods they allow.
    static let llhttpMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ]

    /// llhttp refuses whitespace after a Content-Length value, which RFC 9110 §5.5 allows (and Gatehouse
    /// accepts: the length is read one way). Such heads are left out of the comparison.
    static func hasPaddedContentLength(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").contains { line in
            line.lowercased().hasPrefix("content-length:") && (line.hasSuffix(" ") || line.hasSuffix("\t"))
        }
    }

    static let corpus: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",  // refused by the request rules (no route takes it)
        "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nUser-Agent: x \t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: caf\u{e9}\r\n\r\n",
        // Things Gatehouse must refuse (and NIO may or may not).
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "G\u{7f}T / HTTP/1.1\r\n\r\n",
    ]

    @Test(arguments: corpus)
    func whatGatehouseAcceptsNIOReadsTheSameWay(_ text: String) {
        let bytes = Array(text.utf8)
        if let mine = Self.ours(bytes) {
            #expect(Self.nio(bytes) == mine, "\(text.debugDescription)")
        }
    }

    @Test func theValidCorpusIsAccepted() {
        for text in Self.corpus.prefix(9) where !text.hasPrefix("OPTIONS *") {  // asterisk-form is refused
            #expect(Self.ours(Array(text.utf8)) != nil, "\(text.debugDescription)")
        }
    }

    /// SplitMix64: the same mutations on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func mutatedHeadsNeverParseMoreLenientlyThanNIO() {
        var rng = Seeded(state: 0x6A7E_4053)
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0x80, 0xFF, 0x2C, 0x22]
        var accepted = 0
        for round in 0..<4000 {
            var bytes = Array(Self.corpus[round % 9].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                let b = interesting.randomElement(using: &rng) ?? 0
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = b
                case 1: bytes.insert(b, at: i)
                default: if bytes.count > 4 { bytes.remove(at: i) }
                }
            }
            guard let mine = Self.ours(bytes), Self.llhttpMethods.contains(mine.method),
                !Self.hasPaddedContentLength(bytes)
            else { continue }
            accepted += 1
            let theirs = Self.nio(bytes)
            #expect(theirs == mine, "mutation \(round): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
        #expect(accepted > 100)  // the loop exercised accepting paths, not only refusals
    }

    static func oursResponse(_ bytes: [UInt8]) -> (Int, [String])? {
        var parser = ResponseHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        // Accepted means: a final response whose framing Gatehouse can delimit (what reaches the client).
        guard case .head(let h) = parser.parse(&buffer), h.status >= 200,
            (try? h.framing(requestWasHEAD: false)) != nil
        else { return nil }
        return (h.status, h.stringFields.map { "\($0.name): \($0.value)" })
    }

    static func nioResponse(_ bytes: [UInt8]) -> (Int, [String])? {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        // The response decoder pairs each response with a request it saw going out.
        _ = try? channel.writeOutbound(HTTPClientRequestPart.head(.init(version: .http1_1, method: .GET, uri: "/")))
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        guard case .head(let h)? = try? channel.readInbound(as: HTTPClientResponsePart.self) else { return nil }
        return (Int(h.status.code), h.headers.map { "\($0.name): \(trimmed($0.value))" })
    }

    @Test func mutatedResponseHeadsNeverParseMoreLenientlyThanNIO() {
        let corpus = [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok",
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\r\n",
            "HTTP/1.0 204 \r\nServer: s\r\n\r\n",
        ]
        var rng = Seeded(state: 0x0DD5)
        var accepted = 0
        for round in 0..<3000 {
            var bytes = Array(corpus[round % corpus.count].utf8)
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            let b: UInt8 = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0x31].randomElement(using: &rng) ?? 0
            if Bool.random(using: &rng) { bytes[i] = b } else { bytes.insert(b, at: i) }
            guard let mine = Self.oursResponse(bytes), !Self.hasPaddedContentLength(bytes) else { continue }
            accepted += 1
            let theirs = Self.nioResponse(bytes)
            #expect(
                theirs?.0 == mine.0 && theirs?.1 == mine.1,
                "mine \(mine) theirs \(String(describing: theirs)) \(String(decoding: bytes, as: UTF8.self).debugDescription)"
            )
        }
        #expect(accepted > 100)
    }
}
