import AsyncHTTPClient
import Foundation
import GatehouseConfig
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

@testable import GatehouseServer

/// End-to-end tests: Gatehouse in-process on 127.0.0.1:0, a real upstream server, a real HTTP client
/// (AsyncHTTPClient) and raw sockets for malformed input.
@Suite(.serialized) struct ProxyTests {
    func get(_ url: String, headers: [(String, String)] = []) async throws -> (Int, HTTPHeaders, String) {
        var request = HTTPClientRequest(url: url)
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }

    @Test func forwardsWithGatehouseHeadersAndNoForgedOnes() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let forged = [
            ("X-Forwarded-User", "mallory"), ("X_Forwarded_User", "mallory"), ("x.forwarded.email", "mallory"),
            ("X-Auth-Request-User", "mallory"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil"),
            ("X-Forwarded-Proto", "https"), ("Forwarded", "for=6.6.6.6"), ("Connection", "X-Request-Id"),
            ("Authorization", "Bearer secret-token-value"), ("Cookie", "session=secret-cookie-value"),
        ]
        let (status, headers, body) = try await get(gh.base + "/hello/world?q=1", headers: forged)
        #expect(status == 200)
        let echo = try Echo.decode(body)
        #expect(echo.uri == "/hello/world?q=1")
        #expect(echo.values("host") == ["127.0.0.1:\(up.port)"])
        #expect(echo.values("x-forwarded-for") == ["127.0.0.1"])
        #expect(echo.values("x-forwarded-proto") == ["http"])
        #expect(echo.values("x-forwarded-host") == ["127.0.0.1:\(gh.port)"])
        #expect(echo.values("forwarded").isEmpty)
        #expect(!body.contains("mallory") && !body.contains("6.6.6.6") && !body.contains("evil"))
        let rid = echo.values("x-request-id")
        #expect(rid.count == 1 && rid[0].count == 32)
        #expect(rid.first?.allSatisfy { $0.isHexDigit && !$0.isUppercase } == true)
        #expect(headers.first(name: "x-request-id") == rid.first)
        // auth: none forwards Authorization and Cookie untouched (nothing consumes them on a public route).
        #expect(echo.values("authorization") == ["Bearer secret-token-value"])
        // The access log has one line for the request, with no secret in it.
        let lines = gh.log.accessLines()
        #expect(lines.count == 1)
        #expect(lines.first?["path"] as? String == "/hello/world")
        #expect(lines.first?["status"] as? String == "200")
        #expect(lines.first?["route"] as? String == "app")
        #expect(lines.first?["request_id"] as? String == rid.first)
        let all = gh.log.all.joined()
        #expect(!all.contains("secret-token-value") && !all.contains("secret-cookie-value") && !all.contains("q=1"))
    }

