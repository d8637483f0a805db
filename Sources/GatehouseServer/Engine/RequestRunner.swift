import GatehouseAuth
import GatehouseCore
import GatehouseHTTP
import Logging
import NIOCore

/// What a connection edge (HTTP/1.1 connection, HTTP/2 stream) does for the runner: the I/O.
protocol ExchangeEdge: AnyObject {
    var eventLoop: EventLoop { get }
    /// The request is still the one in flight (an asynchronous step's result for a gone request is dropped).
    func isCurrent(_ ctx: RequestContext) -> Bool
    func answer(_ ctx: RequestContext, _ answer: LocalAnswer)
    /// `100 Continue`, once the request passed every check (Gatehouse answers it; the upstream never sees Expect).
    func sendContinue(_ ctx: RequestContext)
    /// The permitted request goes to its upstream with this head.
    func forward(_ ctx: RequestContext, to upstream: UpstreamTarget, head: ByteBuffer)
}

/// Drives one request through the phases: sanitize, login endpoints, route, authenticate, authorize,
/// forward-auth, upstream request. The only place that waits (a key or session refresh, a login endpoint's
/// provider call); every phase is a plain function returning a verdict. One per connection.
final class RequestRunner {
    /// Why a request is being authenticated: what happens once it is.
    enum Purpose {
        case proxy(RoutePlan)
        case userinfo
        case forwardAuth(ForwardAuthPhase.Check)
    }

    let runtime: ProxyRuntime
    let peer: Peer
    unowned let edge: ExchangeEdge
    /// Gatehouse's cookie names, taken out of the upstream's `Cookie` (one closure per connection).
    let isOwnCookie: ((Substring) -> Bool)?

    init(runtime: ProxyRuntime, peer: Peer, edge: ExchangeEdge) {
        self.runtime = runtime
        self.peer = peer
        self.edge = edge
        self.isOwnCookie = runtime.browserLogin.map { login in { login.names.isOwn($0) } }
    }

    func start(_ ctx: RequestContext) {
        let outcome: RequestValidation.Outcome
        switch SanitizePhase.run(ctx, maxHeaderBytes: runtime.config.server.maxHeaderBytes) {
        case .proceed(let o): outcome = o
        case .respond(let answer): return respond(ctx, answer)
        }
        if let login = runtime.browserLogin, let endpoint = login.endpoint(for: outcome.target.path) {
            return loginEndpoint(endpoint, login: login, ctx, outcome: outcome)
        }
        let plan: RoutePlan
        switch RoutePhase.run(
            ctx, outcome: outcome, routes: runtime.routes, plans: runtime.routePlans,
            maxBodyBytes: runtime.config.server.maxBodyBytes)
        {
        case .proceed(let p): plan = p
        case .respond(let answer): return respond(ctx, answer)
        }
        let request = AuthRequest(
            auth: plan.config.auth, providers: plan.config.providers, requestTarget: ctx.head.target,
            method: ctx.method,
            query: outcome.target.query, forwardAuth: false)
        authenticate(ctx, request, purpose: .proxy(plan), afterRefresh: false)
    }

    // MARK: authenticate (one path; waits only for a refresh)

    private func authenticate(_ ctx: RequestContext, _ request: AuthRequest, purpose: Purpose, afterRefresh: Bool) {
        let loop = edge.eventLoop
        switch AuthenticatePhase.step(request, head: ctx.head, runtime: runtime, loop: loop, afterRefresh: afterRefresh)
        {
        case .decided(let result):
            authenticated(ctx, result, purpose: purpose)
        case .refreshKeys(let providerID):
            guard let store = runtime.authenticator?.store else {
                return authenticated(ctx, .failure(AuthFailure(error: .keysUnavailable)), purpose: purpose)
            }
            let promise = loop.makePromise(of: Bool.self)
            promise.completeWithTask { await store.refreshForUnknownKeyID(providerID: providerID) }
            promise.futureResult.assumeIsolated().whenComplete { [self] _ in
                guard self.edge.isCurrent(ctx) else { return }
                self.authenticate(ctx, request, purpose: purpose, afterRefresh: true)
            }
        case .refreshSession(let login, let record, let cookies):
            login.refresh(record, on: loop, now: login.now()).assumeIsolated().whenSuccess { [self] outcome in
                guard self.edge.isCurrent(ctx) else { return }
                let result = AuthenticatePhase.refreshed(
                    outcome, record: record, request: request, head: ctx.head, login: login, cookies: cookies)
                self.authenticated(ctx, result, purpose: purpose)
            }
        }
    }

