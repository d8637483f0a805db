import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1
import Testing

@testable import GatehouseServer

#if canImport(Glibc)
import Glibc
#endif

/// The four defects found by hostile testing, end to end through a real socket: tokens without a subject, list
/// members smuggled through a separator, double-encoded traversal, and a reset instead of the error answer.
@Suite(.serialized) struct HardeningTests {
    struct Setup {
        let keys: KeyServer
        let up: Upstream
        let gh: Harness
        let minter: Minter
        func stop() async {
            await gh.stop()
            await up.stop()
            await keys.stop()
        }
    }

    func setup(claims: ClaimMapping = ClaimMapping(), routes extra: (UpstreamTarget) -> [RouteConfig] = { _ in [] })
        async throws -> Setup
    {
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#)
        let minter = Minter(kid: "k1", issuer: keys.issuer)
        keys.setKeys(Minter.jwks([minter]))
        let up = try await Upstream()
        let provider = ProviderConfig(id: "corp", issuer: keys.issuer, audiences: ["api"], claims: claims)
        let routes =
            extra(up.target) + [
                RouteConfig(id: "api", pathPrefix: "/api", upstream: up.target, auth: .jwt),
                RouteConfig(
                    id: "admins", pathPrefix: "/admins", upstream: up.target, auth: .jwt,
                    allow: AllowRules(anyGroup: ["admins"])),
                RouteConfig(
                    id: "mixed", pathPrefix: "/mixed", upstream: up.target, auth: .jwt,
                    identityHeaders: [IdentityHeader(name: "X-Scopes", claim: "scp")]),
            ]
        let gh = try await Harness.start(routes: routes, providers: [provider])
        return Setup(keys: keys, up: up, gh: gh, minter: minter)
    }

    func token(_ minter: Minter, _ payload: String) -> String {
        let now = Int(Date().timeIntervalSince1970)
        let claims = #"{"iss":"\#(minter.issuer)","aud":"api","iat":\#(now),"exp":\#(now + 600)\#(payload)}"#
        return (try? minter.signer.sign(claimsJSON: claims)) ?? ""
    }

    func get(_ url: String, token: String? = nil) async throws -> (Int, HTTPHeaders, String) {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }

    // MARK: 1. a token without a subject

