import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseServer

/// Access tokens from a real OpenID provider (Canaille 0.3.6, started on loopback by
/// scripts/oidc/canaille_provider.py after a real code flow with PKCE), accepted end to end: discovery, JWKS,
/// signature, iss/aud/exp, groups and email in the identity headers, allow rules.
@Suite(.serialized) struct CanailleTests {
    @Test func canailleAccessTokensEndToEnd() async throws {
        let idp = try PythonService("scripts/oidc/canaille_provider.py", arguments: ["serve"])
        defer { idp.stop() }
        guard let issuer = idp.json["issuer"] as? String, let clientID = idp.json["client_id"] as? String,
            let tokens = idp.json["tokens"] as? [String: String], let alice = tokens["alice"], let bob = tokens["bob"]
        else {
            Issue.record("unexpected provider output: \(idp.json.keys)")
            return
        }
        let up = try await Upstream()
        let provider = ProviderConfig(id: "canaille", issuer: issuer, clientID: clientID)
        let gh = try await Harness.start(
            routes: [
                RouteConfig(
                    id: "staff", pathPrefix: "/staff", upstream: up.target, auth: .jwt,
                    allow: AllowRules(anyGroup: ["staff"])),
                RouteConfig(
                    id: "admin", pathPrefix: "/admin", upstream: up.target, auth: .jwt,
                    allow: AllowRules(anyGroup: ["admins"], emailDomains: ["example.com"])),
            ], providers: [provider])
        defer { Task { await gh.stop(); await up.stop() } }
        #expect(gh.server.isReady)

        func get(_ path: String, _ token: String) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: gh.base + path)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "X-Forwarded-User", value: "mallory")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        let (status, body) = try await get("/staff/page", alice)
        #expect(status == 200, "\(body)")
        let echo = try Echo.decode(body)
        #expect(echo.values("x-forwarded-user") == ["alice"])
        #expect(echo.values("x-forwarded-email") == ["alice@example.com"])
        #expect(Set((echo.values("x-forwarded-groups").first ?? "").split(separator: ",").map(String.init)) == ["staff", "admins"])
        #expect(echo.values("authorization").isEmpty)
        #expect(try await get("/admin/x", alice).0 == 200)
        #expect(try await get("/staff/x", bob).0 == 200)
        #expect(try await get("/admin/x", bob).0 == 403)  // bob is not in admins (and his domain is example.org)
        // the ID token has aud = client_id too, but a tampered access token never passes
        var tampered = Array(alice)
        tampered[tampered.count - 5] = tampered[tampered.count - 5] == "A" ? "B" : "A"
        #expect(try await get("/staff/x", String(tampered)).0 == 401)
    }
}