    private func authenticated(_ ctx: RequestContext, _ result: Result<AuthResult, AuthFailure>, purpose: Purpose) {
        switch result {
        case .success(let auth):
            ctx.auth = auth
        case .failure(let failure):
            return respond(ctx, .error(failure.error, cookies: failure.cookies))
        }
        switch purpose {
        case .proxy(let plan): authorizeAndForward(ctx, plan: plan)
        case .userinfo: userinfo(ctx)
        case .forwardAuth(let check): forwardAuthDecide(ctx, check)
        }
    }

    // MARK: authorize, upstream request

    private func authorizeAndForward(_ ctx: RequestContext, plan: RoutePlan) {
        let permit: Permit
        switch AuthorizePhase.run(ctx, route: plan.config) {
        case .proceed(let p): permit = p
        case .respond(let answer): return respond(ctx, answer)
        }
        guard let outcome = ctx.outcome, let upstream = permit.upstream else { return }
        var head = ByteBuffer()
        let refused = UpstreamRequestPhase.run(
            ctx, permit: permit, plan: plan, outcome: outcome,
            settings: UpstreamRequestPhase.Settings(rules: runtime.headerRules, peer: peer, isOwnCookie: isOwnCookie),
            into: &head)
        if !refused.isEmpty { logRefusedIdentityMembers(refused, route: plan.id) }
        ctx.log.upstream = plan.upstreamLog
        ctx.decided = true
        if outcome.expectContinue { edge.sendContinue(ctx) }
        edge.forward(ctx, to: upstream, head: head)
    }

    // MARK: answers

    func respond(_ ctx: RequestContext, _ answer: LocalAnswer) {
        ctx.decided = true
        edge.answer(ctx, answer)
    }

    /// Identity members left out of a header (HeaderRules+Identity): logged by header name, never the value.
    func logRefusedIdentityMembers(_ headers: [String], route: String) {
        for name in headers {
            runtime.logger.warning(
                "identity value refused: a list separator, quote, control character or edge whitespace",
                metadata: ["header": "\(name)", "route": "\(route)"])
        }
    }

    // MARK: login endpoints