    @Test func aTokenThatNamesNobodyIsRefused() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        for payload in ["", #","sub":"""#, #","sub":12"#, #","sub":null"#, #","sub":["alice"]"#] {
            let (status, headers, body) = try await get(s.gh.base + "/api/x", token: token(s.minter, payload))
            #expect(status == 401, "sub \(payload)")
            #expect(headers.first(name: "www-authenticate")?.contains(#"error_description="token has no subject""#) == true)
            #expect(!body.contains("x-forwarded-user"))
        }
        #expect(s.up.accepted == 0, "nothing without a subject reached the upstream")
        let (ok, _, body) = try await get(s.gh.base + "/api/x", token: token(s.minter, #","sub":"alice""#))
        #expect(ok == 200)
        #expect(try Echo.decode(body).values("x-forwarded-user") == ["alice"])
    }

    @Test func aMappedUserClaimMustBePresent() async throws {
        let s = try await setup(claims: ClaimMapping(user: "client_id"))
        defer { Task { await s.stop() } }
        let (ok, _, body) = try await get(s.gh.base + "/api/x", token: token(s.minter, #","client_id":"billing""#))
        #expect(ok == 200)
        #expect(try Echo.decode(body).values("x-forwarded-user") == ["billing"])
        let (refused, headers, _) = try await get(s.gh.base + "/api/x", token: token(s.minter, #","sub":"alice""#))
        #expect(refused == 401)
        #expect(headers.first(name: "www-authenticate")?.contains("token has no subject") == true)
    }

    // MARK: 2. list members

    @Test func aSeparatorInAMemberDoesNotMakeTwoMembers() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        let smuggler = token(s.minter, #","sub":"alice","groups":["users,admins","staff"],"scp":["read","write, admin"]"#)
        // The policy sees the original member `users,admins`, which is not `admins`.
        #expect(try await get(s.gh.base + "/admins/x", token: smuggler).0 == 403)
        let (status, _, body) = try await get(s.gh.base + "/mixed/x", token: smuggler)
        #expect(status == 200)
        let echo = try Echo.decode(body)
        #expect(echo.values("x-forwarded-groups") == ["staff"])
        #expect(echo.values("x-scopes") == ["read"])
        #expect(!body.contains("admins") && !body.contains("admin"))
        let refusals = s.gh.log.all.filter { $0.contains("identity value refused") }
        #expect(refusals.contains { $0.contains("X-Forwarded-Groups") } && refusals.contains { $0.contains("X-Scopes") })
        #expect(!refusals.joined().contains("users,admins"), "the refused value itself is never logged")
        // An email with a comma or quotes is not passed on at all.
        let quoted = token(s.minter, #","sub":"alice","email":"\"bob,admin\"@example.com""#)
        let (_, _, quotedBody) = try await get(s.gh.base + "/api/x", token: quoted)
        #expect(try Echo.decode(quotedBody).values("x-forwarded-email").isEmpty)
    }

    // MARK: 3. double-encoded traversal

    @Test func doubleEncodedTraversalIsRefused() async throws {
        let s = try await setup { up in
            [
                RouteConfig(id: "public", pathPrefix: "/public", upstream: up, auth: .none),
                RouteConfig(id: "legacy", pathPrefix: "/legacy", upstream: up, auth: .none, allowDoubleEncoding: true),
            ]
        }
        defer { Task { await s.stop() } }
        for hostile in [
            "/public/%252e%252e/admin/secret", "/public/%252e%252e%252fadmin/secret", "/public/%252E%252E/admin",
            "/public/%25%32%65%25%32%65/admin", "/public/..%255cadmin", "/public/%2525252e%2525252e/admin",
        ] {
            let c = try RawClient(port: s.gh.port)
            c.send("GET \(hostile) HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = c.readResponses(1).first
            #expect(r?.status == 400, "\(hostile)")
            #expect(r?.body == "bad request: double-encoded character in path\n", "\(hostile)")
            #expect(r?.headers["connection"] != "close", "the connection stays usable")
        }
        #expect(s.up.accepted == 0)
        // A route that opts out forwards the path as received; an ordinary %25 passes everywhere.
        let c = try RawClient(port: s.gh.port)
        c.send("GET /legacy/%252e%252e/x HTTP/1.1\r\nHost: x\r\n\r\nGET /public/100%25 HTTP/1.1\r\nHost: x\r\n\r\n")
        let answers = c.readResponses(2)
        #expect(answers.map(\.status) == [200, 200])
        #expect(try Echo.decode(answers.first?.body ?? "").uri == "/legacy/%252e%252e/x")
        #expect(try Echo.decode(answers.last?.body ?? "").uri == "/public/100%25")
        let lines = s.gh.log.accessLines().filter { $0["status"] as? String == "400" }
        #expect(lines.allSatisfy { $0["error"] as? String == "double_encoding" } && lines.count == 6)
    }

    // MARK: 4. the answer reaches a client that is still sending

    @Test func anOversizedHeadGets431NotAReset() async throws {
        let s = try await setup { up in [route("open", path: "/", upstream: up, maxBody: 1024)] }
        defer { Task { await s.stop() } }
        // The whole request is sent before anything is read: 70 KB of header, over max_header_bytes (32 KiB).
        let c = try RawClient(port: s.gh.port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 70_000) + "\r\n\r\n")
        let (bytes, end) = c.readUntilEnd()
        #expect(bytes.hasPrefix("HTTP/1.1 431"), "got \(bytes.prefix(40))")
        #expect(bytes.contains("request header fields too large"))
        #expect(end == .eof, "the connection must end with EOF after the answer, not \(end)")
    }

    @Test func everyClosingErrorAnswerIsReadable() async throws {
        let s = try await setup { up in [route("open", path: "/", upstream: up, maxBody: 1024)] }
        defer { Task { await s.stop() } }
        let body = String(repeating: "b", count: 200_000)
        let cases: [(String, String)] = [
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body, "HTTP/1.1 413"),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" + body, "HTTP/1.1 400"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body, "HTTP/1.1 400"),
            ("GET /%zz HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body, "HTTP/1.1 400"),
        ]
        for (request, expected) in cases {
            let c = try RawClient(port: s.gh.port)
            c.send(request)
            let (bytes, end) = c.readUntilEnd()
            #expect(bytes.hasPrefix(expected), "\(request.prefix(60)): got \(bytes.prefix(40))")
            #expect(end == .eof, "\(request.prefix(60)): ended with \(end)")
        }
    }
}

extension RawClient {
    enum End: Equatable { case eof, reset, timeout, other(Int32) }

    /// Reads until the peer ends the connection and says how it ended.
    func readUntilEnd() -> (String, End) {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 {
                out += buf[0..<n]
                continue
            }
            let text = String(decoding: out, as: UTF8.self)
            if n == 0 { return (text, .eof) }
            switch errno {
            case ECONNRESET: return (text, .reset)
            case EAGAIN, EWOULDBLOCK: return (text, .timeout)
            default: return (text, .other(errno))
            }
        }
    }
}
