import Testing

@testable import GatehouseCore

@Suite struct ReturnURLTests {
    static let allowed = [HostPattern.parse("app.example.com"), HostPattern.parse("*.corp.example")].compactMap { $0 }

    @Test(arguments: [
        "/", "/app", "/app/page?x=1&y=2", "/a#frag", "https://gate.example.com/x", "http://gate.example.com:8080/y",
        "https://app.example.com/", "https://APP.example.com/z", "https://wiki.corp.example/page",
        "https://gate.example.com",
    ])
    func accepted(_ url: String) {
        #expect(ReturnURL.validate(url, requestHost: "gate.example.com:8080", allowedHosts: Self.allowed) == url)
    }

    @Test(arguments: [
        "//evil.com", "//evil.com/x", "/\\evil.com", "/\\/evil.com", "/\t/evil.com", "/ /evil", "\\\\evil",
        "https:evil.com", "https:/evil.com", "https://evil.com", "https://evil@gate.example.com/",
        "https://gate.example.com@evil.com/", "https://user:pw@gate.example.com/", "javascript:alert(1)",
        "JavaScript:alert(1)", "data:text/html,<script>", "ftp://gate.example.com/", "HTTPS://gate.example.com/",
        "https://corp.example/", "https://evilcorp.example/", "https://gate.example.com.evil.com/",
        "/x\r\nSet-Cookie: a=b", "/caf\u{e9}", "", "evil.com", "https://gate.example.com\\@evil.com/",
        "/\u{0}x", String(repeating: "/a", count: 2000),
    ])
    func rejected(_ url: String) {
        #expect(ReturnURL.validate(url, requestHost: "gate.example.com:8080", allowedHosts: Self.allowed) == "/")
    }

    @Test func missingIsRoot() {
        #expect(ReturnURL.validate(nil, requestHost: "x", allowedHosts: []) == "/")
    }
}

@Suite struct CookieTests {
    @Test func parsesEveryCookieHeader() {
        let pairs = Cookies.parse([
            ("Cookie", "a=1; b=\"two\"; junk; c="), ("cookie", "d=4"), ("X-Cookie", "e=5"),
        ])
        #expect(pairs.map(\.name) == ["a", "b", "c", "d"])
        #expect(pairs.map(\.value) == ["1", "two", "", "4"])
    }

    @Test func hostileCookieCountIsBounded() {
        let header = (0..<5000).map { "c\($0)=v" }.joined(separator: "; ")
        #expect(Cookies.parse([("Cookie", header)]).count == Cookies.maxPairs)
    }

    @Test func ownCookiesAreRemovedBeforeForwarding() {
        let names = SessionCookieNames(base: "_gatehouse")
        let out = Cookies.removing(
            names.isOwn,
            from: [
                ("Cookie", "app=1; _gatehouse=sealed; _gatehouse_1=more; _gatehouse_tx_abc=t; _gatehousex=keep"),
                ("Cookie", "_gatehouse_fails=2"), ("Accept", "*/*"),
            ])
        #expect(out.map(\.name) == ["Cookie", "Accept"])
        #expect(out[0].value == "app=1; _gatehousex=keep")
        // Untouched headers pass byte for byte; spacing and quotes are the client's.
        let untouched = Cookies.removing(names.isOwn, from: [("cookie", "a=1;b=\"2\" ;; c")])
        #expect(untouched.count == 1 && untouched[0].value == "a=1;b=\"2\" ;; c")
        // Trimming around names, values and quotes; an own cookie written with spaces is still found.
        let trimmed = Cookies.removing(names.isOwn, from: [("Cookie", " \t_gatehouse = x ;\tother = \"q\" ")])
        #expect(trimmed.map(\.value) == ["other = \"q\""])
        let pairs = Cookies.parse([("Cookie", " \ta = 1 ;\"b\"=\"\";=x; q=\"x\"; é=ü")])
        #expect(pairs.map(\.name) == ["a", "\"b\"", "q", "é"])
        #expect(pairs.map(\.value) == ["1", "", "x", "ü"])
    }

