import AsyncHTTPClient
import Foundation
import GatehouseAuth
import GatehouseCore
import NIOCore
import NIOHTTP1
import Testing

@testable import GatehouseServer

/// A scripted browser: a cookie jar (name -> value for one host), no automatic redirects.
final class CookieBrowser: @unchecked Sendable {
    // Used by one test task at a time (parallel requests only read `jar` via `cookieHeader()` before they start).
    var jar: [String: String] = [:]
    let client: HTTPClient

    init() {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(30)))
        configuration.connectionPool.idleTimeout = .seconds(5)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async { try? await client.shutdown() }

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var location: String? { headers.first(name: "location") }
        var setCookies: [String] { headers["set-cookie"] }
    }

    func cookieHeader() -> String? {
        jar.isEmpty ? nil : jar.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
    }

    /// Sends a request with the jar's cookies; stores Set-Cookie answers in the jar when `store` is true.
    func get(
        _ url: String, headers: [(String, String)] = [("Accept", "text/html")], cookie: String? = nil, store: Bool = true,
        method: HTTPMethod = .GET
    ) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if let c = cookie ?? cookieHeader() { request.headers.add(name: "Cookie", value: c) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        let r = Response(status: Int(response.status.code), headers: response.headers, body: body)
        if store { apply(r.setCookies) }
        return r
    }

    func apply(_ setCookies: [String]) {
        for line in setCookies {
            let pair = line.split(separator: ";", maxSplits: 1).first ?? ""
            guard let eq = pair.firstIndex(of: "=") else { continue }
            let name = String(pair[..<eq])
            let value = String(pair[pair.index(after: eq)...])
            if line.contains("Max-Age=0") { jar[name] = nil } else { jar[name] = value }
        }
    }
}

func queryItems(_ url: String) -> [String: String] {
    var out: [String: String] = [:]
    for item in URLComponents(string: url)?.queryItems ?? [] { out[item.name] = item.value ?? "" }
    return out
}

/// Browser login end to end against a real OpenID provider (Canaille, started on loopback by
/// scripts/oidc/canaille_provider.py): authorization code + PKCE + nonce, ID token validation, userinfo,
/// sealed cookie sessions, identity headers at the upstream, refresh single flight (counted at the provider),
/// forward-auth, sign-out with RP-initiated logout, replayed and forged callbacks, open redirects.
@Suite(.serialized) struct BrowserLoginTests {
    static let secret = [UInt8](repeating: 7, count: 32)

    struct Setup {
        let idp: PythonService
        let up: Upstream
        let gh: Harness
        let issuer: String
        let login: BrowserLogin
    }

    static func start(tokenLifetime: Int = 3600, routes extra: (UpstreamTarget) -> [RouteConfig] = { _ in [] }) async throws -> Setup {
        let idp = try PythonService(
            "scripts/oidc/canaille_provider.py",
            arguments: ["serve", "--token-lifetime", String(tokenLifetime), "--post-logout-redirect-uri", "http://127.0.0.1/after-logout"])
        guard let issuer = idp.json["issuer"] as? String, let clientID = idp.json["client_id"] as? String,
            let clientSecret = idp.json["client_secret"] as? String
        else { throw TestFailure("unexpected provider output: \(idp.json.keys)") }
        let up = try await Upstream()
        let provider = ProviderConfig(
            id: "canaille", issuer: issuer, clientID: clientID, clientSecret: clientSecret,
            scopes: ["openid", "email", "profile", "groups"])
        let partners = ProviderConfig(
            id: "partners", issuer: issuer, clientID: clientID, clientSecret: clientSecret, scopes: ["openid", "email"])
        let routes = extra(up.target) + [
            RouteConfig(id: "partners", pathPrefix: "/partners", upstream: up.target, auth: .session, providers: ["partners"]),
            RouteConfig(id: "admin", pathPrefix: "/admin", upstream: up.target, auth: .session, allow: AllowRules(anyGroup: ["admins"])),
            RouteConfig(id: "app", pathPrefix: "/", upstream: up.target, auth: .session),
        ]
        let gh = try await Harness.start(
            routes: routes, providers: [provider, partners],
            server: { $0.trustedProxies = [CIDR.parse("127.0.0.1/32")].compactMap { $0 } },
            session: SessionConfig(secrets: [secret], secure: false))
        let callback = "\(gh.base)/oauth2/callback"
        let registered = try idp.command(["cmd": "register_redirect_uri", "uri": callback, "post_logout_uris": ["\(gh.base)/bye"]])
        guard registered["ok"] as? Bool == true else { throw TestFailure("cannot register \(callback): \(registered)") }
        guard let login = gh.server.runtime.browserLogin else { throw TestFailure("no browser login") }
        return Setup(idp: idp, up: up, gh: gh, issuer: issuer, login: login)
    }

