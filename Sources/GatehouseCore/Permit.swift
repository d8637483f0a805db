/// Proof that the authorization phase allowed a request onto a route. Forwarding requires a `Permit`, and the
/// only way to obtain one is `AccessPolicy.decide`, so "forwarded without a decision" cannot be written.
public struct Permit: Sendable {
    public let routeID: String
    public let authMode: AuthMode

    fileprivate init(routeID: String, authMode: AuthMode) {
        self.routeID = routeID
        self.authMode = authMode
    }
}

public enum AccessDecision: Sendable {
    case permit(Permit)
    case deny(GatehouseError)
}

/// The authorization phase. Deny by default: a mode this build cannot evaluate never yields a permit.
public enum AccessPolicy {
    public static func decide(route: RouteConfig) -> AccessDecision {
        switch route.auth {
        case .none:
            return .permit(Permit(routeID: route.id, authMode: .none))
        case .jwt, .session:
            return .deny(.authNotSupported(route.auth))
        }
    }
}
