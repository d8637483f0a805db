import GatehouseCore
import Logging
import Synchronization
import Testing

@testable import GatehouseAuth

@Suite struct PolicyTests {
    func identity(_ json: String) -> Identity {
        let claims = (try? JSONValue.parse(Array(json.utf8))) ?? .null
        return Identity(providerID: "corp", claims: claims, mapping: ClaimMapping(groups: "realm_access.roles"), expiresAt: now + 60)
    }

    let alice = #"{"sub":"alice","email":"Alice@Example.com","realm_access":{"roles":["staff","admins"]},"scp":["orders.read"],"tenant":"acme","tags":["a","b"],"level":3}"#

    func decide(_ allow: AllowRules, _ json: String? = nil) -> String {
        let route = RouteConfig(
            id: "r", upstream: UpstreamTarget(scheme: .http, host: "x", port: 1), auth: .jwt, allow: allow)
        switch AccessPolicy.decide(route: route, identity: identity(json ?? alice)) {
        case .permit: return "permit"
        case .deny(.forbidden(let why, let scope)): return scope ? "scope:\(why)" : why
        case .deny(let other): return "\(other)"
        }
    }

    @Test func rules() {
        #expect(decide(AllowRules()) == "permit")
        #expect(decide(AllowRules(anyGroup: ["admins", "x"])) == "permit")
        #expect(decide(AllowRules(anyGroup: ["x"])) == "not in any allowed group")
        #expect(decide(AllowRules(allGroups: ["staff", "admins"])) == "permit")
        #expect(decide(AllowRules(allGroups: ["staff", "x"])) == "not in every required group")
        #expect(decide(AllowRules(emails: ["alice@example.com"])) == "permit")
        #expect(decide(AllowRules(emailDomains: ["EXAMPLE.com"])) == "permit")
        #expect(decide(AllowRules(emailDomains: ["ample.com"])) == "email not allowed")
        #expect(decide(AllowRules(emailDomains: ["example.com"]), #"{"email":"a@b@example.com"}"#) == "no valid email")
        #expect(decide(AllowRules(emailDomains: ["example.com"]), #"{"email":"evil@example.com.evil.org"}"#) == "email not allowed")
        #expect(decide(AllowRules(scopes: ["orders.read"])) == "permit")
        #expect(decide(AllowRules(scopes: ["orders.read", "orders.write"])) == "scope:missing required scope")
        #expect(decide(AllowRules(claims: ["tenant": "acme", "tags": "b", "level": "3"])) == "permit")
        #expect(decide(AllowRules(claims: ["tenant": "other"])) == "required claim value not present")
        #expect(decide(AllowRules(claims: ["level": "3.0"])) == "permit")
        #expect(decide(AllowRules(claims: ["level": "4"])) == "required claim value not present")
        #expect(decide(AllowRules(claims: ["level": "0x3"])) == "required claim value not present")
        #expect(decide(AllowRules(emailDomains: ["example.com"]), #"{"email":"a@example.com","email_verified":false}"#) == "no valid email")
        #expect(decide(AllowRules(emailDomains: ["example.com"]), #"{"email":"a@example.com","email_verified":true}"#) == "permit")
        #expect(decide(AllowRules(claims: ["missing": "x"])) == "required claim missing")
        let none = RouteConfig(id: "r", upstream: UpstreamTarget(scheme: .http, host: "x", port: 1), auth: .jwt)
        guard case .deny(.noCredentials) = AccessPolicy.decide(route: none, identity: nil) else {
            Issue.record("a jwt route without identity must deny")
            return
        }
    }

