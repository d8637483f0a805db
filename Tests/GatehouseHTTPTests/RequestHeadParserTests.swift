import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseHTTP

@Suite struct RequestHeadParserTests {
    func parse(_ text: String, maxBytes: Int = 32 * 1024, maxFields: Int = 100) -> RequestHeadParser.Result {
        var parser = RequestHeadParser(maxBytes: maxBytes, maxFields: maxFields)
        var buffer = ByteBuffer(string: text)
        return parser.parse(&buffer)
    }

    func head(_ text: String) -> RequestHead? {
        if case .head(let h) = parse(text) { return h }
        return nil
    }

    func failure(_ text: String, maxBytes: Int = 32 * 1024, maxFields: Int = 100) -> RequestHeadParser.Failure? {
        if case .failure(let f) = parse(text, maxBytes: maxBytes, maxFields: maxFields) { return f }
        return nil
    }

    @Test func parsesARequestIntoRanges() throws {
        let h = try #require(
            head("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nAccept:  text/html \t\r\n\r\n"))
        #expect(h.method == "GET")
        #expect(h.target == "/a/b?x=1")
        #expect(h.versionMajor == 1 && h.versionMinor == 1)
        #expect(
            h.stringFields.map { "\($0.name)=\($0.value)" } == ["Host=example.com", "X-Empty=", "Accept=text/html"])
        #expect(h.firstValue("accept") == "text/html")
        #expect(h.firstIndex(of: "x-empty") == 1)
        // The line range covers the whole line with its CRLF, for copying a kept field as it is.
        let line = h.string(h.fields[2].lineRange)
        #expect(line == "Accept:  text/html \t\r\n")
    }

    @Test func aHeadArrivingByteByByteIsFoundOnce() throws {
        let text = "POST /upload HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"
        var parser = RequestHeadParser(maxBytes: 1024, maxFields: 10)
        var buffer = ByteBuffer()
        var result: RequestHeadParser.Result = .needMore
        for byte in text.utf8 {
            buffer.writeInteger(byte)
            result = parser.parse(&buffer)
            if case .head = result { break }
            guard case .needMore = result else {
                Issue.record("unexpected \(result)")
                return
            }
        }
        guard case .head(let h) = result else {
            Issue.record("no head")
            return
        }
        #expect(h.method == "POST" && h.versionMinor == 0)
        #expect(buffer.readableBytes == 0, "the body's bytes stay for the body")
        buffer.writeString("abc")
        #expect(buffer.readString(length: 3) == "abc")
    }

    @Test func pipelinedHeadsComeOneAtATime() throws {
        var parser = RequestHeadParser(maxBytes: 1024, maxFields: 10)
        var buffer = ByteBuffer(
            string: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3")
        guard case .head(let first) = parser.parse(&buffer), case .head(let second) = parser.parse(&buffer) else {
            Issue.record("expected two heads")
            return
        }
        #expect(first.target == "/1" && second.target == "/2")
        guard case .needMore = parser.parse(&buffer) else {
            Issue.record("a partial head is not complete")
            return
        }
        #expect(buffer.readableBytes == 6)
    }

    @Test(arguments: [
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target"),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "invalid HTTP version"),
        ("GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target"),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method"),
        (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method"),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", "invalid HTTP version"),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace before colon"),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "obsolete line folding"),
        ("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF"),
        ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR"),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", "invalid header value"),
        ("GET / HTTP/1.1\r\nHost: a\u{7f}\r\n\r\n", "invalid header value"),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", "empty header name"),
        ("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", "invalid header name"),
        ("GET / HTTP/1.1\r\nHost\r\n\r\n", "invalid header name"),
        ("GET / HTTP/1.1\nHost: a\n\n", "bare LF"),
    ])
    func malformedHeadsAreRefused(text: String, reason: String) {
        #expect(failure(text) == .malformed(reason), "\(text.debugDescription)")
    }

    @Test func versionsOtherThan10And11AreRefused() {
        #expect(failure("GET / HTTP/1.2\r\nHost: a\r\n\r\n") == .unsupportedVersion)
        #expect(failure("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == .unsupportedVersion)
        #expect(failure("GET / HTTP/0.9\r\n\r\n") == .unsupportedVersion)
        #expect(failure("GET / HTTP/1.x\r\n\r\n") == .malformed("invalid HTTP version"))
    }

    @Test func limitsAreEnforced() {
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n"
        #expect(failure(big, maxBytes: 1024) == .tooLarge)
        // An incomplete head over the limit fails as soon as it is over, without waiting for its end.
        var parser = RequestHeadParser(maxBytes: 1024, maxFields: 10)
        var partial = ByteBuffer(string: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000))
        guard case .failure(.tooLarge) = parser.parse(&partial) else {
            Issue.record("a partial head over the limit must fail")
            return
        }
        let many = "GET / HTTP/1.1\r\n" + (0..<11).map { "X\($0): v\r\n" }.joined() + "\r\n"
        #expect(failure(many, maxFields: 10) == .tooManyFields)
        #expect(head("GET / HTTP/1.1\r\n" + (0..<10).map { "X\($0): v\r\n" }.joined() + "\r\n") != nil)
    }

    @Test func everyByteInAValueIsClassifiedAsTheRFCSays() {
        for b in 0...255 where b != 0x0D {
            let value: [UInt8] = Array("GET / HTTP/1.1\r\nX: a".utf8) + [UInt8(b)] + Array("b\r\n\r\n".utf8)
            var parser = RequestHeadParser(maxBytes: 1024, maxFields: 10)
            var buffer = ByteBuffer(bytes: value)
            let accepted: Bool
            if case .head = parser.parse(&buffer) { accepted = true } else { accepted = false }
            let allowed = b == 0x09 || (b >= 0x20 && b != 0x7F)
            #expect(accepted == allowed, "byte \(b)")
        }
    }
}