    @Test func ownCookieNamesAreExact() {
        let names = SessionCookieNames(base: "session")
        for own in ["session", "session_1", "session_6", "session_fails", "session_tx_abc"] { #expect(names.isOwn(Substring(own)), "\(own)") }
        for app in ["session_id", "session_7", "session_10", "sessionx", "session_tx_", "sess", "Session"] {
            #expect(!names.isOwn(Substring(app)), "\(app)")
        }
    }

    @Test func upstreamMayNotSetOurCookies() {
        let names = SessionCookieNames(base: "_gatehouse")
        let own = Cookies.ownSetCookies(
            ["app=1; Path=/", "_gatehouse=forged; Path=/", " _gatehouse_1=x", "_gatehouse_fails=999999999999999999999", "_gatehousex=1"],
            isOwn: names.isOwn)
        #expect(own == ["_gatehouse=forged; Path=/", " _gatehouse_1=x", "_gatehouse_fails=999999999999999999999"])
    }

    @Test func setCookieAttributes() {
        let c = Cookies.setCookie(name: "n", value: "v", maxAge: 60, secure: true, sameSite: .lax, domain: ".example.com")
        #expect(c == "n=v; Path=/; Domain=.example.com; Max-Age=60; Secure; HttpOnly; SameSite=Lax")
        let d = Cookies.setCookie(name: "n", value: "", maxAge: 0, secure: false, sameSite: .strict, domain: nil)
        #expect(d == "n=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict")
    }
}

@Suite struct SessionChunkTests {
    let names = SessionCookieNames(base: "_gh")

    @Test func smallValueIsOneCookie() {
        let parts = names.split("abc") ?? []
        #expect(parts.map(\.name) == ["_gh"])
        #expect(names.join(parts) == "abc")
    }

    @Test(arguments: [3801, 7600, 7601, 15000, SessionCookieNames.chunkBytes * SessionCookieNames.maxChunks - 2])
    func roundTripsInChunks(_ size: Int) {
        let value = String(repeating: "x", count: size - 1) + "y"
        let parts = names.split(value) ?? []
        #expect(parts.count == (size + SessionCookieNames.chunkBytes - 1) / SessionCookieNames.chunkBytes)
        #expect(parts.allSatisfy { $0.value.utf8.count <= SessionCookieNames.chunkBytes + 2 })
        #expect(names.join(parts) == value)
    }

    @Test func tooLargeIsRefused() {
        #expect(names.split(String(repeating: "x", count: SessionCookieNames.chunkBytes * SessionCookieNames.maxChunks + 1)) == nil)
    }

    @Test func missingChunkMeansNoSession() {
        let parts = names.split(String(repeating: "x", count: 9000)) ?? []
        #expect(names.join(parts.filter { $0.name != "_gh_1" }) == nil)
    }

    @Test(arguments: ["9.abc", "1.abc", "0.abc", "7.abc"])
    func hostileCountsAreIgnored(_ first: String) {
        let cookies = [("_gh", first)] + (1...9).map { ("_gh_\($0)", "x") }
        #expect(names.join(cookies.map { (name: $0.0, value: $0.1) }) == nil)
    }

    @Test func duplicateCookieNamesMeanNoSession() {
        // A second cookie of the same name (planted with another Path or a parent Domain) is never trusted.
        #expect(names.join([(name: "_gh", value: "a"), (name: "_gh", value: "b")]) == nil)
        let parts = names.split(String(repeating: "x", count: 9000)) ?? []
        #expect(names.join(parts + [(name: "_gh_1", value: "planted")]) == nil)
    }

    @Test func staleChunksAreListed() {
        let cookies = [("_gh", "a"), ("_gh_1", "b"), ("_gh_2", "c"), ("_gh_5", "d")].map { (name: $0.0, value: $0.1) }
        #expect(names.staleChunks(in: cookies, keep: 2) == ["_gh_2", "_gh_5"])
        #expect(names.staleChunks(in: cookies, keep: 1) == ["_gh_1", "_gh_2", "_gh_5"])
    }
}

@Suite struct SingleFlightTests {
    @Test func oneRunManyWaitersThenGraceThenAgain() {
        var flights = SingleFlight<String, Int, String>(grace: 60)
        guard case .run = flights.request("s", waiter: 1, now: 1000) else { Issue.record("first must run"); return }
        for w in 2...50 {
            guard case .wait = flights.request("s", waiter: w, now: 1000) else { Issue.record("must wait"); return }
        }
        // Another session runs on its own.
        guard case .run = flights.request("t", waiter: 99, now: 1000) else { Issue.record("other key runs"); return }
        #expect(flights.finish("s", result: "new", now: 1001) == Array(2...50))
        guard case .reuse(let r) = flights.request("s", waiter: 51, now: 1060) else { Issue.record("reuse in grace"); return }
        #expect(r == "new")
        guard case .run = flights.request("s", waiter: 52, now: 1061) else { Issue.record("after grace runs"); return }
    }