    @Test func identityHeaderValues() {
        let id = identity(alice)
        let (fields, dropped) = HeaderRules.identityHeaderFields(
            GatewayConfig.defaultIdentityHeaders + [IdentityHeader(name: "X-Tenant", claim: "tenant"), IdentityHeader(name: "X-Missing", claim: "nope"), IdentityHeader(name: "X-Level", claim: "level")],
            identity: id)
        #expect(fields.map { "\($0.0)=\($0.1)" } == [
            "X-Forwarded-User=alice", "X-Forwarded-Email=Alice@Example.com", "X-Forwarded-Groups=staff,admins",
            "X-Tenant=acme", "X-Level=3",
        ])
        #expect(dropped.isEmpty)
        let evil = identity(#"{"sub":"a\r\nX-Injected: 1"}"#)
        let (f2, d2) = HeaderRules.identityHeaderFields(GatewayConfig.defaultIdentityHeaders, identity: evil)
        #expect(f2.isEmpty)
        #expect(d2 == ["X-Forwarded-User"])
    }

    @Test func secretsAreNeverPrinted() {
        let p = ProviderConfig(id: "x", issuer: "https://i", clientSecret: "s3cr3t-value", sharedSecret: Array("hmac-secret-bytes".utf8))
        let config = GatewayConfig(server: ServerConfig(), providers: [p], identityHeaders: [], routes: [])
        for text in [String(describing: p), String(reflecting: p), String(describing: config), String(reflecting: config)] {
            #expect(!text.contains("s3cr3t") && !text.contains("104, 109, 97, 99"), "\(text)")
        }
    }

    @Test func bearerExtraction() throws {
        func extract(_ headers: [(String, String)], query: String? = nil) -> String {
            do {
                return try BearerCredentials.extract(headers: headers.map { (name: $0.0, value: $0.1) }, query: query) ?? "nil"
            } catch {
                return "\(error)"
            }
        }
        #expect(extract([("Authorization", "Bearer abc.def.ghi")]) == "abc.def.ghi")
        #expect(extract([("authorization", "bEaReR   abc")]) == "abc")
        #expect(extract([]) == "nil")
        #expect(extract([("Authorization", "Bearer a"), ("Authorization", "Bearer b")]).contains("more than one"))
        #expect(extract([("Authorization", "Basic dTpw")]) == "nil")
        #expect(extract([("Authorization", "Bearer a b")]).contains("malformed bearer token"))
        // A token outside the b64token alphabet is found here and refused by the authenticator (see
        // `authenticatorRefusesMalformedTokens`).
        #expect(extract([("Authorization", "Bearer a\"b")]) == "a\"b")
        #expect(!BearerCredentials.isWellFormed("a\"b"))
        #expect(!BearerCredentials.isWellFormed(""))
        #expect(BearerCredentials.isWellFormed("abc.DEF-_~+/="))
        #expect(extract([], query: "x=1&access_token=abc").contains("query string"))
        #expect(extract([("Authorization", "Bearer " + String(repeating: "a", count: 17 * 1024))]).contains("too large"))
        // The scheme: exactly "bearer" (any case) and a space; anything else is another scheme.
        #expect(extract([("Authorization", "\tBEARER x.y.z  ")]) == "x.y.z")
        #expect(extract([("Authorization", "Bearer ")]).contains("malformed bearer token"))
        #expect(extract([("Authorization", "Bearerx abc")]) == "nil")
        #expect(extract([("Authorization", "Bearer\tabc")]) == "nil")
        #expect(extract([("Authorization", "Bea")]) == "nil")
        #expect(extract([("Authorization", "B\u{E9}arer abc")]) == "nil")
        // Every byte: the b64token alphabet of RFC 6750 §2.1 and nothing else.
        let alphabet = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=".utf8)
        for b in 0...255 {
            #expect(BearerCredentials.isB64TokenByte(UInt8(b)) == alphabet.contains(UInt8(b)), "byte \(b)")
        }
        // Query parameters named access_token in any case or with `_` escaped; other names and values pass.
        #expect(extract([], query: "ACCESS_TOKEN=abc").contains("query string"))
        #expect(extract([], query: "a=1&Access%5Ftoken=abc").contains("query string"))
        #expect(extract([], query: "access_token").contains("query string"))
        #expect(extract([], query: "&&access_token=&") .contains("query string"))
        #expect(extract([], query: "x=access_token&access_tokens=1&my_access_token=2&") == "nil")
        #expect(extract([], query: "") == "nil")
    }
}

