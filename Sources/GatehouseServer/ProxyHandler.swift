import GatehouseAuth
import GatehouseCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The imperative shell of one client connection: it runs the pure phases (sanitize, route, authorize, build
/// the upstream request) on each request head and then streams the exchange between the client and a pooled
/// upstream connection on the same event loop, with backpressure both ways.
///
/// Requests are handled one at a time: a pipelined request that arrives while one is in flight is queued here
/// and reads from the client stop until it is served (unlike `HTTPServerPipelineHandler`, which stops reading
/// after every request and so costs two epoll_ctl calls per keep-alive request; a client that does not pipeline,
/// nearly every client, is never throttled). Reads from the client are held while the upstream is not writable
/// or not yet connected; reads from the upstream are held while the client is not writable. Nothing buffers a
/// whole body.
final class ProxyHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request/response exchange.
    final class Exchange {
        let start: NIODeadline
        let requestID: String
        let method: String
        let version: HTTPVersion
        var path: String
        var routeID = "-"
        var upstreamDescription = "-"
        var wantsClose: Bool
        var requestComplete = false
        var bodyBytes: Int64 = 0
        var bodyLimit: Int64 = .max
        var hasBody = false
        var target: UpstreamTarget?
        var upstreamHead: HTTPRequestHead?
        var upstream: Channel?
        var upstreamHandler: UpstreamHandler?
        var reusedConnection = false
        var retried = false
        /// Parts received from the client before the upstream connection was ready.
        var buffered: [HTTPServerRequestPart] = []
        var responseStarted = false
        var responseComplete = false
        var status = 0
        var responseBytes: Int64 = 0
        var upstreamReusable = true
        var closeAfterResponse = false
        var responseTimer: Scheduled<Void>?
        /// Bounds a stalled body in either direction: checked against `lastActivity`, re-armed lazily so that
        /// progress costs one timestamp, not one timer, per chunk.
        var activityTimer: Scheduled<Void>?
        var lastClientActivity: NIODeadline = .now()
        var lastUpstreamActivity: NIODeadline = .now()
        var error: String?
        /// A constant phrase saying why a request was denied (never request data).
        var detail: String?
        /// Gatehouse answered this request itself; the rest of its body is read and discarded.
        var answeredLocally = false
        var user: String?
        /// Set-Cookie values added to the response (a refreshed or cleared session).
        var responseCookies: [String] = []
        /// A WebSocket upgrade on a `websocket: true` route: a fresh upstream connection, and a tunnel after 101.
        var upgrade = false
        /// The exchange became a byte tunnel (the upstream answered 101).
        var tunneled = false
        /// When the identity that opened the exchange expires (token `exp`, session end): a tunnel closes then.
        var identityExpiry: Int64?
        var tunnelTimer: Scheduled<Void>?
        var lastTunnelActivity: NIODeadline = .now()

        init(start: NIODeadline, requestID: String, method: String, version: HTTPVersion, path: String, wantsClose: Bool) {
            self.start = start
            self.requestID = requestID
            self.method = method
            self.version = version
            self.path = path
            self.wantsClose = wantsClose
        }
    }

    let runtime: ProxyRuntime
    let timeouts: ConnectionTimeoutHandler
    private var context: ChannelHandlerContext?
    private var peer: IPAddress?
    private var peerText = "-"
    private var peerTrusted = false
    private var exchange: Exchange?
    private var pendingRead = false
    /// Set once the connection must not carry further requests.
    private var closing = false
    /// Parts of pipelined requests that arrived while an exchange was in flight, served in order after it. Bounded
    /// by what one read cycle delivers: reading stops while anything waits here.
    private var pipelined: CircularBuffer<HTTPServerRequestPart> = CircularBuffer(initialCapacity: 0)
    /// A decoder error that followed pipelined requests, handled once they are served.
    private var pipelinedError: Error?
    private var draining = false

    /// `http` or `https`: how the client reached this listener (X-Forwarded-Proto, the login's redirect URI).
    let scheme: String

    init(runtime: ProxyRuntime, timeouts: ConnectionTimeoutHandler, scheme: String = "http") {
        self.runtime = runtime
        self.timeouts = timeouts
        self.scheme = scheme
    }

    /// Closes connections after an answer without resetting them (absent on HTTP/2 streams).
    private var linger: LingeringCloseHandler?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        linger = try? context.pipeline.syncOperations.handler(type: LingeringCloseHandler.self)
        if let ip = context.channel.remoteAddress?.ipAddress {
            peerText = ip
            peer = IPAddress(ip)
            peerTrusted = runtime.headerRules.isTrusted(peer)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: client -> proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !pipelined.isEmpty || (exchange != nil && part.isHead) {
            // The next request, while this one is in flight: it waits (none once the connection is closing).
            if !closing { pipelined.append(part) }
            return
        }
        dispatch(part, context: context)
    }

    private func dispatch(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            timeouts.headReceived()
            receivedHead(head, context: context)
        case .body(let buffer):
            receivedBody(buffer, context: context)
        case .end:
            receivedEnd(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamHandler?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // A pipelined request waits: nothing more is read until it has been served.
        if !pipelined.isEmpty || pipelinedError != nil {
            pendingRead = true
            return
        }
        // While a request body is being forwarded, read from the client only when the upstream can take more.
        if let e = exchange, !e.requestComplete, !e.answeredLocally {
            guard let upstream = e.upstream, upstream.isWritable else {
                pendingRead = true
                return
            }
        }
        context.read()
    }

    private func resumeClientReads() {
        guard pendingRead, let context else { return }
        pendingRead = false
        read(context: context)  // re-checks what held the read
    }

    /// Serves queued pipelined parts once the exchange before them is done, in order, until the next request is
    /// in flight; then the deferred decoder error, if any; then reading resumes. Not re-entered: a queued
    /// request answered at once is followed by the next one from this loop, not from a nested call.
    private func servePipelined(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while let next = pipelined.first {
            if closing {
                pipelined.removeAll()
                return
            }
            if next.isHead && exchange != nil { return }
            pipelined.removeFirst()
            dispatch(next, context: context)
        }
        if let error = pipelinedError, exchange == nil {
            pipelinedError = nil
            handleError(error, context: context)
            return
        }
        resumeClientReads()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.upstreamHandler?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.responseTimer?.cancel()
            exchange.activityTimer?.cancel()
            exchange.tunnelTimer?.cancel()

            if let upstream = exchange.upstream {
                exchange.upstreamHandler?.delegate = nil
                upstream.close(promise: nil)
            }
            if exchange.status == 0 { exchange.status = 499 }
            if !exchange.tunneled { exchange.error = exchange.error ?? "client_closed" }  // a tunnel ends by closing
            log(exchange)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A parse error after a complete request (pipelined garbage): the request before it is answered first.
        if error is HTTPParserError, !pipelined.isEmpty || (exchange?.requestComplete ?? false) {
            if pipelinedError == nil { pipelinedError = error }
            return
        }
        handleError(error, context: context)
    }

    private func handleError(_ error: Error, context: ChannelHandlerContext) {
        // Already answered and closing (e.g. the EOF after a 408 mid-body): nothing more to say.
        if closing {
            context.close(promise: nil)
            return
        }
        // Parse errors from the HTTP decoder. Answer with a precise status when nothing was sent yet.
        let mapped: GatehouseError
        switch error {
        case HTTPParserError.headerOverflow: mapped = .headerTooLarge
        case let e as HTTPParserError: mapped = .badRequest("malformed HTTP request (\(e))")
        default:
            context.close(promise: nil)
            return
        }
        if let exchange {
            if exchange.responseStarted {
                context.close(promise: nil)
                return
            }
            // A framing error mid-body: fail the exchange.
            abortUpstream(exchange)
            respondLocally(mapped, exchange: exchange, context: context, forceClose: true)
            return
        }
        let e = Exchange(
            start: .now(), requestID: makeRequestID(), method: "-", version: .http1_1, path: "-", wantsClose: true)
        exchange = e
        respondLocally(mapped, exchange: e, context: context, forceClose: true)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: an idle connection closes now; a busy one after its response, which says
            // `Connection: close`. Queued pipelined requests are not served (the client may retry them).
            closing = true
            pipelined.removeAll()
            pipelinedError = nil
            if exchange == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: phases

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let requestID =
            head.headers.first(name: "x-request-id").flatMap { HeaderRules.acceptableRequestID($0) ? $0 : nil }
            ?? makeRequestID()
        let e = Exchange(
            start: .now(), requestID: requestID, method: head.method.rawValue, version: head.version,
            path: "-", wantsClose: !head.isKeepAlive)
        exchange = e
        if closing {
            respondLocally(.shuttingDown, exchange: e, context: context, forceClose: true)
            return
        }
        // 2. sanitize (one array of the fields, shared by every pure phase of this request)
        let fields: HeaderFields = head.headers.map { (name: $0.name, value: $0.value) }
        let outcome: RequestValidation.Outcome
        do {
            outcome = try RequestValidation.validate(
                head: .init(
                    method: head.method.rawValue, target: head.uri, versionMajor: head.version.major,
                    versionMinor: head.version.minor),
                headers: fields, maxHeaderBytes: runtime.config.server.maxHeaderBytes)
        } catch {
            respondLocally(error, exchange: e, context: context, forceClose: true)
            return
        }
        e.path = outcome.target.path
        e.wantsClose = e.wantsClose || outcome.wantsClose
        e.hasBody = outcome.chunked || (outcome.contentLength ?? 0) > 0
        // 3. login endpoints (under login.path_prefix), then routes
        if let login = runtime.browserLogin, let endpoint = login.endpoint(for: outcome.target.path) {
            handleLoginEndpoint(endpoint, login: login, exchange: e, head: head, fields: fields, outcome: outcome, context: context)
            return
        }
        let route: RouteConfig
        switch runtime.routes.match(host: outcome.host, path: outcome.target.path, method: head.method.rawValue) {
        case .route(let index):
            route = runtime.routes.routes[index]
        case .methodNotAllowed(let allowed):
            respondLocally(.methodNotAllowed(allowed: allowed), exchange: e, context: context, forceClose: e.hasBody)
            return
        case .notFound:
            respondLocally(.notFound, exchange: e, context: context, forceClose: e.hasBody)
            return
        }
        e.routeID = route.id
        if outcome.target.hasEncodedSlash && !route.allowEncodedSlashes {
            respondLocally(.encodedSlashNotAllowed, exchange: e, context: context, forceClose: e.hasBody)
            return
        }
        if outcome.target.hasDoubleEncoding && !route.allowDoubleEncoding {
            respondLocally(.doubleEncodingNotAllowed, exchange: e, context: context, forceClose: e.hasBody)
            return
        }
        // Upgrades. After a request asking to switch protocols the HTTP/1.1 decoder stops, so the connection
        // ends with this exchange whatever happens. WebSocket upgrades pass only on `websocket: true` routes.
        if head.version.major == 1, WebSocketUpgrade.asksToUpgrade(fields) {
            e.wantsClose = true
            let upgradeValues = fields.filter { $0.name.lowercased() == "upgrade" }.map { $0.value.lowercased() }
            if upgradeValues.contains(where: { $0.contains("websocket") }) {
                guard route.websocket else {
                    respondLocally(.badRequest("WebSocket upgrades are not enabled on this route"), exchange: e, context: context, forceClose: true)
                    return
                }
                if let problem = WebSocketUpgrade.problem(method: head.method.rawValue, versionMinor: head.version.minor, headers: fields) {
                    respondLocally(.badRequest(problem), exchange: e, context: context, forceClose: true)
                    return
                }
                e.upgrade = true
            }
        }
        e.bodyLimit = route.maxBodyBytes ?? runtime.config.server.maxBodyBytes
        if let length = outcome.contentLength, length > e.bodyLimit {
            respondLocally(.bodyTooLarge(limit: e.bodyLimit), exchange: e, context: context, forceClose: true)
            return
        }
        authenticateAndForward(e, head: head, fields: fields, outcome: outcome, route: route, context: context)
    }

    /// What authentication established: the identity (nil on `auth: none`), Set-Cookie values for the response
    /// (a refreshed session) and the session's access token (for `pass_access_token`).
    struct AuthResult {
        var identity: Identity?
        var cookies: [String] = []
        var sessionAccessToken: String?
        var bearerToken: String?
    }

    struct AuthFailure: Error {
        var error: GatehouseError
        var cookies: [String] = []
    }

    /// What authentication decided without waiting, or what it must wait for.
    private enum AuthStep {
        case decided(Result<AuthResult, AuthFailure>)
        /// A token with an unknown `kid`: the provider's key set is refreshed (single flight), then the token
        /// is checked once more.
        case refreshKeys(providerID: String)
        /// A session whose access token expired: refreshed (single flight) before the request goes on.
        case refreshSession(BrowserLogin, SessionRecord, cookies: [(name: String, value: String)])
    }

    /// Phase 5, authenticate: a bearer JWT (jwt and session routes), else the session cookie (session routes).
    /// Synchronous: a cached token, a signature check or a valid session cookie decide at once (no closure,
    /// no allocation for the continuation); only a key or session refresh has to wait.
    private func authenticateNow(
        fields: HeaderFields, query: String?, requestTarget: String, method: String, auth: AuthMode,
        providers: [String]?, forwardAuth: Bool, context: ChannelHandlerContext, afterRefresh: Bool
    ) -> AuthStep {
        if auth == .none { return .decided(.success(AuthResult())) }
        let token: String?
        do {
            token = try BearerCredentials.extract(headers: fields, query: query)
        } catch {
            return .decided(.failure(AuthFailure(error: error)))
        }
        guard let token else {
            guard auth == .session, let login = runtime.browserLogin else {
                return .decided(.failure(AuthFailure(error: .noCredentials)))
            }
            return sessionStep(
                login: login, fields: fields, requestTarget: requestTarget, method: method, providers: providers,
                forwardAuth: forwardAuth, context: context)
        }
        guard let authenticator = runtime.authenticator, let cache = runtime.tokenCaches.value(for: context.eventLoop)
        else {
            return .decided(.failure(AuthFailure(error: .keysUnavailable)))
        }
        switch authenticator.authenticate(token: token, allowed: providers, cache: cache, now: epochSeconds()) {
        case .verified(let verified, _):
            return .decided(.success(AuthResult(identity: verified, bearerToken: token)))
        case .rejected(let why):
            return .decided(.failure(AuthFailure(error: .invalidToken(why))))
        case .keysUnavailable:
            return .decided(.failure(AuthFailure(error: .keysUnavailable)))
        case .unknownKeyID(let providerID):
            if afterRefresh { return .decided(.failure(AuthFailure(error: .invalidToken("unknown key id")))) }
            return .refreshKeys(providerID: providerID)
        }
    }

    /// Authenticates and calls `done` exactly once: synchronously when `authenticateNow` decides, else after the
    /// refresh; an asynchronous completion is dropped when the exchange is gone. `forwardAuth` answers a
    /// missing session with 401 instead of a login redirect.
    private func authenticate(
        _ e: Exchange, fields: HeaderFields, query: String?, requestTarget: String, method: String, auth: AuthMode,
        providers: [String]?, forwardAuth: Bool, context: ChannelHandlerContext, afterRefresh: Bool,
        done: @escaping (Result<AuthResult, AuthFailure>) -> Void
    ) {
        let step = authenticateNow(
            fields: fields, query: query, requestTarget: requestTarget, method: method, auth: auth,
            providers: providers, forwardAuth: forwardAuth, context: context, afterRefresh: afterRefresh)
        resume(
            step, e, fields: fields, query: query, requestTarget: requestTarget, method: method, auth: auth,
            providers: providers, forwardAuth: forwardAuth, context: context, done: done)
    }

    /// Carries out an `AuthStep`: passes a decision on, or waits for the refresh it asks for.
    private func resume(
        _ step: AuthStep, _ e: Exchange, fields: HeaderFields, query: String?, requestTarget: String, method: String,
        auth: AuthMode, providers: [String]?, forwardAuth: Bool, context: ChannelHandlerContext,
        done: @escaping (Result<AuthResult, AuthFailure>) -> Void
    ) {
        switch step {
        case .decided(let result):
            done(result)
        case .refreshKeys(let providerID):
            guard let store = runtime.authenticator?.store else {
                done(.failure(AuthFailure(error: .keysUnavailable)))
                return
            }
            let promise = context.eventLoop.makePromise(of: Bool.self)
            promise.completeWithTask { await store.refreshForUnknownKeyID(providerID: providerID) }
            promise.futureResult.assumeIsolated().whenComplete { [self] _ in
                guard let current = self.exchange, current === e, let context = self.context else { return }
                self.authenticate(
                    e, fields: fields, query: query, requestTarget: requestTarget, method: method, auth: auth,
                    providers: providers, forwardAuth: forwardAuth, context: context, afterRefresh: true, done: done)
            }
        case .refreshSession(let login, let record, let cookies):
            login.refresh(record, on: context.eventLoop, now: login.now()).assumeIsolated().whenSuccess { [self] outcome in
                guard let current = self.exchange, current === e else { return }
                switch outcome {
                case .refreshed(let updated, let sealed):
                    let setCookies = login.sessionCookies(sealed: sealed, record: updated, request: cookies, now: login.now()) ?? []
                    done(.success(AuthResult(
                        identity: updated.identity(mapping: login.mapping(for: updated.providerID)), cookies: setCookies,
                        sessionAccessToken: updated.accessToken)))
                case .transient:
                    done(.success(AuthResult(identity: record.identity(mapping: login.mapping(for: record.providerID)), sessionAccessToken: record.accessToken)))
                case .ended:
                    let error = self.loginRequired(
                        login: login, fields: fields, requestTarget: requestTarget, method: method, providers: providers,
                        forwardAuth: forwardAuth)
                    done(.failure(AuthFailure(error: error, cookies: login.clearingCookies(request: cookies))))
                }
            }
        }
    }

    /// No session: a navigation goes to the login, anything else gets 401 (forward-auth always 401).
    private func loginRequired(
        login: BrowserLogin, fields: HeaderFields, requestTarget: String, method: String, providers: [String]?,
        forwardAuth: Bool
    ) -> GatehouseError {
        if forwardAuth { return .noCredentials }
        return .loginRequired(
            loginURL: login.loginURL(returnTo: requestTarget, providers: providers),
            navigation: RequestKind.isNavigation(method: method, headers: fields))
    }

    private func sessionStep(
        login: BrowserLogin, fields: HeaderFields, requestTarget: String, method: String, providers: [String]?,
        forwardAuth: Bool, context: ChannelHandlerContext
    ) -> AuthStep {
        let cookies = Cookies.parse(fields)
        let now = login.now()
        var state = login.sessionState(cookies: cookies, now: now, cache: runtime.sessionCaches.value(for: context.eventLoop))
        switch state {
        case .valid(let record), .refreshDue(let record):
            // A session from a provider this route does not accept is no session here (a login with the
            // route's provider replaces it).
            if let providers, !providers.contains(record.providerID) { state = .none(hadCookie: false) }
        case .none: break
        }
        switch state {
        case .valid(let record):
            return .decided(.success(AuthResult(
                identity: record.identity(mapping: login.mapping(for: record.providerID)), sessionAccessToken: record.accessToken)))
        case .none(let hadCookie):
            let error = loginRequired(
                login: login, fields: fields, requestTarget: requestTarget, method: method, providers: providers,
                forwardAuth: forwardAuth)
            return .decided(.failure(AuthFailure(error: error, cookies: hadCookie ? login.clearingCookies(request: cookies) : [])))
        case .refreshDue(let record):
            return .refreshSession(login, record, cookies: cookies)
        }
    }

    /// Phases 5-8: authenticate, authorize, build the upstream request, forward.
    private func authenticateAndForward(
        _ e: Exchange, head: HTTPRequestHead, fields: HeaderFields, outcome: RequestValidation.Outcome,
        route: RouteConfig, context: ChannelHandlerContext
    ) {
        let step = authenticateNow(
            fields: fields, query: outcome.target.query, requestTarget: head.uri, method: head.method.rawValue,
            auth: route.auth, providers: route.providers, forwardAuth: false, context: context, afterRefresh: false)
        if case .decided(let result) = step {
            // The common case (no auth, a cached or freshly verified token, a valid session): no continuation.
            guard let auth = authenticated(result, e, context: context) else { return }
            authorizeAndForward(e, auth: auth, head: head, fields: fields, outcome: outcome, route: route, context: context)
            return
        }
        resume(
            step, e, fields: fields, query: outcome.target.query, requestTarget: head.uri, method: head.method.rawValue,
            auth: route.auth, providers: route.providers, forwardAuth: false, context: context
        ) { [self] result in
            guard let context = self.context, let auth = self.authenticated(result, e, context: context) else { return }
            self.authorizeAndForward(e, auth: auth, head: head, fields: fields, outcome: outcome, route: route, context: context)
        }
    }

    /// The authentication result, or nil once its failure has been answered.
    private func authenticated(
        _ result: Result<AuthResult, AuthFailure>, _ e: Exchange, context: ChannelHandlerContext
    ) -> AuthResult? {
        switch result {
        case .success(let auth): return auth
        case .failure(let failure):
            respondLocally(failure.error, exchange: e, context: context, forceClose: e.hasBody, cookies: failure.cookies)
            return nil
        }
    }

    /// Phases 6-8 for an authenticated (or `auth: none`) request.
    private func authorizeAndForward(
        _ e: Exchange, auth: AuthResult, head: HTTPRequestHead, fields: HeaderFields,
        outcome: RequestValidation.Outcome, route: RouteConfig, context: ChannelHandlerContext
    ) {
        // 6. authorize
        let permit: Permit
        switch AccessPolicy.decide(route: route, identity: auth.identity) {
        case .permit(let p): permit = p
        case .deny(let error):
            e.user = auth.identity?.user
            respondLocally(error, exchange: e, context: context, forceClose: e.hasBody, cookies: auth.cookies)
            return
        }
        e.user = permit.identity?.user
        e.identityExpiry = permit.identity?.expiresAt
        e.responseCookies = auth.cookies
        // 7. upstream request (requires the permit)
        let upstreamHead = buildUpstreamHead(
            head, fields: fields, outcome: outcome, route: route, permit: permit, requestID: e.requestID,
            sessionAccessToken: auth.sessionAccessToken, upgrade: e.upgrade)
        e.target = route.upstream
        e.upstreamDescription = "\(route.upstream.host):\(route.upstream.port)"
        e.upstreamHead = upstreamHead
        if outcome.expectContinue {
            // Gatehouse answers 100-continue itself once the request passed every check (as nginx does);
            // the upstream never sees Expect.
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        // 8. forward (a request with a body may stall: watch it)
        if !e.requestComplete && e.hasBody { armActivity(e, context: context) }
        acquireUpstream(for: e, context: context)
    }

    // MARK: login endpoints

    private func handleLoginEndpoint(
        _ endpoint: BrowserLogin.Endpoint, login: BrowserLogin, exchange e: Exchange, head: HTTPRequestHead,
        fields: HeaderFields, outcome: RequestValidation.Outcome, context: ChannelHandlerContext
    ) {
        e.routeID = "login." + endpoint.rawValue
        let method = head.method.rawValue
        let allowed = endpoint == .signOut ? ["GET", "HEAD", "POST"] : ["GET", "HEAD"]
        // Forward-auth checks arrive with the original request's method (Envoy ext_authz passes it through).
        guard endpoint == .auth || allowed.contains(method) else {
            respondLocally(.methodNotAllowed(allowed: allowed), exchange: e, context: context, forceClose: e.hasBody)
            return
        }
        var request = BrowserLogin.Request(query: outcome.target.query, rawHost: outcome.rawHost, cookies: Cookies.parse(fields))
        request.scheme = scheme
        if peerTrusted, let proto = fields.first(where: { $0.name.lowercased() == "x-forwarded-proto" })?.value.lowercased(),
            proto == "https" || proto == "http"
        {
            request.scheme = proto
        }
        let now = login.now()
        let endpointRequest = request
        switch endpoint {
        case .start:
            deliver(e, context: context) { await login.start(endpointRequest, now: now) }
        case .callback:
            deliver(e, context: context) { await login.callback(endpointRequest, now: now) }
        case .signOut:
            var record: SessionRecord?
            switch login.sessionState(cookies: request.cookies, now: now) {
            case .valid(let r), .refreshDue(let r): record = r
            case .none: record = nil
            }
            e.user = record.flatMap { $0.identity(mapping: login.mapping(for: $0.providerID)).user }
            deliver(e, context: context) { [record] in await login.signOut(endpointRequest, record: record) }
        case .userinfo:
            authenticate(
                e, fields: fields, query: nil, requestTarget: head.uri, method: method, auth: .session, providers: nil,
                forwardAuth: true, context: context, afterRefresh: false
            ) { [self] result in
                guard let context = self.context, let auth = self.authenticated(result, e, context: context) else { return }
                guard let identity = auth.identity else {
                    self.respondLocally(.noCredentials, exchange: e, context: context, forceClose: e.hasBody)
                    return
                }
                e.user = identity.user
                let body = JSONValue.object([
                    "provider": .string(identity.providerID), "user": identity.user.map(JSONValue.string) ?? .null,
                    "email": identity.email.map(JSONValue.string) ?? .null,
                    "groups": .array(identity.groups.map(JSONValue.string)),
                    "preferred_username": identity.preferredUsername.map(JSONValue.string) ?? .null,
                ]).serialized + "\n"
                self.send(
                    HTTPErrorResponse(status: 200, headers: [("Cache-Control", "no-store")], body: body, closeConnection: false, contentType: "application/json"),
                    exchange: e, context: context, forceClose: e.hasBody, cookies: auth.cookies)
            }
        case .auth:
            forwardAuth(e, head: head, fields: fields, outcome: outcome, context: context)
        }
    }

    /// Runs a login endpoint's asynchronous work off the loop and answers on it (unless the exchange is gone).
    private func deliver(
        _ e: Exchange, context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> BrowserLogin.Answer
    ) {
        let promise = context.eventLoop.makePromise(of: BrowserLogin.Answer.self)
        promise.completeWithTask(work)
        promise.futureResult.assumeIsolated().whenSuccess { [self] answer in
            guard let current = self.exchange, current === e, let context = self.context else { return }
            switch answer.result {
            case .success(let response):
                self.send(response, exchange: e, context: context, forceClose: e.hasBody, cookies: answer.cookies)
            case .failure(let error):
                self.respondLocally(error, exchange: e, context: context, forceClose: e.hasBody, cookies: answer.cookies)
            }
        }
    }

    /// `/oauth2/auth`: the forward-auth check for nginx `auth_request`, Traefik ForwardAuth and Envoy
    /// ext_authz. The rules are those of the route matching `X-Forwarded-Host` + `X-Forwarded-Uri` (believed
    /// only from trusted proxies), plus `allowed_groups` / `allowed_emails` query parameters.
    private func forwardAuth(
        _ e: Exchange, head: HTTPRequestHead, fields: HeaderFields, outcome: RequestValidation.Outcome,
        context: ChannelHandlerContext
    ) {
        var extra = AllowRules()
        if let query = outcome.target.query {
            guard let params = FormEncoding.decode(Substring(query)) else {
                respondLocally(.badRequest("malformed query"), exchange: e, context: context, forceClose: true)
                return
            }
            for (name, value) in params {
                let items = value.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
                if name == "allowed_groups" { extra.anyGroup += items }
                if name == "allowed_emails" { extra.emails += items }
            }
        }
        var route = RouteConfig(
            id: "forward-auth", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 9), auth: .session)
        var target = head.uri
        let forwardedHost = fields.first { $0.name.lowercased() == "x-forwarded-host" }?.value
        let forwardedURI = fields.first { $0.name.lowercased() == "x-forwarded-uri" }?.value
        if forwardedURI != nil && !peerTrusted {
            // The check would silently fall back to "any signed-in user": refuse instead, so that a proxy
            // missing from server.trusted_proxies is noticed at once.
            runtime.logger.warning(
                "forward-auth: X-Forwarded-Uri from a peer outside server.trusted_proxies", metadata: ["peer": "\(peerText)"])
            respondLocally(
                .forbidden(reason: "forwarded request from an untrusted peer", insufficientScope: false), exchange: e,
                context: context, forceClose: false)
            return
        }
        if peerTrusted {
            let forwardedMethod = fields.first { $0.name.lowercased() == "x-forwarded-method" }?.value ?? "GET"
            if let forwardedURI {
                guard let canonical = try? CanonicalTarget.parse(forwardedURI) else {
                    respondLocally(.badRequest("malformed X-Forwarded-Uri"), exchange: e, context: context, forceClose: false)
                    return
                }
                target = forwardedURI
                var host = outcome.host
                if let forwardedHost {
                    guard let normal = HostName.normalise(forwardedHost) else {
                        respondLocally(.badRequest("malformed X-Forwarded-Host"), exchange: e, context: context, forceClose: false)
                        return
                    }
                    host = normal
                }
                switch runtime.routes.match(host: host, path: canonical.path, method: forwardedMethod.uppercased()) {
                case .route(let index):
                    route = runtime.routes.routes[index]
                    // The same path rules as a proxied request: what nginx sends on is what was checked here.
                    if (canonical.hasEncodedSlash && !route.allowEncodedSlashes)
                        || (canonical.hasDoubleEncoding && !route.allowDoubleEncoding)
                    {
                        respondLocally(
                            .forbidden(reason: "forwarded path is encoded ambiguously", insufficientScope: false),
                            exchange: e, context: context, forceClose: false)
                        return
                    }
                case .methodNotAllowed, .notFound:
                    respondLocally(.forbidden(reason: "no route for the forwarded request", insufficientScope: false), exchange: e, context: context, forceClose: false)
                    return
                }
            }
        }
        e.routeID = "login.auth:" + route.id
        if route.auth == .none && extra.isEmpty {
            send(HTTPErrorResponse(status: 202, headers: [], body: "", closeConnection: false), exchange: e, context: context, forceClose: e.hasBody)
            return
        }
        authenticate(
            e, fields: fields, query: nil, requestTarget: target, method: "GET", auth: route.auth == .jwt ? .jwt : .session,
            providers: route.providers, forwardAuth: true, context: context, afterRefresh: false
        ) { [self] result in
            guard let context = self.context, let auth = self.authenticated(result, e, context: context) else { return }
            var decision = AccessPolicy.decide(route: route.auth == .none ? RouteConfig(id: route.id, upstream: route.upstream, auth: .session) : route, identity: auth.identity)
            if case .permit = decision, !extra.isEmpty {
                decision = AccessPolicy.decide(
                    route: RouteConfig(id: route.id, upstream: route.upstream, auth: .session, allow: extra), identity: auth.identity)
            }
            guard case .permit(let permit) = decision, let identity = permit.identity else {
                if case .deny(let error) = decision {
                    e.user = auth.identity?.user
                    self.respondLocally(error, exchange: e, context: context, forceClose: e.hasBody, cookies: auth.cookies)
                }
                return
            }
            e.user = identity.user
            var headers: [(String, String)] = []
            let (identityFields, dropped) = HeaderRules.identityHeaderFields(
                [
                    IdentityHeader(name: "X-Auth-Request-User", claim: "user"),
                    IdentityHeader(name: "X-Auth-Request-Email", claim: "email"),
                    IdentityHeader(name: "X-Auth-Request-Groups", claim: "groups"),
                    IdentityHeader(name: "X-Auth-Request-Preferred-Username", claim: "preferred_username"),
                ], identity: identity)
            headers += identityFields
            self.logRefusedIdentityMembers(dropped, route: route.id)
            if route.passAccessToken, let token = auth.sessionAccessToken ?? auth.bearerToken {
                headers.append(("X-Auth-Request-Access-Token", token))
            }
            self.send(
                HTTPErrorResponse(status: 202, headers: headers, body: "", closeConnection: false), exchange: e, context: context,
                forceClose: e.hasBody, cookies: auth.cookies)
        }
    }

    private func buildUpstreamHead(
        _ head: HTTPRequestHead, fields clientFields: HeaderFields, outcome: RequestValidation.Outcome,
        route: RouteConfig, permit: Permit, requestID: String, sessionAccessToken: String?, upgrade: Bool = false
    ) -> HTTPRequestHead {
        var clientFields = clientFields
        if let login = runtime.browserLogin, clientFields.contains(where: { Cookies.isCookieHeader($0.name) }) {
            clientFields = Cookies.removing(login.names.isOwn, from: clientFields)  // Gatehouse's cookies stay here
        }
        // One list, turned into HTTPHeaders once: the client's headers as rewritten, then what Gatehouse adds.
        // The client's Authorization stays here on authenticated routes unless the route passes the very token
        // it authenticated with (a session's access token replaces it).
        let passesSessionToken = route.passAccessToken && sessionAccessToken != nil
        var fields = runtime.headerRules.upstreamRequestHeaders(
            from: clientFields,
            context: .init(
                peer: peer, peerTrusted: peerTrusted, scheme: scheme, rawHost: outcome.rawHost,
                upstreamHost: route.upstream.hostHeader, preserveHost: route.preserveHost, requestID: requestID,
                peerText: peer == nil ? nil : peerText,
                dropAuthorization: permit.identity != nil && (!route.passAccessToken || passesSessionToken)))
        if let identity = permit.identity {
            if passesSessionToken, let sessionAccessToken {
                fields.append(("Authorization", "Bearer " + sessionAccessToken))
            }
            let (identityFields, dropped) = HeaderRules.identityHeaderFields(
                runtime.identityHeaders(forRoute: route.id), identity: identity)
            fields += identityFields
            logRefusedIdentityMembers(dropped, route: route.id)
        }
        if outcome.chunked { fields.append(("Transfer-Encoding", "chunked")) }
        if upgrade {
            // The hop-by-hop pair was stripped with the client's other connection headers; this hop asks anew.
            fields.append(("Connection", "Upgrade"))
            fields.append(("Upgrade", "websocket"))
        }
        let headers = HTTPHeaders(fields)
        let uri = route.upstream.basePath + outcome.target.forwardTarget
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: headers)
    }

    /// Identity members left out of a header (HeaderRules+Identity): logged by header name, never the value.
    private func logRefusedIdentityMembers(_ headers: [String], route: String) {
        for name in headers {
            runtime.logger.warning(
                "identity value refused: a list separator, quote, control character or edge whitespace",
                metadata: ["header": "\(name)", "route": "\(route)"])
        }
    }

    private func receivedBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard let e = exchange else { return }
        if e.answeredLocally { return }  // the rest of the body is discarded
        if !e.hasBody, buffer.readableBytes > 0 {
            // Only HTTP/2 can deliver this (DATA on a GET without Content-Length): it cannot be framed toward the
            // upstream, so the exchange is refused rather than desynchronising the upstream connection.
            abortUpstream(e)
            if e.responseStarted {
                context.close(promise: nil)
            } else {
                respondLocally(.badRequest("request body on a method sent without one"), exchange: e, context: context, forceClose: true)
            }
            return
        }
        e.lastClientActivity = .now()
        e.bodyBytes += Int64(buffer.readableBytes)
        if e.bodyBytes > e.bodyLimit {
            abortUpstream(e)
            if e.responseStarted {
                context.close(promise: nil)
            } else {
                respondLocally(.bodyTooLarge(limit: e.bodyLimit), exchange: e, context: context, forceClose: true)
            }
            return
        }
        if let upstream = e.upstreamHandler, e.buffered.isEmpty {
            upstream.send(.body(.byteBuffer(buffer)))
        } else {
            e.buffered.append(.body(buffer))
        }
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        guard let e = exchange else { return }
        e.requestComplete = true
        if e.answeredLocally {
            // Answered locally and the body has now been read: the connection is clean again.
            if e.responseComplete { finishLocal(e, context: context) }
            return
        }
        if let upstream = e.upstreamHandler, e.buffered.isEmpty {
            upstream.send(.end(nil))
            upstream.flush()
            startResponseTimer(e, context: context)
        } else {
            e.buffered.append(.end(nil))
        }
        if e.responseComplete { completeExchange(e, context: context) }
    }

    // MARK: upstream connection

    private func acquireUpstream(for e: Exchange, context: ChannelHandlerContext) {
        guard let target = e.target else { return }
        if !e.retried, !e.upgrade, let pool = runtime.pools.pool(for: context.eventLoop), let channel = pool.lease(target),
            let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
        {
            e.reusedConnection = true
            attach(channel, handler: handler, to: e, context: context)
            return
        }
        e.reusedConnection = false
        // TLS toward an https upstream: SNI and certificate check against `server_name`, else the URL's host
        // (an IP literal is checked against the certificate's IP addresses and sent without SNI).
        var tlsContext: NIOSSLContext?
        var serverName: String?
        if target.scheme == .https {
            guard let settings = target.tls, let context = runtime.upstreamTLS[settings] else {
                failBeforeResponse(e, .upstreamConnectFailed("no TLS context"), context: context)
                return
            }
            tlsContext = context
            serverName = settings.serverName ?? (IPAddress(target.host) == nil ? target.host : nil)
        }
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(runtime.connectTimeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [tlsContext, serverName, upgrade = e.upgrade] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    // For an upgrade, bytes the upstream sends right after its 101 stay in the decoder and are
                    // handed to the tunnel when the decoder is removed.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: upgrade ? .forwardBytes : .dropBytes)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
        let connect: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            connect = bootstrap.connect(to: address)
        } else {
            connect = bootstrap.connect(host: target.host, port: target.port)
        }
        connect.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard let current = self.exchange, current === e, let context = self.context else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    channel.close(promise: nil)
                    self.failBeforeResponse(e, .upstreamProtocolError("pipeline"), context: context)
                    return
                }
                self.attach(channel, handler: handler, to: e, context: context)
            case .failure(let error):
                let mapped: GatehouseError
                if case ChannelError.connectTimeout = error {
                    mapped = .upstreamConnectTimeout
                } else {
                    mapped = .upstreamConnectFailed("\(error)")
                }
                self.failBeforeResponse(e, mapped, context: context)
            }
        }
    }

    private func attach(_ channel: Channel, handler: UpstreamHandler, to e: Exchange, context: ChannelHandlerContext) {
        guard let head = e.upstreamHead else { return }
        e.upstream = channel
        e.upstreamHandler = handler
        handler.delegate = self
        let target = e.target
        let pools = runtime.pools
        let loop = context.eventLoop
        handler.onIdleClose = { [weak handler] in
            guard let target, let pool = pools.pool(for: loop) else { return }
            pool.remove(channel, target: target)
            _ = handler
        }
        handler.send(.head(head))
        let buffered = e.buffered
        e.buffered = []
        for part in buffered {
            switch part {
            case .body(let b): handler.send(.body(.byteBuffer(b)))
            case .end: handler.send(.end(nil))
            case .head: break
            }
        }
        if e.retried && e.requestComplete && !e.hasBody {
            handler.send(.end(nil))
        }
        handler.flush()
        if e.requestComplete { startResponseTimer(e, context: context) }
        if channel.isWritable { resumeClientReads() }
        // The upstream may have closed while idle in the pool, just before we leased it.
        if !channel.isActive { upstreamClosed() }
    }

    /// While the request body streams in, `idle` bounds the gap between two client reads (a stalled upload gets
    /// 408); while the response body streams out, `upstream_response` bounds the gap between upstream reads
    /// (a stalled upstream, or a client that stopped reading, closes both connections).
    private func armActivity(_ e: Exchange, context: ChannelHandlerContext) {
        e.activityTimer?.cancel()
        let bodyLimit = TimeAmount(runtime.config.server.idleTimeout)
        let streamLimit = runtime.responseTimeout
        var deadlines: [NIODeadline] = []
        if !e.requestComplete { deadlines.append(e.lastClientActivity + bodyLimit) }
        if e.responseStarted { deadlines.append(e.lastUpstreamActivity + streamLimit) }
        guard let deadline = deadlines.min() else { return }
        e.activityTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            e.activityTimer = nil
            guard let current = self.exchange, current === e, let context = self.context else { return }
            let now = NIODeadline.now()
            let uploadStalled = !e.requestComplete && e.lastClientActivity + bodyLimit <= now
            let streamStalled = e.responseStarted && e.lastUpstreamActivity + streamLimit <= now
            guard uploadStalled || streamStalled else {
                self.armActivity(e, context: context)  // there was progress: wait for the new deadline
                return
            }
            if e.responseStarted {
                // Nothing can be said in-band any more: close both sides.
                e.error = uploadStalled ? "request_body_timeout" : "stream_stalled"
                self.abortUpstream(e)
                self.closing = true
                self.log(e)
                self.exchange = nil
                context.close(promise: nil)
            } else {
                self.abortUpstream(e)
                self.respondLocally(.requestTimeout, exchange: e, context: context, forceClose: true)
            }
        }
    }

    /// `upstream_response` bounds the wait for the response head, counted from when the whole request was sent
    /// (so a long upload is never cut short by it).
    private func startResponseTimer(_ e: Exchange, context: ChannelHandlerContext) {
        guard e.responseTimer == nil, !e.responseStarted else { return }
        e.responseTimer = context.eventLoop.assumeIsolated().scheduleTask(in: runtime.responseTimeout) { [self] in
            guard let current = self.exchange, current === e, !e.responseStarted, let context = self.context else {
                return
            }
            self.abortUpstream(e)
            self.failBeforeResponse(e, .upstreamResponseTimeout, context: context)
        }
    }

    /// Closes the exchange's upstream connection; it is never reused after an error.
    private func abortUpstream(_ e: Exchange) {
        e.responseTimer?.cancel()
        e.activityTimer?.cancel()
        e.upstreamReusable = false
        if let upstream = e.upstream {
            e.upstreamHandler?.delegate = nil
            upstream.close(promise: nil)
        }
        e.upstream = nil
        e.upstreamHandler = nil
    }

    private func failBeforeResponse(_ e: Exchange, _ error: GatehouseError, context: ChannelHandlerContext) {
        respondLocally(error, exchange: e, context: context, forceClose: !e.requestComplete)
    }

    // MARK: UpstreamDelegate

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let e = exchange, let context else { return }
        if e.tunneled { return }  // the 101's end; the tunnel takes over
        switch part {
        case .head(let head):
            if e.upgrade {
                if head.status.code == 101 {
                    startTunnel(e, head: head, context: context)
                    return
                }
                // A refused upgrade: relay the answer, then close both connections (no tunnel, no reuse).
                e.closeAfterResponse = true
                e.upstreamReusable = false
            }
            if head.status.code >= 100 && head.status.code < 200 { return }  // interim responses are not relayed
            e.responseTimer?.cancel()
            e.responseStarted = true
            e.status = Int(head.status.code)
            e.lastUpstreamActivity = .now()
            if !head.isKeepAlive { e.upstreamReusable = false }
            var headers = HTTPHeaders(
                HeaderRules.clientResponseHeaders(from: head.headers.map { (name: $0.name, value: $0.value) }))
            headers.replaceOrAdd(name: "X-Request-Id", value: e.requestID)
            if let login = runtime.browserLogin {
                // An upstream may not set, overwrite or delete Gatehouse's cookies (that would be login CSRF
                // for every route on the host).
                let own = Cookies.ownSetCookies(headers["set-cookie"], isOwn: login.names.isOwn)
                if !own.isEmpty {
                    let kept = headers["set-cookie"].filter { !own.contains($0) }
                    headers.remove(name: "set-cookie")
                    for line in kept { headers.add(name: "Set-Cookie", value: line) }
                    runtime.logger.warning("upstream tried to set a Gatehouse cookie; dropped", metadata: ["route": "\(e.routeID)"])
                }
            }
            if !e.responseCookies.isEmpty {
                for cookie in e.responseCookies { headers.add(name: "Set-Cookie", value: cookie) }
                headers.replaceOrAdd(name: "Cache-Control", value: "no-store")  // a fresh session must not be cached
            }
            if e.version == .http1_0 && !headers.contains(name: "content-length") {
                // An HTTP/1.0 client can only find the end of a body of unknown length by the close.
                e.closeAfterResponse = true
            }
            if e.wantsClose || e.closeAfterResponse || closing {
                headers.replaceOrAdd(name: "Connection", value: "close")
            } else if e.version == .http1_0 {
                headers.replaceOrAdd(name: "Connection", value: "keep-alive")
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: e.version, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            e.lastUpstreamActivity = .now()
            e.responseBytes += Int64(buffer.readableBytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            e.responseComplete = true
            if e.requestComplete {
                completeExchange(e, context: context)
            } else {
                // The upstream answered before the body was fully sent: finish the response, then close both
                // connections (the rest of the body is unread and the upstream connection is out of step).
                e.upstreamReusable = false
                e.closeAfterResponse = true
                completeExchange(e, context: context)
            }
        }
    }

    func upstreamReadComplete() {
        guard let context else { return }
        // A response still streaming after this read batch gets its stall watchdog (most small responses
        // complete within one batch and never need a timer).
        if let e = exchange, e.responseStarted, !e.responseComplete, e.activityTimer == nil {
            armActivity(e, context: context)
        }
        context.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    func upstreamClosed() {
        guard let e = exchange, let context else { return }
        if e.responseComplete { return }
        e.upstream = nil
        e.upstreamHandler = nil
        e.upstreamReusable = false
        if !e.responseStarted {
            // A pooled connection the upstream closed as we reused it: retry once on a fresh one when nothing
            // of a body could have been consumed.
            if e.reusedConnection && !e.retried && !e.hasBody {
                e.retried = true
                e.responseTimer?.cancel()
                e.responseTimer = nil
                acquireUpstream(for: e, context: context)
                return
            }
            failBeforeResponse(e, .upstreamClosed, context: context)
        } else {
            // Truncated response: the client cannot be told in-band; close so it sees the truncation.
            e.error = "upstream_closed_mid_response"
            closing = true
            log(e)
            exchange = nil
            context.close(promise: nil)
        }
    }

    func upstreamFailed(_ error: Error) {
        guard let e = exchange else { return }
        e.upstreamReusable = false
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            e.detail = "upstream TLS handshake failed"
        }
        upstreamClosed()
    }

    // MARK: WebSocket tunnel

    /// The upstream accepted the upgrade (101): answer the client, then turn both connections into a byte
    /// tunnel once the current read is done (the upstream's decoder is still on the stack now).
    private func startTunnel(_ e: Exchange, head: HTTPResponseHead, context: ChannelHandlerContext) {
        e.tunneled = true
        e.responseStarted = true
        e.responseComplete = true
        e.status = 101
        e.responseTimer?.cancel()
        e.activityTimer?.cancel()
        var fields = HeaderRules.clientResponseHeaders(from: head.headers.map { (name: $0.name, value: $0.value) })
        fields.append((name: "Connection", value: "Upgrade"))
        fields.append((name: "Upgrade", value: "websocket"))
        fields.append((name: "X-Request-Id", value: e.requestID))
        var text = "HTTP/1.1 101 Switching Protocols\r\n"
        for (name, value) in fields where RequestValidation.isValidFieldValue(value) { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        let raw = context.channel.allocator.buffer(string: text)
        context.eventLoop.assumeIsolated().execute { [self] in
            guard let current = self.exchange, current === e, let context = self.context else { return }
            do {
                try self.completeTunnel(e, response: raw, context: context)
            } catch {
                e.error = "tunnel_setup_failed"
                self.abortUpstream(e)
                context.close(promise: nil)
            }
        }
    }

    private func completeTunnel(_ e: Exchange, response: ByteBuffer, context: ChannelHandlerContext) throws {
        guard let upstream = e.upstream, let upstreamHandler = e.upstreamHandler else { throw ChannelError.ioOnClosedChannel }
        let client = context.pipeline.syncOperations
        // Client side: the HTTP handlers go; a tunnel end sits in front of this handler, which stays only to log
        // the exchange when the connection closes.
        if let validator = try? client.handler(type: NIOHTTPResponseHeadersValidator.self) {
            try client.removeHandler(validator)
        }
        try client.removeHandler(client.handler(type: HTTPResponseEncoder.self))
        try client.removeHandler(client.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
        try client.removeHandler(timeouts)
        let clientEnd = TunnelHandler()
        try client.addHandler(clientEnd, position: .before(self))
        context.writeAndFlush(NIOAny(response), promise: nil)
        // Upstream side: the tunnel end goes last, then the codecs go; removing the decoder hands over any bytes
        // the upstream sent after its 101.
        upstreamHandler.delegate = nil
        let up = upstream.pipeline.syncOperations
        let upstreamEnd = TunnelHandler()
        clientEnd.partner = upstreamEnd
        upstreamEnd.partner = clientEnd
        try up.removeHandler(upstreamHandler)
        try up.addHandler(upstreamEnd)
        if let validator = try? up.handler(type: NIOHTTPRequestHeadersValidator.self) { try up.removeHandler(validator) }
        try up.removeHandler(up.handler(type: HTTPRequestEncoder.self))
        try up.removeHandler(up.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self))
        // Bytes handed over by the decoder arrive without a read-complete: flush them now, or a server that
        // speaks first (a greeting right after its 101) would wait forever for a client that waits for it.
        clientEnd.flushNow()
        e.upstreamHandler = nil
        let touch: (Int) -> Void = { [weak e] bytes in
            e?.lastTunnelActivity = .now()
            e?.responseBytes += Int64(bytes)
        }
        clientEnd.onActivity = touch
        upstreamEnd.onActivity = touch
        armTunnelTimer(e, context: context)
        upstream.read()
        context.read()
    }

    /// Closes a tunnel that was idle for `idle`, or that outlived the identity that opened it (the token's `exp`,
    /// the session's end; at most 24 hours).
    private func armTunnelTimer(_ e: Exchange, context: ChannelHandlerContext) {
        let idle = TimeAmount(runtime.config.server.idleTimeout)
        var deadline = e.lastTunnelActivity + idle
        var lifetimeEnd = NIODeadline.now() + .hours(24)
        if let expiry = e.identityExpiry {
            let remaining = max(0, expiry - epochSeconds())
            lifetimeEnd = min(lifetimeEnd, NIODeadline.now() + .seconds(min(remaining, 86_400)))
        }
        deadline = min(deadline, lifetimeEnd)
        e.tunnelTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard let current = self.exchange, current === e, let context = self.context else { return }
            let now = NIODeadline.now()
            if now >= lifetimeEnd {
                e.error = "tunnel_identity_expired"
            } else if e.lastTunnelActivity + idle <= now {
                e.error = "tunnel_idle"
            } else {
                self.armTunnelTimer(e, context: context)
                return
            }
            e.upstream?.close(promise: nil)
            context.close(promise: nil)
        }
    }

    // MARK: completion

    private func completeExchange(_ e: Exchange, context: ChannelHandlerContext) {
        e.responseTimer?.cancel()
        e.activityTimer?.cancel()
        if let upstream = e.upstream, let handler = e.upstreamHandler {
            handler.delegate = nil
            e.upstream = nil
            e.upstreamHandler = nil
            if e.upstreamReusable, e.requestComplete, let target = e.target,
                let pool = runtime.pools.pool(for: context.eventLoop)
            {
                pool.release(upstream, target: target)
            } else {
                upstream.close(promise: nil)
            }
        }
        exchange = nil
        log(e)
        endResponse(close: e.wantsClose || e.closeAfterResponse || closing, context: context)
    }

    /// Writes the response's end, then either closes the connection or waits for the next request. The
    /// exchange must already be cleared: the pipelining handler may deliver the next request inside this write.
    private func endResponse(close: Bool, context: ChannelHandlerContext) {
        if close {
            closing = true
            // Unread bytes of this request (a body, the rest of an oversized head) must not turn the close into a
            // reset that destroys the answer at the client: drain them after the answer (lingering close).
            let linger = self.linger
            linger?.startDiscarding()
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if let linger { linger.answerFlushed() } else { context.close(promise: nil) }
            }
        } else {
            timeouts.becameIdle()
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            servePipelined(context: context)
        }
    }

    /// Sends an error response produced by Gatehouse itself (via the one error mapping).
    private func respondLocally(
        _ error: GatehouseError, exchange e: Exchange, context: ChannelHandlerContext, forceClose: Bool,
        cookies: [String] = []
    ) {
        e.error = error.reason
        switch error {
        case .invalidToken(let why), .invalidAuthRequest(let why), .forbidden(let why, _): e.detail = why
        default: break
        }
        send(HTTPErrorResponse.make(for: error), exchange: e, context: context, forceClose: forceClose, cookies: cookies)
    }

    /// Sends a response Gatehouse produced itself (an error, a redirect, an endpoint's answer).
    private func send(
        _ response: HTTPErrorResponse, exchange e: Exchange, context: ChannelHandlerContext, forceClose: Bool,
        cookies: [String] = []
    ) {
        e.answeredLocally = true
        e.status = response.status
        var headers = HTTPHeaders(response.headers)
        let body = context.channel.allocator.buffer(string: response.body)
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "X-Request-Id", value: e.requestID)
        for cookie in cookies { headers.add(name: "Set-Cookie", value: cookie) }
        let close = forceClose || response.closeConnection || e.wantsClose || closing
        if close { headers.add(name: "Connection", value: "close") }
        e.closeAfterResponse = close
        e.responseStarted = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: e.version, status: .init(statusCode: response.status), headers: headers))), promise: nil)
        if e.method != "HEAD" {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        e.responseComplete = true
        if close || e.requestComplete || !e.hasBody {
            finishLocal(e, context: context)
        }
        // else: keep reading (and discarding) the body; finishLocal runs at its end.
    }

    private func finishLocal(_ e: Exchange, context: ChannelHandlerContext) {
        e.responseTimer?.cancel()
        e.activityTimer?.cancel()
        exchange = nil
        log(e)
        endResponse(close: e.closeAfterResponse, context: context)
    }

    private func log(_ e: Exchange) {
        let micros = (NIODeadline.now() - e.start).nanoseconds / 1000
        runtime.accessLog.record(
            AccessLogEntry(
                requestID: e.requestID, client: peerText, method: e.method, path: e.path, route: e.routeID,
                status: e.status, bytes: e.responseBytes, upstream: e.upstreamDescription, durationMicros: micros,
                error: e.error, detail: e.detail, user: e.user))
    }

    private func epochSeconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Request ids need to be unique, not secret: a SplitMix64 stream per connection, seeded once from the
    /// system generator, avoids two getrandom(2) calls per request.
    private var idState: UInt64 = {
        var system = SystemRandomNumberGenerator()
        return system.next()
    }()

    private func nextID() -> UInt64 {
        idState &+= 0x9E37_79B9_7F4A_7C15
        var z = idState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 32 lower-case hex digits written straight into the string's storage (one allocation).
    private func makeRequestID() -> String {
        let a = nextID()
        let b = nextID()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            let hex = UnsafeBufferPointer(start: digits.utf8Start, count: 16)
            for i in 0..<16 {
                buffer[i] = hex[Int(truncatingIfNeeded: a >> UInt64(60 - 4 * i)) & 0xF]
                buffer[16 + i] = hex[Int(truncatingIfNeeded: b >> UInt64(60 - 4 * i)) & 0xF]
            }
            return 32
        }
    }
}

extension HTTPServerRequestPart {
    fileprivate var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
