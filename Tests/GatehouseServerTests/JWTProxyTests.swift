import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1
import Testing

@testable import GatehouseServer

/// Bearer-JWT routes end to end: a real key server (discovery + JWKS) on loopback, Gatehouse in front of the
/// echo upstream, a real HTTP client.
@Suite(.serialized) struct JWTProxyTests {
    func send(_ url: String, token: String? = nil, headers: [(String, String)] = [], method: HTTPMethod = .GET)
        async throws -> (Int, HTTPHeaders, String)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }

    struct Setup {
        let keys: KeyServer
        let up: Upstream
        let gh: Harness
        let alice: Minter
        func stop() async {
            await gh.stop()
            await up.stop()
            await keys.stop()
        }
    }

    func setup(extraRoutes: (UpstreamTarget) -> [RouteConfig] = { _ in [] }, prefetch: Bool = true, keysUp: Bool = true)
        async throws -> Setup
    {
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#)
        keys.setUp(keysUp)
        let alice = Minter(kid: "k1", issuer: keys.issuer)
        keys.setKeys(Minter.jwks([alice]))
        let up = try await Upstream()
        let provider = ProviderConfig(id: "corp", issuer: keys.issuer, audiences: ["api"])
        let routes =
            extraRoutes(up.target) + [
                RouteConfig(
                    id: "api", pathPrefix: "/api", upstream: up.target, auth: .jwt,
                    allow: AllowRules(anyGroup: ["staff"]),
                    identityHeaders: [IdentityHeader(name: "X-Tenant", claim: "tenant")]),
                RouteConfig(id: "pass", pathPrefix: "/pass", upstream: up.target, auth: .jwt, passAccessToken: true),
                RouteConfig(
                    id: "scoped", pathPrefix: "/scoped", upstream: up.target, auth: .jwt,
                    allow: AllowRules(scopes: ["orders.write"])),
                RouteConfig(id: "open", pathPrefix: "/open", upstream: up.target, auth: .none),
            ]
        let gh = try await Harness.start(routes: routes, providers: [provider], prefetchKeys: prefetch)
        return Setup(keys: keys, up: up, gh: gh, alice: alice)
    }

    @Test func validTokenForwardsIdentityHeadersAndNothingForged() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        let token = s.alice.token(extra: #","tenant":"acme""#)
        let forged = [
            ("X-Forwarded-User", "mallory"), ("X_Forwarded_User", "mallory"), ("x.forwarded.email", "mallory@x"),
            ("X-Forwarded-Groups", "admins"), ("X-Tenant", "evil"), ("X_Tenant", "evil"),
            ("X-Auth-Request-User", "mallory"),
        ]
        let (status, _, body) = try await send(s.gh.base + "/api/orders", token: token, headers: forged)
        #expect(status == 200)
        let echo = try Echo.decode(body)
        #expect(echo.values("x-forwarded-user") == ["alice"])
        #expect(echo.values("x-forwarded-email") == ["alice@example.com"])
        #expect(echo.values("x-forwarded-groups") == ["staff"])
        #expect(echo.values("x-forwarded-preferred-username") == ["alice"])
        #expect(echo.values("x-tenant") == ["acme"])
        #expect(echo.values("authorization").isEmpty, "the token must not reach the upstream without pass_access_token")
        #expect(!body.contains("mallory") && !body.contains("evil"))
        // pass_access_token forwards it
        let (_, _, passBody) = try await send(s.gh.base + "/pass/x", token: token)
        #expect(try Echo.decode(passBody).values("authorization") == ["Bearer \(token)"])
        // the access log names the user but never the token
        let lines = s.gh.log.all.joined()
        #expect(lines.contains(#""user":"alice""#))
        #expect(!lines.contains(token) && !lines.contains(String(token.split(separator: ".")[2])))
    }

    @Test func spoofedIdentityHeadersNeverReachTheUpstreamOnAnyRouteType() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        let aliases = ["X-Forwarded-User", "x-forwarded-user", "X_Forwarded_User", "X.Forwarded.User", "X-FORWARDED-USER",
            "X-Forwarded-Email", "X_Forwarded_Groups", "X-Forwarded-Preferred_Username", "X-Tenant", "x_tenant",
            "X-Auth-Request-Email", "X_Auth_Request_Groups"]
        let headers = aliases.map { ($0, "spoofed-\($0)") }
        for path in ["/open/x", "/api/x", "/pass/x"] {
            let token = path == "/open/x" ? nil : s.alice.token()
            let (status, _, body) = try await send(s.gh.base + path, token: token, headers: headers)
            #expect(status == 200, "\(path)")
            #expect(!body.contains("spoofed"), "\(path) leaked a client identity header: \(body)")
        }
        // and on denied requests nothing is forwarded at all
        let before = s.up.accepted
        _ = try await send(s.gh.base + "/api/x", headers: headers)
        #expect(s.up.accepted == before)
    }

    @Test func deniedRequestsGetPreciseAnswers() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        let (s1, h1, _) = try await send(s.gh.base + "/api/x")
        #expect(s1 == 401)
        #expect(h1.first(name: "www-authenticate") == #"Bearer realm="gatehouse""#)
        let (s2, h2, _) = try await send(s.gh.base + "/api/x", token: s.alice.token(ttl: -120))
        #expect(s2 == 401)
        #expect(h2.first(name: "www-authenticate") == #"Bearer realm="gatehouse", error="invalid_token", error_description="token expired""#)
        let (s3, _, b3) = try await send(s.gh.base + "/api/x", token: s.alice.token(groups: ["guests"]))
        #expect(s3 == 403 && b3.contains("not in any allowed group"))
        let (s4, h4, _) = try await send(s.gh.base + "/scoped/x", token: s.alice.token())
        #expect(s4 == 403)
        #expect(h4.first(name: "www-authenticate")?.contains(#"error="insufficient_scope""#) == true)
        let (s5, _, _) = try await send(s.gh.base + "/scoped/x", token: s.alice.token(extra: #","scope":"orders.write""#))
        #expect(s5 == 200)
        let (s6, _, _) = try await send(s.gh.base + "/api/x", token: s.alice.token(aud: "other"))
        #expect(s6 == 401)
        let (s7, h7, _) = try await send(s.gh.base + "/api/x?access_token=\(s.alice.token())")
        #expect(s7 == 400)
        #expect(h7.first(name: "www-authenticate")?.contains("invalid_request") == true)
        let raw = try RawClient(port: s.gh.port)
        raw.send("GET /api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(s.alice.token())\r\nAuthorization: Bearer \(s.alice.token())\r\n\r\n")
        #expect(raw.readResponses(1).first?.status == 400)
        let (s8, _, _) = try await send(s.gh.base + "/api/x", token: String(repeating: "a", count: 20_000))
        #expect(s8 == 401)
        let denials = s.gh.log.accessLines().compactMap { $0["detail"] as? String }
        #expect(denials.contains("token expired") && denials.contains("audience not accepted"))
    }

    @Test func rotationAndUnknownKidSingleFlight() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        let oldToken = s.alice.token()
        #expect(try await send(s.gh.base + "/api/x", token: oldToken).0 == 200)
        let fetchesBefore = s.keys.jwksFetches
        // the provider rotates to a new key
        let rotated = Minter(kid: "k2", issuer: s.keys.issuer)
        s.keys.setKeys(Minter.jwks([rotated]))
        // a storm of requests with the new, still unknown kid: one fetch in all
        let newToken = rotated.token()
        let statuses = try await withThrowingTaskGroup(of: Int.self, returning: [Int].self) { group in
            for _ in 0..<50 { group.addTask { try await self.send(s.gh.base + "/api/x", token: newToken).0 } }
            var out: [Int] = []
            for try await st in group { out.append(st) }
            return out
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        #expect(s.keys.jwksFetches == fetchesBefore + 1)
        // the old key left the set: its token (even though cached before) no longer passes
        let (status, headers, _) = try await send(s.gh.base + "/api/x", token: oldToken)
        #expect(status == 401)
        #expect(headers.first(name: "www-authenticate")?.contains("unknown key id") == true)
        // more unknown kids within the interval cause no further fetches
        for _ in 0..<20 { _ = try await send(s.gh.base + "/api/x", token: Minter(kid: "k9", issuer: s.keys.issuer).token()) }
        #expect(s.keys.jwksFetches == fetchesBefore + 1)
    }

    @Test func keyServerDownKeepsServingWithCachedKeys() async throws {
        let s = try await setup()
        defer { Task { await s.stop() } }
        s.keys.setUp(false)
        #expect(try await send(s.gh.base + "/api/x", token: s.alice.token()).0 == 200)
        #expect(try await send(s.gh.base + "/api/y", token: s.alice.token(sub: "bob")).0 == 200)
        // an unknown kid while the provider is down: a refresh is tried, fails, and the known keys still work
        #expect(try await send(s.gh.base + "/api/x", token: Minter(kid: "zz", issuer: s.keys.issuer).token()).0 == 401)
        #expect(try await send(s.gh.base + "/api/x", token: s.alice.token(sub: "carol")).0 == 200)
    }

    @Test func notReadyUntilKeysAreFetched() async throws {
        let s = try await setup(prefetch: false, keysUp: false)
        defer { Task { await s.stop() } }
        let admin = "http://127.0.0.1:\(s.gh.adminPort ?? 0)/readyz"
        #expect(try await send(admin).0 == 503)
        let (status, headers, _) = try await send(s.gh.base + "/api/x", token: s.alice.token())
        #expect(status == 503 && headers.first(name: "retry-after") == "5")
        #expect(try await send(s.gh.base + "/open/x").0 == 200)
        s.keys.setUp(true)
        // a refresh may join a background fetch that began while the server was down: at most a few rounds
        var loaded = false
        for _ in 0..<3 where !loaded { loaded = await s.gh.server.keyStore?.refresh(providerID: "corp") == true }
        #expect(loaded)
        #expect(try await send(admin).0 == 200)
        #expect(try await send(s.gh.base + "/api/x", token: s.alice.token()).0 == 200)
    }
}