/// A key source whose fetches block until released, counting them.
final class ControlledSource: KeySource {
    let fetches = Mutex(0)
    let body: Mutex<[UInt8]>
    let fail = Mutex(false)
    let gate: AsyncStream<Void>
    let open: AsyncStream<Void>.Continuation

    init(jwks: String) {
        body = Mutex(Array(jwks.utf8))
        (gate, open) = AsyncStream<Void>.makeStream()
    }

    func fetchKeySet(for provider: ProviderConfig) async throws -> (bytes: [UInt8], maxAge: GatehouseCore.Duration?) {
        fetches.withLock { $0 += 1 }
        var it = gate.makeAsyncIterator()
        _ = await it.next()
        if fail.withLock({ $0 }) { throw CancellationError() }
        return (body.withLock { $0 }, nil)
    }
}

@Suite struct KeyStoreTests {
    @Test func unknownKidStormCausesOneFetch() async {
        let source = ControlledSource(jwks: TestKeys.shared.jwks)
        let store = KeyStore(providers: [provider()], source: source, logger: Logger(label: "t"))
        #expect(!store.allReady)
        let results = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for _ in 0..<1000 { group.addTask { await store.refreshForUnknownKeyID(providerID: "corp") } }
            // release the one fetch once all callers are queued behind it
            while source.fetches.withLock({ $0 }) == 0 { await Task.yield() }
            source.open.yield()
            var out: [Bool] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(source.fetches.withLock { $0 } == 1)
        #expect(store.fetchCount(for: "corp") == 1)
        #expect(store.allReady)
        #expect(results.filter { $0 }.count >= 1)
        // inside the interval another unknown kid triggers nothing
        #expect(await store.refreshForUnknownKeyID(providerID: "corp") == false)
        #expect(source.fetches.withLock { $0 } == 1)
    }