    /// Logs `user` in through Gatehouse: /start, the provider's real login and consent pages (driven by the
    /// provider script), then the callback. Returns the callback's response.
    static func logIn(_ browser: CookieBrowser, _ s: Setup, user: String = "alice", rd: String = "/app/page") async throws -> CookieBrowser.Response {
        let start = try await browser.get("\(s.gh.base)/oauth2/start?rd=\(FormEncoding.escape(rd))")
        guard start.status == 302, let authorize = start.location else { throw TestFailure("start: \(start.status) \(start.body)") }
        let answer = try s.idp.command(["cmd": "login", "user": user, "authorize_url": authorize])
        guard answer["ok"] as? Bool == true, let callback = answer["location"] as? String else { throw TestFailure("idp login: \(answer)") }
        return try await browser.get(callback)
    }

    /// Runs `body` with a fresh provider, upstream and Gatehouse, and stops them afterwards (also on failure).
    static func withSetup(_ body: (Setup, CookieBrowser) async throws -> Void) async throws {
        let s = try await start()
        let browser = CookieBrowser()
        func cleanup() async {
            s.idp.stop()
            await browser.shutdown()
            await s.gh.stop()
            await s.up.stop()
        }
        do {
            try await body(s, browser)
        } catch {
            await cleanup()
            throw error
        }
        await cleanup()
    }

    @Test func loginSessionRefreshSignOut() async throws {
        try await Self.withSetup { s, browser in try await loginSessionRefreshSignOut(s, browser) }
    }

