import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1
import Testing

@testable import GatehouseServer

/// Tokens and keys made by an independent JOSE implementation (joserfc, through scripts/jwt/mint.py), served
/// by a real key server, checked by Gatehouse end to end.
@Suite(.serialized) struct InteropTests {
    func get(_ url: String, token: String) async throws -> (Int, String, String) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.first(name: "www-authenticate") ?? "", String(buffer: body))
    }

    @Test func joserfcTokensForEveryAlgorithm() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-interop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let jwks = try PythonTools.run("scripts/jwt/mint.py", ["keys", "--out", dir.path])
        let secretFile = dir.appendingPathComponent("hmac.key")
        let secret = Array((0..<48).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try Data(secret).write(to: secretFile)
        let keys = try await KeyServer(jwks: jwks)
        let up = try await Upstream()
        let provider = ProviderConfig(
            id: "corp", issuer: keys.issuer, audiences: ["api"],
            algorithms: JWTAlgorithm.asymmetric.union([.hs256]), sharedSecret: secret)
        let gh = try await Harness.start(
            routes: [RouteConfig(id: "api", pathPrefix: "/api", upstream: up.target, auth: .jwt)], providers: [provider])
        defer { Task { await gh.stop(); await up.stop(); await keys.stop() } }
        let private_ = dir.appendingPathComponent("private.json").path
        let now = Int(Date().timeIntervalSince1970)
        func claims(_ sub: String, exp: Int? = nil, aud: String = "api", iss: String? = nil) -> String {
            #"{"iss":"\#(iss ?? keys.issuer)","aud":"\#(aud)","sub":"\#(sub)","email":"\#(sub)@example.com","exp":\#(exp ?? now + 600),"iat":\#(now)}"#
        }
        for (alg, kid) in [("RS256", "rs256"), ("PS256", "ps256"), ("ES256", "es256"), ("ES384", "es384"),
            ("ES512", "es512"), ("EdDSA", "eddsa")]
        {
            let token = try PythonTools.mint(keys: private_, kid: kid, claims: claims("user-\(kid)"))
            let (status, _, body) = try await get(gh.base + "/api/\(kid)", token: token)
            #expect(status == 200, "\(alg): \(body)")
            #expect(try Echo.decode(body).values("x-forwarded-user") == ["user-\(kid)"], "\(alg)")
        }
        // HS256 with the provider's shared secret
        let hs = try PythonTools.run(
            "scripts/jwt/mint.py", ["sign-hs", "--secret-file", secretFile.path, "--claims", claims("hmac-user")])
        #expect(try await get(gh.base + "/api/hs", token: hs).0 == 200)

        // Refusals, each with its reason
        func refused(_ token: String, _ reason: String, _ what: String) async throws {
            let (status, challenge, _) = try await get(gh.base + "/api/x", token: token)
            #expect(status == 401, "\(what)")
            #expect(challenge.contains(reason), "\(what): \(challenge)")
        }
        try await refused(
            try PythonTools.mint(keys: private_, kid: "es256", claims: claims("a", exp: now - 3600)), "token expired", "expired")
        try await refused(
            try PythonTools.mint(keys: private_, kid: "es256", claims: claims("a", aud: "other")), "audience not accepted", "aud")
        try await refused(
            try PythonTools.mint(keys: private_, kid: "es256", claims: claims("a", iss: "https://evil.example")),
            "untrusted issuer", "iss")
        // The JWK says alg RS256: a PS256 signature by the very same key is refused (the JWK's alg pins it).
        try await refused(
            try PythonTools.mint(keys: private_, kid: "rs256", alg: "PS256", claims: claims("a")),
            "algorithm does not match the key", "alg pinned by the JWK")
        // jku / x5u / crit headers
        try await refused(
            try PythonTools.mint(
                keys: private_, kid: "es256", claims: claims("a"), header: #"{"crit":["urn:x"],"urn:x":1}"#),
            "unsupported critical header", "crit")
        let withJku = try PythonTools.mint(
            keys: private_, kid: "es256", claims: claims("jku-user"),
            header: #"{"jku":"http://127.0.0.1:1/evil","x5u":"http://127.0.0.1:1/evil"}"#)
        // a jku/x5u never changes where keys come from: signed by the real key it verifies, and no fetch happens
        let fetches = keys.jwksFetches
        #expect(try await get(gh.base + "/api/x", token: withJku).0 == 200)
        #expect(keys.jwksFetches == fetches)
        // a token signed by another key set's key with a kid of ours
        let otherDir = dir.appendingPathComponent("other")
        _ = try PythonTools.run("scripts/jwt/mint.py", ["keys", "--out", otherDir.path])
        try await refused(
            try PythonTools.mint(keys: otherDir.appendingPathComponent("private.json").path, kid: "es256", claims: claims("a")),
            "invalid signature", "foreign key, same kid")
        // HS256 signed with the RSA public key's JWK text as the secret (key confusion)
        let confusionSecret = dir.appendingPathComponent("confusion.key")
        try Data(jwks.utf8).write(to: confusionSecret)
        try await refused(
            try PythonTools.run(
                "scripts/jwt/mint.py",
                ["sign-hs", "--secret-file", confusionSecret.path, "--kid", "rs256", "--claims", claims("a")]),
            "invalid signature", "RS256 to HS256 confusion")
    }
}