    @Test func failedOrEmptyFetchKeepsLastGoodKeys() async {
        let source = ControlledSource(jwks: TestKeys.shared.jwks)
        let store = KeyStore(providers: [provider()], source: source, logger: Logger(label: "t"))
        source.open.yield()
        #expect(await store.refresh(providerID: "corp"))
        let generation = store.generation(for: "corp")
        source.fail.withLock { $0 = true }
        source.open.yield()
        #expect(await store.refresh(providerID: "corp") == false)
        #expect(store.generation(for: "corp") == generation)
        source.fail.withLock { $0 = false }
        source.body.withLock { $0 = Array(#"{"keys":[{"kty":"XYZ"}]}"#.utf8) }
        source.open.yield()
        #expect(await store.refresh(providerID: "corp") == false)
        #expect(store.keys(for: "corp")?.keys.count == 5)
    }

    /// An authenticator over one provider whose key set has been fetched, a cache of 4 and a valid ES256 token.
    func loadedAuthenticator() async -> (BearerAuthenticator, VerifiedTokenCache, String, ControlledSource, KeyStore) {
        let source = ControlledSource(jwks: TestKeys.shared.jwks)
        let store = KeyStore(providers: [provider()], source: source, logger: Logger(label: "t"))
        source.open.yield()
        _ = await store.refresh(providerID: "corp")
        let token = TestKeys.shared.token(alg: "ES256", kid: "p256", claims: claims())
        return (BearerAuthenticator(store: store), VerifiedTokenCache(capacity: 4), token, source, store)
    }

    /// A token that is not one b64token is refused before any parsing or key lookup, whatever follows it; a
    /// valid token with one byte swapped for a non-alphabet byte is refused the same way (never a cache hit).
    @Test func authenticatorRefusesMalformedTokens() async {
        let (auth, cache, token, _, _) = await loadedAuthenticator()
        guard case .verified = auth.authenticate(token: token, allowed: nil, cache: cache, now: now) else {
            Issue.record("the valid token did not verify")
            return
        }
        for bad in [token + "\"", "\u{7F}" + token, String(token.map { $0 == "." ? "," : $0 })] {
            guard case .rejected("malformed bearer token") = auth.authenticate(token: bad, allowed: nil, cache: cache, now: now)
            else {
                Issue.record("a malformed token was not refused as malformed")
                return
            }
        }
    }

    /// Two generations of capacity/2: a full current generation becomes the previous one; an entry used from the
    /// previous generation is carried forward and survives the next rotation, an unused one does not.
    @Test func verifiedTokenCacheGenerations() {
        let cache = VerifiedTokenCache(capacity: 4)
        func key(_ n: UInt64) -> VerifiedTokenCache.Key { .init(a: n, b: 0, c: 0, d: 0) }
        let identity = Identity(providerID: "corp", claims: .object([:]), mapping: ClaimMapping(), expiresAt: now + 60)
        func hit(_ n: UInt64) -> Bool { cache.lookup(key(n), now: now, currentGeneration: { _ in 7 }) != nil }
        cache.insert(key(1), identity: identity, generation: 7, now: now)
        cache.insert(key(2), identity: identity, generation: 7, now: now)
        cache.insert(key(3), identity: identity, generation: 7, now: now)  // rotation: {1, 2} are the previous
        #expect(cache.count == 3)
        #expect(hit(1))  // carried forward: current {3, 1}
        cache.insert(key(4), identity: identity, generation: 7, now: now)  // rotation: previous {3, 1}, current {4}
        #expect(cache.count <= 4)
        #expect(!hit(2))
        #expect(hit(1) && hit(3) && hit(4))
        // a stale key-set generation or an expired entry is never served
        #expect(cache.lookup(key(4), now: now, currentGeneration: { _ in 8 }) == nil)
        #expect(cache.lookup(key(3), now: now + 61, currentGeneration: { _ in 7 }) == nil)
    }

    @Test func verifiedTokenCacheHitsAndInvalidation() async {
        let (auth, cache, token, source, store) = await loadedAuthenticator()
        guard case .verified(_, let g1) = auth.authenticate(token: token, allowed: nil, cache: cache, now: now) else {
            Issue.record("first verification failed")
            return
        }
        #expect(g1 != 0)
        #expect(cache.count == 1)
        // a hit reports generation 0 (no signature check happened)
        guard case .verified(_, 0) = auth.authenticate(token: token, allowed: nil, cache: cache, now: now) else {
            Issue.record("expected a cache hit")
            return
        }
        // the route does not accept this provider: not served from the cache
        guard case .rejected = auth.authenticate(token: token, allowed: ["other"], cache: cache, now: now) else {
            Issue.record("expected rejection for a route without this provider")
            return
        }
        // after expiry the entry is gone and the token is rejected
        guard case .rejected("token expired") = auth.authenticate(token: token, allowed: nil, cache: cache, now: now + 10_000) else {
            Issue.record("expected expiry")
            return
        }
        // a key-set refresh invalidates entries verified with the previous set
        _ = auth.authenticate(token: token, allowed: nil, cache: cache, now: now)
        source.open.yield()
        _ = await store.refresh(providerID: "corp")
        guard case .verified(_, let g2) = auth.authenticate(token: token, allowed: nil, cache: cache, now: now) else {
            Issue.record("re-verification failed")
            return
        }
        #expect(g2 != 0 && g2 != g1)
        // bounded
        for i in 0..<10 {
            let t = TestKeys.shared.token(alg: "ES256", kid: "p256", claims: claims(extra: #","n":\#(i)"#))
            _ = auth.authenticate(token: t, allowed: nil, cache: cache, now: now)
        }
        #expect(cache.count <= 4)
    }
}