    @Test func pruneDropsOnlyExpiredResults() {
        var flights = SingleFlight<Int, Int, Int>(grace: 10, capacity: 2)
        _ = flights.request(1, waiter: 0, now: 0)
        _ = flights.finish(1, result: 1, now: 0)
        _ = flights.request(2, waiter: 0, now: 0)  // running
        _ = flights.request(3, waiter: 0, now: 20)  // at capacity: the expired result goes
        #expect(flights.count == 2)
    }
}

@Suite struct LoginPieceTests {
    @Test func formDecodingAndRepeats() throws {
        let pairs = try #require(FormEncoding.decode("code=a%2Bb&state=x+y&state=z"))
        #expect(pairs.first?.value == "a+b")
        #expect(try FormEncoding.single("code", in: pairs).get() == "a+b")
        #expect(throws: FormEncoding.RepeatedParameter(name: "state")) { try FormEncoding.single("state", in: pairs).get() }
        #expect(FormEncoding.decode("a=%zz") == nil)
        #expect(FormEncoding.decode("a=%ff") == nil)  // not UTF-8
        #expect(FormEncoding.encode([("redirect_uri", "http://h/p?x=1 2")]) == "redirect_uri=http%3A%2F%2Fh%2Fp%3Fx%3D1%202")
    }

    @Test(arguments: [
        ("GET", [("Sec-Fetch-Mode", "navigate")], true),
        ("GET", [("Sec-Fetch-Mode", "cors"), ("Accept", "text/html")], false),
        ("GET", [("Accept", "text/html,application/xhtml+xml")], true),
        ("HEAD", [("Accept", "text/html")], true),
        ("GET", [("Accept", "application/json")], false),
        ("GET", [("Accept", "text/html"), ("X-Requested-With", "XMLHttpRequest")], false),
        ("POST", [("Sec-Fetch-Mode", "navigate")], false),
        ("GET", [], false),
    ])
    func navigation(_ method: String, _ headers: [(String, String)], _ expected: Bool) {
        #expect(RequestKind.isNavigation(method: method, headers: headers.map { (name: $0.0, value: $0.1) }) == expected)
    }

    @Test func errorPageEscapesWhatItReflects() {
        let page = LoginPage.html(
            for: LoginFailure(status: 400, reason: "x", message: "<script>alert(1)</script>", hint: "a&b", retryURL: "/oauth2/start?rd=%22%3E\"><x>"))
        #expect(!page.contains("<script>"))
        #expect(page.contains("&lt;script&gt;"))
        #expect(page.contains("a&amp;b"))
        #expect(page.contains("href=\"/oauth2/start?rd=%22%3E&quot;&gt;&lt;x&gt;\""))
    }

    @Test func loginRequiredMapsToRedirectOrJSON() {
        let nav = HTTPErrorResponse.make(for: .loginRequired(loginURL: "/oauth2/start?rd=%2F", navigation: true))
        #expect(nav.status == 302)
        #expect(nav.headers.contains { $0.0 == "Location" && $0.1 == "/oauth2/start?rd=%2F" })
        let api = HTTPErrorResponse.make(for: .loginRequired(loginURL: "/oauth2/start?rd=%2F", navigation: false))
        #expect(api.status == 401)
        #expect(api.contentType == "application/json")
        #expect(api.body == "{\"error\":\"login_required\",\"login_url\":\"/oauth2/start?rd=%2F\"}\n")
        #expect(api.headers.contains { $0.0 == "WWW-Authenticate" })
    }

    @Test func sessionRecordRoundTripAndReduce() throws {
        let claims = SessionRecord.reduce(
            ["sub": .string("u"), "email": .string("e@x"), "big": .string(String(repeating: "x", count: 999)),
             "realm_access": .object(["roles": .array([.string("r")])])],
            keeping: ["email", "realm_access.roles"])
        #expect(Set(claims.keys) == ["sub", "email", "realm_access"])
        let record = SessionRecord(
            providerID: "p", sessionID: "s", claims: claims, createdAt: 10, expiresAt: 20, accessTokenExpiresAt: 15,
            accessToken: nil, refreshToken: "rt", idToken: "it")
        #expect(SessionRecord.decode(record.encoded()) == record)
        #expect(SessionRecord.decode(Array("{\"v\":2}".utf8)) == nil)
        let identity = record.identity(mapping: ClaimMapping(groups: "realm_access.roles"))
        #expect(identity.groups == ["r"])
        #expect(identity.email == "e@x")
    }

    @Test func transactionRoundTripAndLifetime() {
        let tx = LoginTransaction(state: "s", nonce: "n", codeVerifier: "v", returnURL: "/r", providerID: "p", createdAt: 1000)
        #expect(LoginTransaction.decode(tx.encoded()) == tx)
        #expect(tx.isLive(now: 1599))
        #expect(!tx.isLive(now: 1600))
    }
}
