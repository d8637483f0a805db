import GatehouseCore
import GatehouseHTTP
import NIOCore

/// Sanitize: the head's framing and target rules (`RequestHead.validate`), once per request.
enum SanitizePhase {
    static func run(_ ctx: RequestContext, maxHeaderBytes: Int) -> Verdict<RequestValidation.Outcome> {
        let outcome: RequestValidation.Outcome
        do {
            outcome = try ctx.head.validate(maxHeaderBytes: maxHeaderBytes)
        } catch {
            return .respond(.error(error, forceClose: true))
        }
        ctx.outcome = outcome
        ctx.log.path = outcome.target.path
        ctx.wantsClose = ctx.wantsClose || outcome.wantsClose
        ctx.framing = RequestHead.framing(of: outcome)
        return .proceed(outcome)
    }
}

/// Route: the route for host, path and method, then the route's own request rules (encoded slashes, double
/// encoding, WebSocket upgrades, the body limit).
enum RoutePhase {
    static func run(
        _ ctx: RequestContext, outcome: RequestValidation.Outcome, routes: RouteTable, plans: [RoutePlan],
        maxBodyBytes: Int64
    ) -> Verdict<RoutePlan> {
        let plan: RoutePlan
        switch routes.match(host: outcome.host, path: outcome.target.path, method: ctx.method) {
        case .route(let index):
            plan = plans[index]
        case .methodNotAllowed(let allowed):
            return .respond(.error(.methodNotAllowed(allowed: allowed)))
        case .notFound:
            return .respond(.error(.notFound))
        }
        ctx.log.routeID = plan.config.id
        if outcome.target.hasEncodedSlash && !plan.config.allowEncodedSlashes {
            return .respond(.error(.encodedSlashNotAllowed))
        }
        if outcome.target.hasDoubleEncoding && !plan.config.allowDoubleEncoding {
            return .respond(.error(.doubleEncodingNotAllowed))
        }
        // Upgrades. After a request asking to switch protocols the connection ends with this exchange whatever
        // happens. WebSocket upgrades pass only on `websocket: true` routes.
        if ctx.head.versionMajor == 1, ctx.head.firstIndex(of: "upgrade") != nil {
            let fields = ctx.head.stringFields
            if WebSocketUpgrade.asksToUpgrade(fields) {
                ctx.wantsClose = true
                let upgrades = fields.filter { $0.name.lowercased() == "upgrade" }.map { $0.value.lowercased() }
                if upgrades.contains(where: { $0.contains("websocket") }) {
                    guard plan.config.websocket else {
                        return .respond(
                            .error(.badRequest("WebSocket upgrades are not enabled on this route"), forceClose: true))
                    }
                    if let problem = WebSocketUpgrade.problem(
                        method: ctx.method, versionMinor: ctx.versionMinor, headers: fields)
                    {
                        return .respond(.error(.badRequest(problem), forceClose: true))
                    }
                    ctx.upgrade = true
                }
            }
        }
        ctx.bodyLimit = plan.config.maxBodyBytes ?? maxBodyBytes
        if let length = outcome.contentLength, length > ctx.bodyLimit {
            return .respond(.error(.bodyTooLarge(limit: ctx.bodyLimit), forceClose: true))
        }
        return .proceed(plan)
    }
}

/// Authorize: the route's rules over the identity; a permit is the only way on to the upstream.
enum AuthorizePhase {
    static func run(_ ctx: RequestContext, route: RouteConfig) -> Verdict<Permit> {
        ctx.log.user = ctx.auth.identity?.user
        switch AccessPolicy.decide(route: route, identity: ctx.auth.identity) {
        case .permit(let permit):
            ctx.permit = permit
            ctx.identityExpiry = permit.identity?.expiresAt
            return .proceed(permit)
        case .deny(let error):
            return .respond(.error(error, cookies: ctx.auth.cookies))
        }
    }
}

/// The upstream request: the head the upstream receives, written as bytes from the client's head, the permit
/// and the route (strip before inject: the client's managed headers go, Gatehouse's own are added last).
enum UpstreamRequestPhase {
    struct Settings {
        var rules: HeaderRules
        var peer: Peer
        var isOwnCookie: ((Substring) -> Bool)?
    }

    /// The head, and the names of identity headers that lost a member (logged by the caller, never the value).
    static func run(
        _ ctx: RequestContext, permit: Permit, plan: RoutePlan, outcome: RequestValidation.Outcome,
        settings: Settings, into out: inout ByteBuffer
    ) -> [String] {
        let passesSessionToken = plan.config.passAccessToken && ctx.auth.sessionAccessToken != nil
        var extra: [(String, String)] = []
        var refused: [String] = []
        if let identity = permit.identity {
            if passesSessionToken, let token = ctx.auth.sessionAccessToken {
                extra.append(("Authorization", "Bearer " + token))
            }
            let (fields, dropped) = HeaderRules.identityHeaderFields(plan.identityHeaders, identity: identity)
            extra = extra.isEmpty ? fields : extra + fields
            refused = dropped
        }
        if outcome.chunked { extra.append(("Transfer-Encoding", "chunked")) }
        if ctx.upgrade {
            // The hop-by-hop pair was stripped with the client's other connection headers; this hop asks anew.
            extra.append(("Connection", "Upgrade"))
            extra.append(("Upgrade", "websocket"))
        }
        let peer = settings.peer
        let context = HeaderRules.ForwardContext(
            peer: peer.address, peerTrusted: peer.trusted, scheme: peer.scheme, rawHost: outcome.rawHost,
            upstreamHost: plan.upstreamHost, preserveHost: plan.config.preserveHost, requestID: ctx.requestID,
            peerText: peer.address == nil ? nil : peer.text,
            dropAuthorization: permit.identity != nil && (!plan.config.passAccessToken || passesSessionToken))
        UpstreamRequestWriter.write(
            ctx.head, path: plan.config.upstream.basePath + outcome.target.forwardTarget, rules: settings.rules,
            context: context, isOwnCookie: settings.isOwnCookie, extra: extra, into: &out)
        return refused
    }
}