/// Provider endpoints over https with a private CA: trusted through `ca_file`, refused without it.
@Suite(.serialized) struct ProviderTLSTests {
    /// A throw-away CA and a server certificate for 127.0.0.1, made with openssl.
    static func makePKI(in dir: URL) throws -> (ca: String, cert: String, key: String) {
        func openssl(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TestFailure("openssl \(args.first ?? "") failed") }
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "subjectAltName=IP:127.0.0.1\n".write(to: dir.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=Gatehouse Test CA"])
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1"])
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext"])
        return (dir.appendingPathComponent("ca.pem").path, dir.appendingPathComponent("server.pem").path,
            dir.appendingPathComponent("server.key").path)
    }

    @Test func caFileIsTrustedAndRequired() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-pki-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pki = try Self.makePKI(in: dir)
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#, tls: (pki.cert, pki.key))
        let minter = Minter(kid: "tls", issuer: keys.issuer)
        keys.setKeys(Minter.jwks([minter]))
        let up = try await Upstream()
        let trusted = ProviderConfig(id: "trusted", issuer: keys.issuer, caFile: pki.ca, audiences: ["api"])
        let gh = try await Harness.start(
            routes: [RouteConfig(id: "api", pathPrefix: "/api", upstream: up.target, auth: .jwt)], providers: [trusted])
        defer { Task { await gh.stop(); await up.stop(); await keys.stop() } }
        #expect(gh.server.keyStore?.allReady == true)
        var request = HTTPClientRequest(url: gh.base + "/api/x")
        request.headers.add(name: "Authorization", value: "Bearer \(minter.token())")
        #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status == .ok)

        // The same server without ca_file: the system roots do not know the private CA, nothing is loaded.
        let untrusted = ProviderConfig(id: "untrusted", issuer: keys.issuer, audiences: ["api"])
        let gh2 = try await Harness.start(
            routes: [RouteConfig(id: "api", pathPrefix: "/api", upstream: up.target, auth: .jwt)], providers: [untrusted])
        defer { Task { await gh2.stop() } }
        #expect(gh2.server.keyStore?.allReady == false)
        #expect(gh2.log.all.contains { $0.contains("key set fetch failed") })
        var request2 = HTTPClientRequest(url: gh2.base + "/api/x")
        request2.headers.add(name: "Authorization", value: "Bearer \(minter.token())")
        #expect(try await HTTPClient.shared.execute(request2, timeout: .seconds(10)).status == .serviceUnavailable)
    }
}