    func loginSessionRefreshSignOut(_ s: Setup, _ browser: CookieBrowser) async throws {
        let base = s.gh.base

        // 1. Not signed in: a navigation is redirected to the login, an API call gets 401 JSON with the URL.
        let nav = try await browser.get("\(base)/app/page?x=1", headers: [("Sec-Fetch-Mode", "navigate")])
        #expect(nav.status == 302)
        #expect(nav.location == "/oauth2/start?rd=%2Fapp%2Fpage%3Fx%3D1")
        let api = try await browser.get("\(base)/app/data", headers: [("Accept", "application/json")])
        #expect(api.status == 401)
        #expect(api.body.contains("\"login_url\":\"/oauth2/start?rd=%2Fapp%2Fdata\""))
        #expect(api.headers.first(name: "www-authenticate")?.hasPrefix("Bearer") == true)

        // 2. /start: PKCE S256, state, nonce, our client and callback; a transaction cookie.
        let start = try await browser.get("\(base)/oauth2/start?rd=%2Fapp%2Fpage")
        #expect(start.status == 302)
        let authorize = try #require(start.location)
        #expect(authorize.hasPrefix(s.issuer))
        let q = queryItems(authorize)
        #expect(q["response_type"] == "code")
        #expect(q["client_id"] == "gatehouse")
        #expect(q["redirect_uri"] == "\(base)/oauth2/callback")
        #expect(q["code_challenge_method"] == "S256")
        #expect((q["code_challenge"] ?? "").count == 43)
        #expect((q["state"] ?? "").count >= 22)
        #expect((q["nonce"] ?? "").count >= 22)
        #expect(q["scope"] == "openid email profile groups")
        let txCookies = browser.jar.keys.filter { $0.hasPrefix("_gatehouse_tx_") }
        #expect(txCookies.count == 1)
        #expect(start.setCookies.allSatisfy { $0.contains("HttpOnly") && $0.contains("SameSite=Lax") })

        // 3. The provider logs alice in; its redirect comes back to our callback.
        let answer = try s.idp.command(["cmd": "login", "user": "alice", "authorize_url": authorize])
        let callbackURL = try #require(answer["location"] as? String)
        #expect(callbackURL.hasPrefix("\(base)/oauth2/callback?"))

        // A forged state fails cleanly (HTML page, no session), and does not consume the real transaction.
        var forged = try #require(URLComponents(string: callbackURL))
        let items = forged.queryItems ?? []
        forged.queryItems = items.map { $0.name == "state" ? URLQueryItem(name: "state", value: "forged") : $0 }
        let forgedAnswer = try await browser.get(try #require(forged.url?.absoluteString), store: false)
        #expect(forgedAnswer.status == 400)
        #expect(forgedAnswer.headers.first(name: "content-type") == "text/html; charset=utf-8")
        #expect(forgedAnswer.body.contains("Sign-in failed"))
        // A response naming another issuer (RFC 9207 iss) is a mix-up attempt.
        var mixed = try #require(URLComponents(string: callbackURL))
        #expect(mixed.queryItems?.contains { $0.name == "iss" && $0.value == s.issuer } == true)
        mixed.queryItems = (mixed.queryItems ?? []).map { $0.name == "iss" ? URLQueryItem(name: "iss", value: "https://evil.example") : $0 }
        let mixUp = try await browser.get(try #require(mixed.url?.absoluteString), store: false)
        #expect(mixUp.status == 400)
        #expect(mixUp.body.contains("another identity provider"))
        #expect(mixUp.headers.first(name: "referrer-policy") == "no-referrer")
        // Duplicate state parameters are refused.
        let duplicated = try await browser.get(callbackURL + "&state=again", store: false)
        #expect(duplicated.status == 400)
        #expect(duplicated.body.contains("repeats the parameter state"))

        let txJar = browser.jar
        let callback = try await browser.get(callbackURL)
        #expect(callback.status == 302, "\(callback.body) \(s.gh.log.all.filter { !$0.contains("gatehouse.access") }.suffix(5))")
        #expect(callback.location == "/app/page")
        #expect(browser.jar["_gatehouse"] != nil)
        #expect(browser.jar.keys.filter { $0.hasPrefix("_gatehouse_tx_") }.isEmpty)  // consumed

        // 4. The session reaches the upstream as identity headers; spoofed headers and our cookies never do.
        let page = try await browser.get(
            "\(base)/app/page", headers: [("Accept", "text/html"), ("X-Forwarded-User", "mallory"), ("X_Forwarded_Email", "m@evil")],
            cookie: (browser.cookieHeader() ?? "") + "; app_pref=dark")
        #expect(page.status == 200, "\(page.body)")
        let echo = try Echo.decode(page.body)
        #expect(echo.values("x-forwarded-user") == ["alice"])
        #expect(echo.values("x-forwarded-email") == ["alice@example.com"])
        #expect(Set((echo.values("x-forwarded-groups").first ?? "").split(separator: ",").map(String.init)) == ["staff", "admins"])
        #expect(echo.values("x_forwarded_email").isEmpty)
        #expect(echo.values("cookie") == ["app_pref=dark"])
        #expect(try await browser.get("\(base)/admin/x").status == 200)

        // A session from another provider than a route accepts is no session there: its login names the route's.
        let other = try await browser.get("\(base)/partners/x", headers: [("Accept", "application/json")])
        #expect(other.status == 401)
        #expect(other.body.contains("provider=partners"))

        // 5. A replayed callback (with the transaction cookie put back) fails: consumed once.
        let replay = try await browser.get(callbackURL, cookie: txJar.map { "\($0.key)=\($0.value)" }.joined(separator: "; "), store: false)
        #expect(replay.status == 400)
        #expect(replay.body.contains("already used"))

        // 6. userinfo and forward-auth.
        let info = try await browser.get("\(base)/oauth2/userinfo", headers: [])
        #expect(info.status == 200)
        #expect(info.body.contains("\"email\":\"alice@example.com\""))
        #expect(try await browser.get("\(base)/oauth2/userinfo", headers: [], cookie: "x=1").status == 401)
        let auth = try await browser.get("\(base)/oauth2/auth", headers: [("X-Forwarded-Host", "127.0.0.1"), ("X-Forwarded-Uri", "/admin/panel")])
        #expect(auth.status == 202)
        #expect(auth.headers.first(name: "x-auth-request-user") == "alice")
        #expect(auth.headers.first(name: "x-auth-request-email") == "alice@example.com")
        #expect(try await browser.get("\(base)/oauth2/auth?allowed_groups=nobody", headers: []).status == 403)
        #expect(try await browser.get("\(base)/oauth2/auth", headers: [], cookie: "none=1").status == 401)

        // 7. The access token expires: many parallel requests with the same old cookie cause ONE refresh grant
        //    at the provider, and all of them pass with a new cookie.
        let before = try s.idp.command(["cmd": "stats"])
        let refreshesBefore = (before["token_requests"] as? [String: Int])?["refresh_token"] ?? 0
        s.login.clockOffset.store(7200, ordering: .relaxed)
        let oldCookie = browser.cookieHeader()
        let results = try await withThrowingTaskGroup(of: CookieBrowser.Response.self) { group in
            for i in 0..<8 {
                group.addTask { try await browser.get("\(base)/app/p\(i)", cookie: oldCookie, store: false) }
            }
            var all: [CookieBrowser.Response] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.map(\.status) == Array(repeating: 200, count: 8))
        #expect(results.allSatisfy { $0.setCookies.contains { $0.hasPrefix("_gatehouse=") } })
        // A late request with the old cookie, within the grace period, reuses the result.
        let late = try await browser.get("\(base)/app/late", cookie: oldCookie, store: false)
        #expect(late.status == 200)
        #expect(late.setCookies.contains { $0.hasPrefix("_gatehouse=") })
        let after = try s.idp.command(["cmd": "stats"])
        #expect((after["token_requests"] as? [String: Int])?["refresh_token"] == refreshesBefore + 1)
        browser.apply(late.setCookies)
        s.login.clockOffset.store(0, ordering: .relaxed)
        #expect(try await browser.get("\(base)/app/after-refresh").status == 200)

        // 8. A tampered cookie is no session: login again, and the bad cookie is cleared.
        var bad = browser.jar
        bad["_gatehouse"] = String((bad["_gatehouse"] ?? "").dropLast(2)) + "AA"
        let tampered = try await browser.get("\(base)/app/x", cookie: bad.map { "\($0.key)=\($0.value)" }.joined(separator: "; "), store: false)
        #expect(tampered.status == 302)
        #expect(tampered.setCookies.contains { $0.hasPrefix("_gatehouse=;") && $0.contains("Max-Age=0") })

        // 9. Sign-out clears every Gatehouse cookie and goes to the provider's end_session_endpoint.
        let out = try await browser.get("\(base)/oauth2/sign_out?rd=%2Fbye")
        #expect(out.status == 302)
        let endSession = try #require(out.location)
        #expect(endSession.hasPrefix(s.issuer))
        let eq = queryItems(endSession)
        #expect(eq["id_token_hint"]?.split(separator: ".").count == 3)
        #expect(eq["client_id"] == "gatehouse")
        #expect(eq["post_logout_redirect_uri"] == "\(base)/bye")
        #expect(browser.jar["_gatehouse"] == nil)
        #expect(try await browser.get("\(base)/app/x").status == 302)
    }

    @Test func openRedirectsFallBackAndFailedRefreshEndsTheSession() async throws {
        try await Self.withSetup { s, browser in try await openRedirectsAndEndedSessions(s, browser) }
    }

    func openRedirectsAndEndedSessions(_ s: Setup, _ browser: CookieBrowser) async throws {
        // Each hostile return URL ends up at "/" after a real login.
        for rd in [
            "//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "https://alice@127.0.0.1.evil.example/",
            "/./oauth2/sign_out", "/%6Fauth2/start", "/x/../oauth2/callback",
        ] {
            browser.jar = [:]
            let callback = try await Self.logIn(browser, s, rd: rd)
            #expect(callback.status == 302)
            #expect(callback.location == "/", "rd \(rd)")
        }
        // Two logins in parallel tabs: both transactions live side by side and both complete.
        browser.jar = [:]
        let tab1 = try await browser.get("\(s.gh.base)/oauth2/start?rd=%2Fone")
        let tab2 = try await browser.get("\(s.gh.base)/oauth2/start?rd=%2Ftwo")
        #expect(browser.jar.keys.filter { $0.hasPrefix("_gatehouse_tx_") }.count == 2)
        let cb1 = try s.idp.command(["cmd": "login", "user": "bob", "authorize_url": try #require(tab1.location)])
        let cb2 = try s.idp.command(["cmd": "login", "user": "bob", "authorize_url": try #require(tab2.location)])
        #expect(try await browser.get(try #require(cb2["location"] as? String)).location == "/two")
        #expect(try await browser.get(try #require(cb1["location"] as? String)).location == "/one")
        // bob is not an admin.
        #expect(try await browser.get("\(s.gh.base)/admin/x").status == 403)

        // A session whose refresh token the provider refuses (invalid_grant) ends: navigation -> login, API -> 401.
        let sealer = CookieSealer(secrets: [Self.secret])
        let now = s.login.now()
        let record = SessionRecord(
            providerID: "canaille", sessionID: "test", claims: ["sub": .string("bob")], createdAt: now - 100,
            expiresAt: now + 3600, accessTokenExpiresAt: now - 1, refreshToken: "not-a-valid-refresh-token")
        let sealed = try #require(sealer.seal(record.encoded(), purpose: .session))
        let ended = try await browser.get("\(s.gh.base)/app/x", headers: [("Sec-Fetch-Mode", "navigate")], cookie: "_gatehouse=\(sealed)", store: false)
        #expect(ended.status == 302)
        #expect(ended.location?.hasPrefix("/oauth2/start") == true)
        #expect(ended.setCookies.contains { $0.hasPrefix("_gatehouse=;") })
        let endedAPI = try await browser.get("\(s.gh.base)/app/x", headers: [("Accept", "application/json")], cookie: "_gatehouse=\(sealed)", store: false)
        #expect(endedAPI.status == 401)

        // A large session (hundreds of groups) travels in several chunk cookies and is reassembled; a missing
        // chunk is no session.
        let groups = (0..<400).map { JSONValue.string("group-with-a-long-name-\($0)") } + [.string("staff")]
        let big = SessionRecord(
            providerID: "canaille", sessionID: "big", claims: ["sub": .string("carol"), "groups": .array(groups)],
            createdAt: now - 10, expiresAt: now + 3600, accessTokenExpiresAt: now + 3600)
        let bigSealed = try #require(sealer.seal(big.encoded(), purpose: .session))
        let chunks = try #require(s.login.names.split(bigSealed))
        #expect(chunks.count >= 3)
        let chunkHeader = chunks.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
        let chunked = try await browser.get("\(s.gh.base)/app/big", cookie: chunkHeader, store: false)
        #expect(chunked.status == 200)
        #expect(try Echo.decode(chunked.body).values("x-forwarded-user") == ["carol"])
        #expect(try Echo.decode(chunked.body).values("cookie").isEmpty)
        let missing = chunks.dropLast().map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
        #expect(try await browser.get("\(s.gh.base)/app/big", cookie: missing, store: false).status == 302)

        // The callback without its transaction cookie explains the cookie problem; after 3 failures /start stops.
        browser.jar = [:]
        for _ in 0..<3 {
            let r = try await browser.get("\(s.gh.base)/oauth2/callback?code=x&state=unknown")
            #expect(r.status == 400)
            #expect(r.body.contains("did not send back the cookie"))
        }
        // A hostile failure counter does not crash anything (it is clamped).
        let huge = try await browser.get("\(s.gh.base)/oauth2/callback?code=x&state=y", cookie: "_gatehouse_fails=9223372036854775807", store: false)
        #expect(huge.status == 400)
        #expect(try await browser.get("\(s.gh.base)/oauth2/start", cookie: "_gatehouse_fails=-9223372036854775808", store: false).status == 302)
        let loop = try await browser.get("\(s.gh.base)/oauth2/start?rd=%2F")
        #expect(loop.status == 409)
        #expect(loop.body.contains("login loop"))
        let retry = try await browser.get("\(s.gh.base)/oauth2/start?retry=1&rd=%2F")
        #expect(retry.status == 302)

        // The provider's own error comes back as a clean page (escaped, never reflected as markup).
        let denied = try await browser.get("\(s.gh.base)/oauth2/callback?error=access_denied&error_description=%3Cscript%3E&state=x")
        #expect(denied.status == 403)
        #expect(denied.body.contains("(access_denied)"))
        #expect(!denied.body.contains("<script>"))

        // Bearer JWTs are accepted on session routes exactly as on jwt routes (an API client, no cookie).
        let tokens = s.idp.json["tokens"] as? [String: String]
        let bearer = try await browser.get(
            "\(s.gh.base)/app/api", headers: [("Authorization", "Bearer \(tokens?["alice"] ?? "")"), ("Accept", "application/json")],
            cookie: "x=1", store: false)
        #expect(bearer.status == 200)
        #expect(try Echo.decode(bearer.body).values("x-forwarded-user") == ["alice"])

        // A transient provider failure (the provider is gone) keeps a session whose access token expired, until
        // its hard expiry: the request passes with the identity it had.
        browser.jar = [:]
        _ = try await Self.logIn(browser, s, user: "bob", rd: "/")
        s.idp.stop()
        s.login.clockOffset.store(7200, ordering: .relaxed)
        let kept = try await browser.get("\(s.gh.base)/app/while-idp-down", store: false)
        #expect(kept.status == 200)
        #expect(try Echo.decode(kept.body).values("x-forwarded-user") == ["bob"])
        #expect(!kept.setCookies.contains { $0.hasPrefix("_gatehouse=") })
        // ... but not beyond session.lifetime (12 h).
        s.login.clockOffset.store(13 * 3600, ordering: .relaxed)
        #expect(try await browser.get("\(s.gh.base)/app/too-late", store: false).status == 302)
    }

    /// A real browser (headless Chromium driven by Selenium, scripts/browser/login.py) opens a protected page on
    /// `localhost` (another site than the provider on 127.0.0.1, so the login's cookies must survive a
    /// cross-site redirect back), signs in on the provider's real login page and lands on the upstream page
    /// that shows the identity headers. Screenshots of the provider's login page and of the final page are
    /// saved in test-artifacts/browser-login/.
    @Test func realBrowserLogsIn() async throws {
        try await Self.withSetup { s, _ in
            let base = "http://localhost:\(s.gh.port)"
            let registered = try s.idp.command(["cmd": "register_redirect_uri", "uri": "\(base)/oauth2/callback"])
            #expect(registered["ok"] as? Bool == true)
            let artifacts = PythonTools.repoRoot.appendingPathComponent("test-artifacts/browser-login")
            try? FileManager.default.removeItem(at: artifacts)
            try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
            let users = s.idp.json["users"] as? [String: [String: Any]]
            let password = try #require(users?["alice"]?["password"] as? String)
            let output = try PythonTools.run(
                "scripts/browser/login.py",
                ["--start-url", "\(base)/app/dashboard?tab=1", "--user", "alice", "--password", password, "--screenshots", artifacts.path,
                 "--timeout", "30"],
                timeout: 120)
            let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            #expect(result["ok"] as? Bool == true, "\(result)")
            #expect(result["final_url"] as? String == "\(base)/app/dashboard?tab=1")
            let text = result["body_text"] as? String ?? ""
            // The upstream echoes the request it got: the identity headers Gatehouse injected.
            #expect(text.contains("\"X-Forwarded-User\",\"alice\""), "\(text.prefix(600))")
            #expect(text.contains("\"X-Forwarded-Email\",\"alice@example.com\""))
            #expect(!text.contains("_gatehouse"))  // Gatehouse's cookies never reach the upstream
            let cookies = result["cookies"] as? [String] ?? []
            #expect(cookies.contains("_gatehouse"))
            for shot in ["idp-login.png", "final-page.png"] {
                let size = (try? FileManager.default.attributesOfItem(atPath: artifacts.appendingPathComponent(shot).path)[.size] as? Int) ?? 0
                #expect(size > 1000, "\(shot) missing or empty")
            }
        }
    }
}
