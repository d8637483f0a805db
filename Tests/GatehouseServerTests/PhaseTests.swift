import GatehouseCore
import GatehouseHTTP
import NIOCore
import Testing

@testable import GatehouseServer

/// The request phases as plain functions over a `RequestContext`, without sockets: each case is a request's
/// bytes (and a route, an identity) and the verdict the phase must give.
@Suite struct PhaseTests {
    static let upstream = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 8080, basePath: "/base")

    static func context(_ text: String) throws -> RequestContext {
        var parser = RequestHeadParser(maxBytes: 8192, maxFields: 100)
        var buffer = ByteBuffer(string: text)
        guard case .head(let head) = parser.parse(&buffer) else {
            throw PhaseTestError.unparsable(text)
        }
        return RequestContext(start: .now(), requestID: "rid-1", head: head, wantsClose: false)
    }

    enum PhaseTestError: Error {
        case unparsable(String)
        case refused(String?)
    }

    static func sanitized(_ text: String) throws -> (RequestContext, RequestValidation.Outcome) {
        let ctx = try context(text)
        switch SanitizePhase.run(ctx, maxHeaderBytes: 8192) {
        case .proceed(let outcome): return (ctx, outcome)
        case .respond(let answer): throw PhaseTestError.refused(answer.error?.reason)
        }
    }

    static func plans(_ routes: [RouteConfig]) -> (RouteTable, [RoutePlan]) {
        (
            RouteTable(routes: routes),
            routes.map { RoutePlan($0, globalIdentityHeaders: GatewayConfig.defaultIdentityHeaders) }
        )
    }

    /// What a refusing verdict answered: status, error reason, whether the connection closes.
    static func refusal<V>(_ verdict: Verdict<V>) -> (Int, String?, Bool)? {
        guard case .respond(let answer) = verdict else { return nil }
        return (answer.response.status, answer.error?.reason, answer.forceClose)
    }

    // MARK: sanitize

    @Test func sanitizeCanonicalisesThePathAndReadsFraming() throws {
        let (ctx, outcome) = try Self.sanitized(
            "POST /a/./b/../c?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        #expect(ctx.log.path == "/a/c")
        #expect(outcome.host == "example.com")
        #expect(outcome.rawHost == "Example.COM:8080")
        #expect(outcome.target.query == "x=1")
        #expect(ctx.framing == .length(5))
        #expect(ctx.wantsClose)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "bad_request"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "bad_request"),
        ("GET / HTTP/1.1\r\n\r\n", "bad_request"),
        ("GET http://other.example/x HTTP/1.1\r\nHost: a\r\n\r\n", "bad_request"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad_request"),
    ])
    func sanitizeRefusesAndCloses(request: String, reason: String) throws {
        let ctx = try Self.context(request)
        let refused = Self.refusal(SanitizePhase.run(ctx, maxHeaderBytes: 8192))
        #expect(refused?.0 == 400)
        #expect(refused?.1 == reason)
        #expect(refused?.2 == true, "framing is no longer trusted: the connection closes")
    }

    // MARK: route

    @Test func routeGivesThePlanOfTheMatchAndItsBodyLimit() throws {
        let (table, plans) = Self.plans([
            route("a", path: "/a", upstream: Self.upstream, maxBody: 10),
            route("b", path: "/", upstream: Self.upstream),
        ])
        let (ctx, outcome) = try Self.sanitized("GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n")
        guard
            case .proceed(let plan) = RoutePhase.run(
                ctx, outcome: outcome, routes: table, plans: plans, maxBodyBytes: 99)
        else {
            Issue.record("refused")
            return
        }
        #expect(plan === plans[0])
        #expect(ctx.log.routeID == "a")
        #expect(ctx.bodyLimit == 10)
        let (ctx2, outcome2) = try Self.sanitized("GET /ax HTTP/1.1\r\nHost: h\r\n\r\n")
        guard
            case .proceed(let plan2) = RoutePhase.run(
                ctx2, outcome: outcome2, routes: table, plans: plans, maxBodyBytes: 99)
        else {
            Issue.record("refused")
            return
        }
        #expect(plan2 === plans[1], "segment-aware: /ax is not under /a")
        #expect(ctx2.bodyLimit == 99)
    }

    @Test(arguments: [
        ("GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n", 404, "no_route", false),
        ("DELETE /get-only HTTP/1.1\r\nHost: h\r\n\r\n", 405, "method_not_allowed", false),
        ("GET /api/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", 400, "encoded_slash", false),
        ("GET /api/%252e%252e/admin HTTP/1.1\r\nHost: h\r\n\r\n", 400, "double_encoding", false),
        ("POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413, "body_too_large", true),
        (
            "GET /api/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            400, "bad_request", true
        ),
    ])
    func routeRefuses(request: String, status: Int, reason: String, closes: Bool) throws {
        let (table, plans) = Self.plans([
            route("api", path: "/api", upstream: Self.upstream, maxBody: 10),
            route("get-only", path: "/get-only", upstream: Self.upstream, methods: ["GET"]),
        ])
        let (ctx, outcome) = try Self.sanitized(request)
        let refused = Self.refusal(
            RoutePhase.run(ctx, outcome: outcome, routes: table, plans: plans, maxBodyBytes: 1000))
        #expect(refused?.0 == status)
        #expect(refused?.1 == reason)
        #expect(refused?.2 == closes)
    }

    @Test func routeOptInsLetEncodedPathsThrough() throws {
        var open = route("api", path: "/api", upstream: Self.upstream, encodedSlashes: true)
        open.allowDoubleEncoding = true
        let (table, plans) = Self.plans([open])
        for request in [
            "GET /api/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", "GET /api/%252e%252e/admin HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            let (ctx, outcome) = try Self.sanitized(request)
            #expect(
                Self.refusal(RoutePhase.run(ctx, outcome: outcome, routes: table, plans: plans, maxBodyBytes: 10))
                    == nil, "\(request)")
        }
    }

    // MARK: authorize

    static func identity(_ claims: [String: JSONValue]) -> Identity {
        Identity(providerID: "p", claims: .object(claims), mapping: ClaimMapping(), expiresAt: 2_000_000_000)
    }

    @Test func authorizeDeniesByDefaultAndPermitsWithTheRoutesUpstream() throws {
        var jwt = route("jwt", path: "/", upstream: Self.upstream)
        jwt.auth = .jwt
        jwt.allow = AllowRules(anyGroup: ["admins"])
        let ctx = try Self.context("GET / HTTP/1.1\r\nHost: h\r\n\r\n")

        #expect(Self.refusal(AuthorizePhase.run(ctx, route: jwt))?.1 == "no_credentials")
        ctx.auth.identity = Self.identity(["sub": .string("u"), "groups": .array([.string("users")])])
        #expect(Self.refusal(AuthorizePhase.run(ctx, route: jwt))?.0 == 403)
        #expect(ctx.permit == nil)

        ctx.auth.identity = Self.identity(["sub": .string("u"), "groups": .array([.string("admins")])])
        guard case .proceed(let permit) = AuthorizePhase.run(ctx, route: jwt) else {
            Issue.record("denied")
            return
        }
        #expect(permit.upstream == Self.upstream)
        #expect(permit.identity?.user == "u")
        #expect(ctx.identityExpiry == 2_000_000_000)
        #expect(ctx.log.user == "u")

        let none = route("none", path: "/", upstream: Self.upstream)
        let anonymous = try Self.context("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        guard case .proceed(let open) = AuthorizePhase.run(anonymous, route: none) else {
            Issue.record("denied")
            return
        }
        #expect(open.identity == nil)
    }

    // MARK: upstream request

    static func upstreamHead(
        _ text: String, route r: RouteConfig, identity: Identity?, trusted: Bool = false
    ) throws -> (String, [String]) {
        let (table, plans) = Self.plans([r])
        let (ctx, outcome) = try Self.sanitized(text)
        guard
            case .proceed(let plan) = RoutePhase.run(
                ctx, outcome: outcome, routes: table, plans: plans, maxBodyBytes: 99)
        else { throw PhaseTestError.refused("route") }
        ctx.auth.identity = identity
        guard case .proceed(let permit) = AuthorizePhase.run(ctx, route: plan.config) else {
            throw PhaseTestError.refused("authorize")
        }
        let rules = HeaderRules(
            identityHeaders: GatewayConfig.defaultIdentityHeaders,
            trustedProxies: trusted ? [CIDR.parse("127.0.0.0/8")].compactMap { $0 } : [])
        let peer = Peer(address: IPAddress("127.0.0.1"), text: "127.0.0.1", trusted: trusted, scheme: "http")
        var out = ByteBuffer()
        let refused = UpstreamRequestPhase.run(
            ctx, permit: permit, plan: plan, outcome: outcome,
            settings: .init(rules: rules, peer: peer, isOwnCookie: nil), into: &out)
        return (String(buffer: out), refused)
    }

    @Test func upstreamRequestStripsBeforeItInjects() throws {
        var jwt = route("jwt", path: "/", upstream: Self.upstream)
        jwt.auth = .jwt
        let (head, refused) = try Self.upstreamHead(
            "GET /x/../y?q=1 HTTP/1.1\r\nHost: front.example\r\nX-Forwarded-User: admin\r\nx_forwarded_user: admin\r\n"
                + "Authorization: Bearer t\r\nX-Forwarded-For: 6.6.6.6\r\nAccept: */*\r\n\r\n",
            route: jwt,
            identity: Self.identity(["sub": .string("alice"), "groups": .array([.string("users,admins")])]))
        #expect(head.hasPrefix("GET /base/y?q=1 HTTP/1.1\r\n"))
        #expect(head.contains("Accept: */*\r\n"))
        #expect(head.contains("Host: 127.0.0.1:8080\r\n"))
        #expect(head.contains("X-Forwarded-For: 127.0.0.1\r\n"), "an untrusted peer's chain is not believed")
        #expect(!head.contains("6.6.6.6"))
        #expect(head.contains("X-Forwarded-Host: front.example\r\n"))
        #expect(head.contains("X-Request-Id: rid-1\r\n"))
        #expect(head.contains("X-Forwarded-User: alice\r\n"))
        #expect(!head.lowercased().contains("x_forwarded_user"))
        #expect(!head.contains("admin\r\n"), "neither the forged user nor the smuggled group")
        #expect(!head.contains("Authorization"), "a jwt route without pass_access_token keeps the token")
        #expect(refused == ["X-Forwarded-Groups"])
        #expect(head.hasSuffix("\r\n\r\n"))
    }

    @Test func upstreamRequestBelievesATrustedPeersChainAndPassesTheTokenWhenAsked() throws {
        var jwt = route("jwt", path: "/", upstream: Self.upstream, preserveHost: true)
        jwt.auth = .jwt
        jwt.passAccessToken = true
        let (head, refused) = try Self.upstreamHead(
            "GET / HTTP/1.1\r\nHost: front.example\r\nAuthorization: Bearer t\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
            route: jwt, identity: Self.identity(["sub": .string("alice")]), trusted: true)
        #expect(head.contains("X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"))
        #expect(head.contains("Host: front.example\r\n"), "preserve_host")
        #expect(head.contains("Authorization: Bearer t\r\n"))
        #expect(refused.isEmpty)
    }
}