    @Test func routingIsCanonicalAndSegmentAware() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [
            route("public", path: "/public", upstream: up.target, methods: ["GET"]),
            route("files", path: "/files", upstream: up.target, encodedSlashes: true),
        ])
        defer { Task { await gh.stop(); await up.stop() } }
        #expect(try await get(gh.base + "/public").0 == 200)
        #expect(try await get(gh.base + "/publicity").0 == 404)
        #expect(try await get(gh.base + "/admin").0 == 404)
        let raw = try RawClient(port: gh.port)
        raw.send("GET /public/../public/%61b//c HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = raw.readResponses(1)
        #expect(r.first?.status == 200)
        #expect(try Echo.decode(r.first?.body ?? "").uri == "/public/ab/c")
        // the `/public/../admin` trick routes as /admin: 404, never the public route
        for hostile in ["/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2e/admin"] {
            let c = try RawClient(port: gh.port)
            c.send("GET \(hostile) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.readResponses(1).first?.status == 404, "\(hostile)")
        }
        for hostile in ["/public/..;/admin", "/public/a%2Fb", "/public/a%5cb", "/public\\..\\admin", "/public/%00",
            "/public/%zz", "/public/a#frag", "http://evil.example/public"]
        {
            let c = try RawClient(port: gh.port)
            c.send("GET \(hostile) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.readResponses(1).first?.status == 400, "\(hostile)")
        }
        // the opted-in route keeps the encoded slash
        let f = try RawClient(port: gh.port)
        f.send("GET /files/a%2fb HTTP/1.1\r\nHost: x\r\n\r\n")
        let fr = f.readResponses(1)
        #expect(fr.first?.status == 200)
        #expect(try Echo.decode(fr.first?.body ?? "").uri == "/files/a%2Fb")
        // method restriction
        let m = try RawClient(port: gh.port)
        m.send("DELETE /public/x HTTP/1.1\r\nHost: x\r\n\r\n")
        let mr = m.readResponses(1)
        #expect(mr.first?.status == 405)
        #expect(mr.first?.headers["allow"] == "GET")
    }

    @Test(arguments: [0, 1 << 20])
    func bodiesStreamBothWays(size: Int) async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        var request = HTTPClientRequest(url: gh.base + "/upload")
        request.method = .POST
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 2 << 20)
        if size == 0 {
            // no body: the echo answers with its JSON report instead
            #expect(try Echo.decode(String(buffer: body)).method == "POST")
        } else {
            #expect(Array(body.readableBytesView) == payload)
        }
        // download direction, Content-Length framed
        let (status, _, text) = try await get(gh.base + "/bytes/\(size)")
        #expect(status == 200 && text.utf8.count == size)
    }

    @Test func twoHundredMiBStreamsBothWaysInBoundedMemory() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)]) { $0.maxBodyBytes = 1 << 30 }
        defer { Task { await gh.stop(); await up.stop() } }
        let total = 200 * 1024 * 1024
        let chunk = ByteBuffer(repeating: UInt8(ascii: "z"), count: 64 * 1024)
        let before = residentBytes()
        var request = HTTPClientRequest(url: gh.base + "/stream")
        request.method = .PUT
        let chunks = total / chunk.readableBytes
        request.body = .stream(
            AsyncStream<ByteBuffer> { c in
                for _ in 0..<chunks { c.yield(chunk) }
                c.finish()
            }, length: .known(Int64(total)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
        #expect(response.status == .ok)
        var received = 0
        var peak = before
        for try await part in response.body {
            received += part.readableBytes
            if received % (16 << 20) < part.readableBytes { peak = max(peak, residentBytes()) }
        }
        #expect(received == total)
        // download of 200 MiB generated by the upstream
        let down = try await HTTPClient.shared.execute(HTTPClientRequest(url: gh.base + "/bytes/\(total)"), timeout: .seconds(300))
        var downloaded = 0
        for try await part in down.body {
            downloaded += part.readableBytes
            if downloaded % (16 << 20) < part.readableBytes { peak = max(peak, residentBytes()) }
        }
        #expect(downloaded == total)
        // The client, proxy and upstream all run in this process: 200 MiB buffered anywhere would show here.
        let growth = peak - before
        #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB while streaming 200 MiB")
    }

    @Test func keepAliveReusesClientAndUpstreamConnections() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], workers: 1)
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port)
        for i in 0..<5 {
            c.send("GET /n/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = c.readResponses(1)
            #expect(r.first?.status == 200)
            #expect(try Echo.decode(r.first?.body ?? "").uri == "/n/\(i)")
        }
        #expect(up.accepted == 1, "upstream connections: \(up.accepted)")
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", path: "/ok", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port)
        c.send(
            "GET /ok/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /ok/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /ok/4 HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = c.readResponses(4)
        #expect(r.map(\.status) == [200, 404, 200, 200])
        #expect(try Echo.decode(r[0].body).uri == "/ok/1")
        #expect(r[2].body == "hello")
        #expect(try Echo.decode(r[3].body).uri == "/ok/4")
    }

    /// Pipelining is handled by HTTP1Connection itself: 300 requests in one write (upstream-served and locally
    /// answered ones alternating) are all answered, in order; a good request followed by garbage gets its answer
    /// before the 400 and the close.
    @Test func manyPipelinedRequestsAndTrailingGarbage() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", path: "/ok", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port)
        var batch = ""
        for i in 0..<300 {
            batch += i % 2 == 0 ? "GET /ok/\(i) HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /missing/\(i) HTTP/1.1\r\nHost: x\r\n\r\n"
        }
        c.send(batch)
        let r = c.readResponses(300)
        #expect(r.count == 300)
        #expect(r.map(\.status) == (0..<300).map { $0 % 2 == 0 ? 200 : 404 })
        let uris = try stride(from: 0, to: r.count, by: 2).map { try Echo.decode(r[$0].body).uri }
        #expect(uris == stride(from: 0, to: 300, by: 2).map { "/ok/\($0)" })

        let d = try RawClient(port: gh.port)
        d.send("GET /ok/a HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\u{1}\r\n\r\n")
        let (text, closed) = d.readToClose()
        let ok = text.range(of: "HTTP/1.1 200")
        let bad = text.range(of: "HTTP/1.1 400")
        #expect(ok != nil && bad != nil && ok!.lowerBound < bad!.lowerBound, "\(text.prefix(300))")
        #expect(closed)
    }

    @Test func upstreamRefusedIs502AndSilentIs504() async throws {
        let silent = try await SilentUpstream()
        let refused = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: try closedPort())
        let gh = try await Harness.start(routes: [
            route("down", path: "/down", upstream: refused), route("slow", path: "/slow", upstream: silent.target),
        ]) { $0.upstreamResponseTimeout = .milliseconds(400) }
        defer { Task { await gh.stop(); await silent.stop() } }
        let (s1, _, b1) = try await get(gh.base + "/down")
        #expect(s1 == 502)
        #expect(b1 == "upstream unavailable\n")
        let start = ContinuousClock.now
        let (s2, _, b2) = try await get(gh.base + "/slow")
        let elapsed = ContinuousClock.now - start
        #expect(s2 == 504)
        #expect(b2 == "upstream timed out\n")
        #expect(elapsed < .seconds(5))
        let reasons = gh.log.accessLines().compactMap { $0["error"] as? String }
        #expect(reasons.contains("upstream_connect_failed") && reasons.contains("upstream_timeout"))
    }

    @Test func anUpstreamConnectionThatSawAnErrorIsNotReused() async throws {
        let flaky = try await FlakyUpstream()
        let gh = try await Harness.start(routes: [route("app", upstream: flaky.target)], workers: 1)
        defer { Task { await gh.stop(); await flaky.stop() } }
        let (first, _, body) = try await get(gh.base + "/a")
        #expect(first == 502 && body == "bad response from upstream\n")
        let (second, _, ok) = try await get(gh.base + "/b")
        #expect(second == 200 && ok == "ok")
        let (third, _, _) = try await get(gh.base + "/c")
        #expect(third == 200)
        // the broken connection was dropped; the good one was pooled and reused for the third request
        #expect(flaky.accepted == 2)
    }

    @Test func slowlorisIsClosed() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)]) {
            $0.requestHeaderTimeout = .milliseconds(300)
        }
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port, timeoutSeconds: 10)
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        let start = ContinuousClock.now
        let (_, closed) = c.readToClose()
        #expect(closed)
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func stalledUploadGets408() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)]) {
            $0.idleTimeout = .milliseconds(300)
        }
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port, timeoutSeconds: 10)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
        let start = ContinuousClock.now
        let (text, closed) = c.readToClose()
        // The echo upstream answers as soon as the head arrives, so the response has begun: the stalled upload
        // ends with both connections closed (a 408 when nothing was sent yet: see the unit of armActivity).
        #expect(closed)
        #expect(text.hasPrefix("HTTP/1.1 200 ") || text.hasPrefix("HTTP/1.1 408 "), "got: \(text.prefix(40))")
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(gh.log.accessLines().contains { $0["error"] as? String == "request_body_timeout" })
    }

    @Test func stalledUploadBeforeAnyResponseGets408() async throws {
        let gate = try await GatedUpstream()
        let gh = try await Harness.start(routes: [route("app", upstream: gate.target)]) {
            $0.idleTimeout = .milliseconds(300)
        }
        defer { Task { await gh.stop(); await gate.stop() } }
        let c = try RawClient(port: gh.port, timeoutSeconds: 10)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
        let (text, closed) = c.readToClose()
        #expect(text.hasPrefix("HTTP/1.1 408 ") && closed, "got: \(text.prefix(40))")
    }

    @Test func idleKeepAliveIsClosed() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)]) {
            $0.idleTimeout = .milliseconds(300)
        }
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port, timeoutSeconds: 10)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponses(1).first?.status == 200)
        let (_, closed) = c.readToClose()
        #expect(closed)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Space : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\u{0}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\nX-Bare-LF: 1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400),
        ("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("GARBAGE\r\n\r\n", 400),
    ])
    func malformedRequestsAreRefused(request: String, status: Int) async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port)
        c.send(request)
        let (text, closed) = c.readToClose()
        #expect(text.hasPrefix("HTTP/1.1 \(status) "), "got: \(text.prefix(60))")
        #expect(closed || status == 405)
        #expect(up.accepted == 0, "a malformed request reached the upstream")
    }

    @Test func limits() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [
            route("small", path: "/small", upstream: up.target, maxBody: 10), route("app", upstream: up.target),
        ]) { $0.maxHeaderBytes = 4096 }
        defer { Task { await gh.stop(); await up.stop() } }
        let big = try RawClient(port: gh.port)
        big.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 8000))\r\n\r\n")
        #expect(big.readToClose().0.hasPrefix("HTTP/1.1 431 "))
        let cl = try RawClient(port: gh.port)
        cl.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(cl.readToClose().0.hasPrefix("HTTP/1.1 413 "))
        let chunked = try RawClient(port: gh.port)
        chunked.send("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
        let (text, closed) = chunked.readToClose()
        #expect(text.hasPrefix("HTTP/1.1 413 ") && closed, "got: \(text.prefix(40))")
        let ok = try RawClient(port: gh.port)
        ok.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhelloworld")
        #expect(ok.readResponses(1).first?.body == "helloworld")
    }

    @Test func expectContinueAndHTTP10() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let c = try RawClient(port: gh.port)
        c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = c.readResponses(1)
        #expect(interim.first?.status == 100)
        c.send("hello")
        let final = c.readResponses(1)
        #expect(final.first?.status == 200 && final.first?.body == "hello")
        let old = try RawClient(port: gh.port)
        old.send("GET /old HTTP/1.0\r\n\r\n")
        let (text, closed) = old.readToClose()
        #expect(text.hasPrefix("HTTP/1.0 200 ") && closed)
        #expect(text.contains("\"uri\":\"/old\""))
        let close = try RawClient(port: gh.port)
        close.send("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (ctext, cclosed) = close.readToClose()
        #expect(ctext.hasPrefix("HTTP/1.1 200 ") && cclosed)
    }

    @Test func adminEndpoints() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)])
        defer { Task { await gh.stop(); await up.stop() } }
        let admin = "http://127.0.0.1:\(gh.adminPort ?? 0)"
        #expect(try await get(admin + "/healthz").0 == 200)
        #expect(try await get(admin + "/readyz").0 == 200)
        #expect(try await get(admin + "/nope").0 == 404)
    }

    @Test func gracefulShutdownDrainsInFlightRequests() async throws {
        let gate = try await GatedUpstream()
        let gh = try await Harness.start(routes: [route("app", upstream: gate.target)])
        // an idle keep-alive connection is closed by the shutdown
        let idle = try RawClient(port: gh.port)
        let c = try RawClient(port: gh.port)
        c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        let inflight = Task { await offPool { c.readResponses(1).first } }
        var arrivals = gate.arrivals.makeAsyncIterator()
        _ = await arrivals.next()
        let finished = NIOLockedValueBox(false)
        let shutdown = Task {
            await gh.server.shutdown(grace: .seconds(20))
            finished.withLockedValue { $0 = true }
        }
        // Closed by the shutdown, not by the 10 s request-header timeout that would close it anyway.
        let start = ContinuousClock.now
        #expect(await offPool { idle.readToClose() }.closed)
        #expect(ContinuousClock.now - start < .seconds(8), "the idle connection was not closed by the shutdown")
        #expect(!finished.withLockedValue { $0 }, "shutdown finished while a request was in flight")
        gate.release()
        let response = await inflight.value
        #expect(response?.status == 200 && response?.body == "done")
        await shutdown.value
        #expect(!gh.server.isReady)
        #expect((try? RawClient(port: gh.port)) == nil, "still accepting after shutdown")
        try? await gh.group.shutdownGracefully()
        await gate.stop()
    }

    @Test func shutdownGraceExpiryClosesStragglers() async throws {
        let gate = try await GatedUpstream()
        let gh = try await Harness.start(routes: [route("app", upstream: gate.target)])
        let c = try RawClient(port: gh.port)
        c.send("GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        var arrivals = gate.arrivals.makeAsyncIterator()
        _ = await arrivals.next()
        let start = ContinuousClock.now
        await gh.server.shutdown(grace: .milliseconds(300))
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(c.readToClose().closed)
        try? await gh.group.shutdownGracefully()
        await gate.stop()
    }
}

/// Every shipped config file must not only parse but also start: `gatehouse check` runs the same check.
@Suite struct ShippedConfigTests {
    @Test func everyConfigFileIsServable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let env = [
            "GATEHOUSE_CLIENT_SECRET": "x", "GATEHOUSE_COOKIE_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "GATEHOUSE_DATABASE_URL": "x",
        ]
        var files: [String] = []
        for dir in ["Config", "Config/examples", "Docker"] {
            let url = root.appendingPathComponent(dir)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] where name.hasSuffix(".yaml") {
                files.append(url.appendingPathComponent(name).path)
            }
        }
        #expect(files.count >= 7)
        for file in files {
            let config = try ConfigLoader.load(path: file, environment: env, readFile: { _ in Array(repeating: 1, count: 64) })
            #expect(GatehouseServer.unsupported(in: config) == [], "\(file)")
        }
    }
}
