import Testing

@testable import GatehouseCore

@Suite struct RequestValidationTests {
    func validate(
        _ headers: [(String, String)], method: String = "POST", target: String = "/x", minor: Int = 1,
        max: Int = 32 * 1024
    ) throws(GatehouseError) -> RequestValidation.Outcome {
        try RequestValidation.validate(
            head: .init(method: method, target: target, versionMajor: 1, versionMinor: minor),
            headers: headers.map { (name: $0.0, value: $0.1) }, maxHeaderBytes: max)
    }

    func reason(_ headers: [(String, String)], method: String = "POST", target: String = "/x", minor: Int = 1)
        -> GatehouseError?
    {
        do {
            _ = try validate(headers, method: method, target: target, minor: minor)
            return nil
        } catch {
            return error
        }
    }

    @Test func smugglingShapesAreRefused() {
        #expect(reason([("Host", "a"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
            == .badRequest("both Content-Length and Transfer-Encoding"))
        #expect(reason([("Host", "a"), ("Content-Length", "5"), ("Content-Length", "5")])
            == .badRequest("duplicate Content-Length"))
        #expect(reason([("Host", "a"), ("Content-Length", "5, 5")]) == .badRequest("invalid Content-Length"))
        #expect(reason([("Host", "a"), ("Content-Length", "+5")]) == .badRequest("invalid Content-Length"))
        #expect(reason([("Host", "a"), ("Content-Length", "")]) == .badRequest("invalid Content-Length"))
        #expect(reason([("Host", "a"), ("Transfer-Encoding", "gzip, chunked")])
            == .badRequest("Transfer-Encoding other than chunked"))
        #expect(reason([("Host", "a"), ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")])
            == .badRequest("duplicate Transfer-Encoding"))
        #expect(reason([("Host", "a"), ("Transfer-Encoding", "chunked")], minor: 0)
            == .badRequest("Transfer-Encoding in HTTP/1.0"))
        #expect(reason([("Host", "a"), ("Host", "b")]) == .badRequest("more than one Host header"))
        #expect(reason([]) == .badRequest("missing Host header"))
        #expect(reason([("Host", "a b")]) == .badRequest("invalid Host header"))
        #expect(reason([("Host", "a"), ("X Bad", "v")]) == .badRequest("invalid header name"))
        #expect(reason([("Host", "a"), ("X-Bad", "v\u{0}")]) == .badRequest("invalid header value"))
        #expect(reason([("Host", "a"), ("X-Bad", "v\r\nX-Injected: 1")]) == .badRequest("invalid header value"))
        #expect(reason([("Host", "a"), ("Expect", "200-ok")]) == .expectationFailed)
        #expect(reason([("Expect", "200-ok")], minor: 0) == nil)
        #expect((try? validate([("Expect", "100-continue")], minor: 0))?.expectContinue == false)
        #expect(reason([("Host", "a")], method: "CONNECT") == .methodNotAllowed(allowed: []))
    }

    @Test func goodRequests() throws {
        let o = try validate([("Host", "App.example.com:8080"), ("Content-Length", "12")])
        #expect(o.host == "app.example.com")
        #expect(o.rawHost == "App.example.com:8080")
        #expect(o.contentLength == 12)
        #expect(!o.chunked)
        #expect(!o.wantsClose)
        let c = try validate([("Host", "a"), ("Transfer-Encoding", "Chunked"), ("Expect", "100-Continue")])
        #expect(c.chunked && c.expectContinue)
        let old = try validate([], method: "GET", minor: 0)
        #expect(old.host == nil && old.wantsClose)
        let oldKeep = try validate([("Connection", "keep-alive")], method: "GET", minor: 0)
        #expect(!oldKeep.wantsClose)
        #expect(try validate([("Host", "a"), ("Connection", "close")]).wantsClose)
    }

    @Test func absoluteForm() throws {
        #expect(try validate([("Host", "a.com")], target: "http://a.com/p/../q?x").target.forwardTarget == "/q?x")
        #expect(try validate([("Host", "a.com")], target: "http://A.com").target.path == "/")
        #expect(reason([("Host", "a.com")], target: "http://evil.com/p") == .badRequest("absolute-form target names another host"))
        #expect(reason([("Host", "a.com")], target: "http://user@a.com/p") == .badRequest("absolute-form target names another host"))
        #expect(reason([("Host", "a.com")], target: "ftp://a.com/p") == .badRequest("request target is not an absolute path"))
    }

    @Test func headerBudget() {
        let big = String(repeating: "a", count: 40 * 1024)
        #expect(reason([("Host", "a"), ("X-Big", big)]) == .headerTooLarge)
        #expect((try? validate([("Host", "a"), ("X-Big", big)], max: 64 * 1024)) != nil)
    }

    @Test func errorMapping() {
        #expect(HTTPErrorResponse.make(for: .headerTooLarge).status == 431)
        #expect(HTTPErrorResponse.make(for: .bodyTooLarge(limit: 10)).status == 413)
        #expect(HTTPErrorResponse.make(for: .notFound).status == 404)
        #expect(HTTPErrorResponse.make(for: .upstreamConnectFailed("x")).status == 502)
        #expect(HTTPErrorResponse.make(for: .upstreamResponseTimeout).status == 504)
        #expect(HTTPErrorResponse.make(for: .methodNotAllowed(allowed: ["GET"])).headers.first?.1 == "GET")
        #expect(HTTPErrorResponse.make(for: .badRequest("why")).body.contains("why"))
        #expect(GatehouseError.upstreamResponseTimeout.source == .upstream)
    }

    @Test func upstreamTargets() {
        #expect(UpstreamTarget.parse("http://127.0.0.1:3000") == UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000))
        #expect(UpstreamTarget.parse("https://api.internal/base/") == UpstreamTarget(scheme: .https, host: "api.internal", port: 443, basePath: "/base"))
        #expect(UpstreamTarget.parse("http://[::1]:81")?.hostHeader == "[::1]:81")
        #expect(UpstreamTarget.parse("ftp://x") == nil)
        #expect(UpstreamTarget.parse("http://u:p@x") == nil)
        #expect(UpstreamTarget.parse("http://x?y") == nil)
        #expect(UpstreamTarget.parse("http://:80") == nil)
        #expect(UpstreamTarget.parse("http://x:0") == nil)
        #expect(UpstreamTarget.parse("http://x/a b/") == nil)
        #expect(UpstreamTarget.parse("http://x/a/../b") == nil)
        #expect(UpstreamTarget.parse("http://x/a%2Fb") == nil)
    }

    /// The word-at-a-time field-value check agrees with the byte rule (HTAB, SP..0x7E, obs-text 0x80..0xFF) for
    /// every byte value at every position of a word and in the tail.
    @Test func fieldValueCheckMatchesTheByteRule() {
        func reference(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) } }
        for length in [1, 7, 8, 9, 16, 23] {
            for position in 0..<length {
                for b in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(b)
                    let text = String(decoding: bytes, as: UTF8.self)
                    let expected = reference(Array(text.utf8))
                    #expect(RequestValidation.isValidFieldValue(text) == expected, "byte \(b) at \(position) of \(length)")
                }
            }
        }
        #expect(RequestValidation.isValidFieldValue(""))
        #expect(RequestValidation.isValidFieldValue("a\tb c d e f g h\t"))
        #expect(!RequestValidation.isValidFieldValue("abcdefgh\tijklmno\r"))
    }
}
