import GatehouseCore
import GatehouseHTTP

/// `/oauth2/auth`: the forward-auth check for nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz.
/// The rules are those of the route matching `X-Forwarded-Host` + `X-Forwarded-Uri` (believed only from trusted
/// proxies), plus `allowed_groups` / `allowed_emails` query parameters; without a forwarded URI, "any signed-in
/// user". Two plain steps: which rules apply (`check`), then whether the identity meets them (`decide`).
enum ForwardAuthPhase {
    struct Check {
        var routeID: String
        /// How to authenticate: `.jwt` on jwt routes, else the session (or a bearer token).
        var auth: AuthMode
        /// The matched route's rules (none for "any signed-in user").
        var allow: AllowRules
        /// From the query: `allowed_groups`, `allowed_emails`.
        var extra: AllowRules
        var providers: [String]?
        var passAccessToken: Bool
        /// The target a login would return to.
        var requestTarget: String
        /// An `auth: none` route without extra rules: allowed without a credential.
        var anonymous: Bool
    }

    static func check(
        _ ctx: RequestContext, outcome: RequestValidation.Outcome, peer: Peer, routes: RouteTable
    ) -> Verdict<Check> {
        var extra = AllowRules()
        if let query = outcome.target.query {
            guard let params = FormEncoding.decode(Substring(query)) else {
                return .respond(.error(.badRequest("malformed query"), forceClose: true))
            }
            for (name, value) in params {
                let items = value.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
                if name == "allowed_groups" { extra.anyGroup += items }
                if name == "allowed_emails" { extra.emails += items }
            }
        }
        var check = Check(
            routeID: "forward-auth", auth: .session, allow: AllowRules(), extra: extra, providers: nil,
            passAccessToken: false, requestTarget: ctx.head.target, anonymous: false)
        let forwardedURI = ctx.head.firstValue("x-forwarded-uri")
        if forwardedURI != nil && !peer.trusted {
            // The check would silently fall back to "any signed-in user": refuse instead, so that a proxy missing
            // from server.trusted_proxies is noticed at once.
            return .respond(
                .error(.forbidden(reason: "forwarded request from an untrusted peer", insufficientScope: false)))
        }
        if peer.trusted, let forwardedURI {
            let forwardedMethod = ctx.head.firstValue("x-forwarded-method") ?? "GET"
            guard let canonical = try? CanonicalTarget.parse(forwardedURI) else {
                return .respond(.error(.badRequest("malformed X-Forwarded-Uri")))
            }
            check.requestTarget = forwardedURI
            var host = outcome.host
            if let forwardedHost = ctx.head.firstValue("x-forwarded-host") {
                guard let normal = HostName.normalise(forwardedHost) else {
                    return .respond(.error(.badRequest("malformed X-Forwarded-Host")))
                }
                host = normal
            }
            switch routes.match(host: host, path: canonical.path, method: forwardedMethod.uppercased()) {
            case .route(let index):
                let route = routes.routes[index]
                // The same path rules as a proxied request: what nginx sends on is what was checked here.
                if (canonical.hasEncodedSlash && !route.allowEncodedSlashes)
                    || (canonical.hasDoubleEncoding && !route.allowDoubleEncoding)
                {
                    return .respond(
                        .error(.forbidden(reason: "forwarded path is encoded ambiguously", insufficientScope: false)))
                }
                check.routeID = route.id
                check.auth = route.auth == .jwt ? .jwt : .session
                check.allow = route.auth == .none ? AllowRules() : route.allow
                check.providers = route.providers
                check.passAccessToken = route.passAccessToken
                check.anonymous = route.auth == .none && extra.isEmpty
            case .methodNotAllowed, .notFound:
                return .respond(
                    .error(.forbidden(reason: "no route for the forwarded request", insufficientScope: false)))
            }
        }
        return .proceed(check)
    }

    /// The identity against the check's rules: the identity headers for the proxy in front (the names oauth2-proxy
    /// uses), with the names of headers that lost a refused member.
    static func decide(_ ctx: RequestContext, _ check: Check) -> Verdict<([(String, String)], [String])> {
        let identity = ctx.auth.identity
        ctx.log.user = identity?.user
        var decision = AccessPolicy.decide(
            routeID: check.routeID, auth: .session, allow: check.allow, identity: identity)
        if case .permit = decision, !check.extra.isEmpty {
            decision = AccessPolicy.decide(
                routeID: check.routeID, auth: .session, allow: check.extra, identity: identity)
        }
        guard case .permit(let permit) = decision, let permitted = permit.identity else {
            if case .deny(let error) = decision { return .respond(.error(error, cookies: ctx.auth.cookies)) }
            return .respond(.error(.noCredentials, cookies: ctx.auth.cookies))
        }
        let (fields, refused) = HeaderRules.identityHeaderFields(
            [
                IdentityHeader(name: "X-Auth-Request-User", claim: "user"),
                IdentityHeader(name: "X-Auth-Request-Email", claim: "email"),
                IdentityHeader(name: "X-Auth-Request-Groups", claim: "groups"),
                IdentityHeader(name: "X-Auth-Request-Preferred-Username", claim: "preferred_username"),
            ], identity: permitted)
        var headers = fields
        if check.passAccessToken, let token = ctx.auth.sessionAccessToken ?? ctx.auth.bearerToken {
            headers.append(("X-Auth-Request-Access-Token", token))
        }
        return .proceed((headers, refused))
    }
}
