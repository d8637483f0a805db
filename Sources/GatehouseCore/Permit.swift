/// Proof that the authorization phase allowed a request onto a route. Forwarding requires a `Permit`, and the
/// only way to obtain one is `AccessPolicy.decide`, so "forwarded without a decision" cannot be written.
public struct Permit: Sendable {
    public let routeID: String
    public let authMode: AuthMode
    /// The authenticated caller; nil only on `auth: none` routes.
    public let identity: Identity?
    /// Where the permitted request goes (nil for a forward-auth check, which goes nowhere).
    public let upstream: UpstreamTarget?

    fileprivate init(routeID: String, authMode: AuthMode, identity: Identity?, upstream: UpstreamTarget?) {
        self.routeID = routeID
        self.authMode = authMode
        self.identity = identity
        self.upstream = upstream
    }
}

public enum AccessDecision: Sendable {
    case permit(Permit)
    case deny(GatehouseError)
}

/// The authorization phase (pure). Deny by default: a protected route without an identity never yields a
/// permit, and every `allow` condition must hold.
public enum AccessPolicy {
    public static func decide(route: RouteConfig, identity: Identity?) -> AccessDecision {
        decide(routeID: route.id, auth: route.auth, allow: route.allow, identity: identity, upstream: route.upstream)
    }

    /// The same decision from a route's parts (forward-auth checks a route's rules, or only "signed in", without
    /// building a route).
    public static func decide(
        routeID: String, auth: AuthMode, allow: AllowRules, identity: Identity?, upstream: UpstreamTarget? = nil
    ) -> AccessDecision {
        switch auth {
        case .none:
            return .permit(Permit(routeID: routeID, authMode: .none, identity: nil, upstream: upstream))
        case .jwt, .session:
            guard let identity else { return .deny(.noCredentials) }
            if let failure = check(allow, identity: identity) {
                return .deny(failure)
            }
            return .permit(Permit(routeID: routeID, authMode: auth, identity: identity, upstream: upstream))
        }
    }

    /// Returns the first failed condition as a 403, or nil when every condition holds.
    static func check(_ allow: AllowRules, identity: Identity) -> GatehouseError? {
        if !allow.anyGroup.isEmpty, !allow.anyGroup.contains(where: identity.groups.contains) {
            return .forbidden(reason: "not in any allowed group", insufficientScope: false)
        }
        if !allow.allGroups.isEmpty, !allow.allGroups.allSatisfy(identity.groups.contains) {
            return .forbidden(reason: "not in every required group", insufficientScope: false)
        }
        if !allow.emails.isEmpty || !allow.emailDomains.isEmpty {
            guard let email = identity.email, let domain = emailDomain(email) else {
                return .forbidden(reason: "no valid email", insufficientScope: false)
            }
            let lower = email.lowercased()
            let byEmail = allow.emails.contains { $0.lowercased() == lower }
            let byDomain = allow.emailDomains.contains { $0.lowercased() == domain }
            if !byEmail && !byDomain {
                return .forbidden(reason: "email not allowed", insufficientScope: false)
            }
        }
        if !allow.scopes.isEmpty, !allow.scopes.allSatisfy(identity.scopes.contains) {
            return .forbidden(reason: "missing required scope", insufficientScope: true)
        }
        if allow.claims.isEmpty { return nil }
        for (path, required) in allow.claims.sorted(by: { $0.key < $1.key }) {
            guard let value = identity.claims.lookup(path: path) else {
                return .forbidden(reason: "required claim missing", insufficientScope: false)
            }
            let matches: Bool
            if case .array(let items) = value {
                matches = items.contains { claimEquals($0, required) }
            } else {
                matches = claimEquals(value, required)
            }
            if !matches { return .forbidden(reason: "required claim value not present", insufficientScope: false) }
        }
        return nil
    }

    /// A claim value equals a configured value: numbers compare numerically (`1.50` equals `1.5`), other
    /// scalars by their text form.
    static func claimEquals(_ value: JSONValue, _ required: String) -> Bool {
        if case .number(let n) = value, isDecimalNumber(required), let wanted = Double(required) { return n == wanted }
        return value.scalarText == required
    }

    /// JSON number syntax only: no hex floats, `inf` or `nan` (which `Double.init` would accept).
    static func isDecimalNumber(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32
            && text.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
                    || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") || $0 == UInt8(ascii: "+")
            }
    }

    /// The lower-cased domain of an address with exactly one `@` and non-empty parts; nil otherwise.
    public static func emailDomain(_ email: String) -> String? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return parts[1].lowercased()
    }
}
