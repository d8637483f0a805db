/// `session:` — browser sessions established by the OIDC login (issue 4).
public struct SessionConfig: Sendable, Equatable {
    public enum SameSite: String, Sendable, Equatable {
        case lax, strict, none

        /// The attribute value as browsers expect it.
        public var attribute: String {
            switch self {
            case .lax: return "Lax"
            case .strict: return "Strict"
            case .none: return "None"
            }
        }
    }

    public enum Store: String, Sendable, Equatable {
        case cookie, postgres
    }

    /// Name of the session cookie; chunks are `<name>_1`, `<name>_2`, … and login transactions `<name>_tx_<id>`.
    public var cookieName: String
    /// Decoded secrets (32+ bytes each). The first seals; every one opens (rotation).
    public var secrets: [[UInt8]]
    public var secure: Bool
    public var sameSite: SameSite
    /// Cookie `Domain` attribute; nil = host-only cookies.
    public var domain: String?
    /// Absolute lifetime of a session, from the login.
    public var lifetime: Duration
    public var refresh: Bool
    public var store: Store

    public init(
        cookieName: String = "_gatehouse", secrets: [[UInt8]] = [], secure: Bool = true, sameSite: SameSite = .lax,
        domain: String? = nil, lifetime: Duration = .seconds(12 * 3600), refresh: Bool = true, store: Store = .cookie
    ) {
        self.cookieName = cookieName
        self.secrets = secrets
        self.secure = secure
        self.sameSite = sameSite
        self.domain = domain
        self.lifetime = lifetime
        self.refresh = refresh
        self.store = store
    }
}

extension SessionConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Never shows the secrets: configs get printed and logged.
    public var description: String {
        "SessionConfig(cookie_name: \(cookieName), secrets: <\(secrets.count) redacted>, secure: \(secure), same_site: \(sameSite.rawValue), domain: \(domain ?? "-"), lifetime: \(lifetime), refresh: \(refresh), store: \(store.rawValue))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "cookieName": cookieName, "secrets": "<\(secrets.count) redacted>", "secure": secure,
                "sameSite": sameSite.rawValue, "domain": domain as Any, "lifetime": lifetime, "refresh": refresh,
                "store": store.rawValue,
            ])
    }
}

/// `login:` — the login endpoints.
public struct LoginConfig: Sendable, Equatable {
    /// Canonical path prefix of the endpoints (no trailing slash), default `/oauth2`.
    public var pathPrefix: String
    /// Absolute callback URL; nil = derived from the request's scheme and host plus `<path_prefix>/callback`.
    public var redirectURL: String?
    /// Hosts besides the request's own that a post-login/logout redirect may go to.
    public var allowedRedirectHosts: [HostPattern]
    public var postLogoutRedirectURL: String?

    public init(
        pathPrefix: String = "/oauth2", redirectURL: String? = nil, allowedRedirectHosts: [HostPattern] = [],
        postLogoutRedirectURL: String? = nil
    ) {
        self.pathPrefix = pathPrefix
        self.redirectURL = redirectURL
        self.allowedRedirectHosts = allowedRedirectHosts
        self.postLogoutRedirectURL = postLogoutRedirectURL
    }
}
