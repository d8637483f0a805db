import GatehouseCore
import NIOCore
import NIOEmbedded
import GatehouseFuzz
import Testing

@testable import GatehouseHTTP

/// Gatehouse's parsers against SwiftNIO's (llhttp-based) decoders on the same bytes (`Differential`): whatever
/// Gatehouse accepts, NIO must read the same way (method, target, version, every field name and value in order,
/// and the body its framing delimits). Gatehouse may be stricter (it refuses what an upstream could read two
/// ways); it must never be more lenient. A seeded mutation loop extends the hand-written corpus with byte flips,
/// insertions and deletions; the request-head and response-head fuzz targets run the same comparison over their
/// corpus (FuzzCorpusTests) and under libFuzzer (scripts/fuzz).
@Suite struct DifferentialTests {
    static func ours(_ bytes: [UInt8]) -> Differential.Message? { Differential.ourRequest(bytes) }
    static func nio(_ bytes: [UInt8]) -> Differential.Message? { Differential.nioRequest(bytes) }

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

    @Test func mutatedHeadsNeverParseMoreLenientlyThanNIO() {
        var rng = SplitMix64(seed: 0x6A7E_4053)
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
            guard let mine = Self.ours(bytes), Differential.comparable(mine, bytes: bytes) else { continue }
            accepted += 1
            let theirs = Self.nio(bytes)
            #expect(theirs == mine, "mutation \(round): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
        #expect(accepted > 100)  // the loop exercised accepting paths, not only refusals
    }

    @Test func mutatedResponseHeadsNeverParseMoreLenientlyThanNIO() {
        let corpus = [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok",
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\r\n",
            "HTTP/1.0 204 \r\nServer: s\r\n\r\n",
        ]
        var rng = SplitMix64(seed: 0x0DD5)
        var accepted = 0
        for round in 0..<3000 {
            var bytes = Array(corpus[round % corpus.count].utf8)
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            let b: UInt8 = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0x31].randomElement(using: &rng) ?? 0
            if Bool.random(using: &rng) { bytes[i] = b } else { bytes.insert(b, at: i) }
            guard let mine = Differential.ourResponse(bytes), Differential.comparable(mine, bytes: bytes) else {
                continue
            }
            accepted += 1
            let theirs = Differential.nioResponse(bytes)
            #expect(
                theirs == mine,
                "mine \(mine) theirs \(String(describing: theirs)) \(String(decoding: bytes, as: UTF8.self).debugDescription)"
            )
        }
        #expect(accepted > 100)
    }
}