    private func loginEndpoint(
        _ endpoint: BrowserLogin.Endpoint, login: BrowserLogin, _ ctx: RequestContext,
        outcome: RequestValidation.Outcome
    ) {
        ctx.log.routeID = "login." + endpoint.rawValue
        let allowed = endpoint == .signOut ? ["GET", "HEAD", "POST"] : ["GET", "HEAD"]
        // Forward-auth checks arrive with the original request's method (Envoy ext_authz passes it through).
        guard endpoint == .auth || allowed.contains(ctx.method) else {
            return respond(ctx, .error(.methodNotAllowed(allowed: allowed)))
        }
        var request = BrowserLogin.Request(
            query: outcome.target.query, rawHost: outcome.rawHost,
            cookies: Cookies.parse(ctx.head.stringFields(named: "cookie")))
        request.scheme = peer.scheme
        if peer.trusted, let proto = ctx.head.firstValue("x-forwarded-proto")?.lowercased(),
            proto == "https" || proto == "http"
        {
            request.scheme = proto
        }
        let now = login.now()
        let endpointRequest = request
        switch endpoint {
        case .start:
            deliver(ctx) { await login.start(endpointRequest, now: now) }
        case .callback:
            deliver(ctx) { await login.callback(endpointRequest, now: now) }
        case .signOut:
            var record: SessionRecord?
            switch login.sessionState(cookies: request.cookies, now: now) {
            case .valid(let opened): record = opened.record
            case .refreshDue(let r): record = r
            case .none: record = nil
            }
            ctx.log.user = record.flatMap { $0.identity(mapping: login.mapping(for: $0.providerID)).user }
            deliver(ctx) { [record] in await login.signOut(endpointRequest, record: record) }
        case .userinfo:
            let auth = AuthRequest(
                auth: .session, providers: nil, requestTarget: ctx.head.target, method: ctx.method, query: nil,
                forwardAuth: true)
            authenticate(ctx, auth, purpose: .userinfo, afterRefresh: false)
        case .auth:
            switch ForwardAuthPhase.check(ctx, outcome: outcome, peer: peer, routes: runtime.routes) {
            case .respond(let answer):
                if answer.error?.reason == "forbidden", ctx.head.firstIndex(of: "x-forwarded-uri") != nil, !peer.trusted
                {
                    runtime.logger.warning(
                        "forward-auth: X-Forwarded-Uri from a peer outside server.trusted_proxies",
                        metadata: ["peer": "\(peer.text)"])
                }
                respond(ctx, answer)
            case .proceed(let check):
                ctx.log.routeID = "login.auth:" + check.routeID
                if check.anonymous {
                    return respond(
                        ctx, .response(HTTPErrorResponse(status: 202, headers: [], body: "", closeConnection: false)))
                }
                let auth = AuthRequest(
                    auth: check.auth, providers: check.providers, requestTarget: check.requestTarget, method: "GET",
                    query: nil, forwardAuth: true)
                authenticate(ctx, auth, purpose: .forwardAuth(check), afterRefresh: false)
            }
        }
    }

    /// Runs a login endpoint's asynchronous work off the loop and answers on it (unless the request is gone).
    private func deliver(_ ctx: RequestContext, _ work: @escaping @Sendable () async -> BrowserLogin.Answer) {
        let promise = edge.eventLoop.makePromise(of: BrowserLogin.Answer.self)
        promise.completeWithTask(work)
        promise.futureResult.assumeIsolated().whenSuccess { [self] answer in
            guard self.edge.isCurrent(ctx) else { return }
            switch answer.result {
            case .success(let response): self.respond(ctx, .response(response, cookies: answer.cookies))
            case .failure(let error): self.respond(ctx, .error(error, cookies: answer.cookies))
            }
        }
    }

    private func userinfo(_ ctx: RequestContext) {
        guard let identity = ctx.auth.identity else { return respond(ctx, .error(.noCredentials)) }
        ctx.log.user = identity.user
        let body =
            JSONValue.object([
                "provider": .string(identity.providerID), "user": identity.user.map(JSONValue.string) ?? .null,
                "email": identity.email.map(JSONValue.string) ?? .null,
                "groups": .array(identity.groups.map(JSONValue.string)),
                "preferred_username": identity.preferredUsername.map(JSONValue.string) ?? .null,
            ]).serialized + "\n"
        respond(
            ctx,
            .response(
                HTTPErrorResponse(
                    status: 200, headers: [("Cache-Control", "no-store")], body: body, closeConnection: false,
                    contentType: "application/json"), cookies: ctx.auth.cookies))
    }

    private func forwardAuthDecide(_ ctx: RequestContext, _ check: ForwardAuthPhase.Check) {
        switch ForwardAuthPhase.decide(ctx, check) {
        case .respond(let answer):
            respond(ctx, answer)
        case .proceed(let (headers, refused)):
            logRefusedIdentityMembers(refused, route: check.routeID)
            respond(
                ctx,
                .response(
                    HTTPErrorResponse(status: 202, headers: headers, body: "", closeConnection: false),
                    cookies: ctx.auth.cookies))
        }
    }
}

extension UpstreamTarget {
    /// `host:port`, as the access log shows it.
    var logDescription: String { "\(host):\(port)" }
}
