/// JWS algorithms Gatehouse verifies (RFC 7518 §3, RFC 8037 for EdDSA). `none` is deliberately absent.
public enum JWTAlgorithm: String, Sendable, Hashable, CaseIterable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case ps256 = "PS256"
    case ps384 = "PS384"
    case ps512 = "PS512"
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"
    case edDSA = "EdDSA"
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"

    public var isSymmetric: Bool {
        switch self {
        case .hs256, .hs384, .hs512: return true
        default: return false
        }
    }

    /// Every asymmetric algorithm: the default allow-list of a provider.
    public static let asymmetric: Set<JWTAlgorithm> = Set(allCases.filter { !$0.isSymmetric })
}

/// Where a provider's tokens carry the identity facts. Each value is a claim name or a dotted path
/// (`realm_access.roles`).
public struct ClaimMapping: Sendable, Equatable {
    public var user: String
    public var email: String
    public var groups: String
    public var preferredUsername: String

    public init(
        user: String = "sub", email: String = "email", groups: String = "groups",
        preferredUsername: String = "preferred_username"
    ) {
        self.user = user
        self.email = email
        self.groups = groups
        self.preferredUsername = preferredUsername
    }

    /// The user the claims name: the `user` claim (default `sub`) when it is a non-empty string, else nil. A
    /// token or session that names nobody must not authenticate anybody: a missing, empty or non-string user
    /// claim is refused (`sub` is a StringOrURI, RFC 7519 §4.1.2).
    public func mappedUser(in claims: JSONValue) -> String? {
        guard case .string(let user)? = claims.lookup(path: self.user), !user.isEmpty else { return nil }
        return user
    }
}

public enum TokenEndpointAuth: String, Sendable, Equatable {
    case clientSecretBasic = "client_secret_basic"
    case clientSecretPost = "client_secret_post"
}

/// An identity provider: an OIDC issuer and/or a plain JWT issuer whose keys Gatehouse trusts.
public struct ProviderConfig: Sendable, Equatable {
    public var id: String
    /// Compared exactly with a token's `iss`.
    public var issuer: String
    /// Explicit key-set URL (https://, http:// on loopback, or file://); nil = OIDC discovery from the issuer.
    public var jwksURI: String?
    /// PEM file of CA certificates trusted for this provider's https endpoints (nil = system roots).
    public var caFile: String?
    public var clientID: String?
    public var clientSecret: String?
    public var tokenEndpointAuth: TokenEndpointAuth
    public var scopes: [String]
    /// Accepted `aud` values besides the client id.
    public var audiences: [String]
    /// Algorithms accepted for this provider's tokens (HS* only when `sharedSecret` is set).
    public var algorithms: Set<JWTAlgorithm>
    /// The HMAC key for HS256/384/512, read from `shared_secret_file`.
    public var sharedSecret: [UInt8]?
    public var clockSkew: Duration
    public var claims: ClaimMapping
    /// Accepted `typ` header values (case-insensitive); empty = any.
    public var acceptedTypes: [String]
    public var extraAuthParams: [String: String]

    public init(
        id: String, issuer: String, jwksURI: String? = nil, caFile: String? = nil, clientID: String? = nil,
        clientSecret: String? = nil, tokenEndpointAuth: TokenEndpointAuth = .clientSecretBasic,
        scopes: [String] = ["openid", "email", "profile"], audiences: [String] = [],
        algorithms: Set<JWTAlgorithm> = JWTAlgorithm.asymmetric, sharedSecret: [UInt8]? = nil,
        clockSkew: Duration = .seconds(60), claims: ClaimMapping = ClaimMapping(), acceptedTypes: [String] = [],
        extraAuthParams: [String: String] = [:]
    ) {
        self.id = id
        self.issuer = issuer
        self.jwksURI = jwksURI
        self.caFile = caFile
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.tokenEndpointAuth = tokenEndpointAuth
        self.scopes = scopes
        self.audiences = audiences
        self.algorithms = algorithms
        self.sharedSecret = sharedSecret
        self.clockSkew = clockSkew
        self.claims = claims
        self.acceptedTypes = acceptedTypes
        self.extraAuthParams = extraAuthParams
    }

    /// Every `aud` value accepted: the configured audiences plus the client id.
    public var acceptedAudiences: Set<String> {
        var set = Set(audiences)
        if let clientID { set.insert(clientID) }
        return set
    }
}

/// A route's authorization rules: every listed condition must hold. Empty rules = any authenticated user.
public struct AllowRules: Sendable, Equatable {
    public var anyGroup: [String]
    public var allGroups: [String]
    public var emails: [String]
    public var emailDomains: [String]
    public var scopes: [String]
    /// Claim name (or dotted path) → required value: the claim equals it, or is an array containing it.
    public var claims: [String: String]

    public init(
        anyGroup: [String] = [], allGroups: [String] = [], emails: [String] = [], emailDomains: [String] = [],
        scopes: [String] = [], claims: [String: String] = [:]
    ) {
        self.anyGroup = anyGroup
        self.allGroups = allGroups
        self.emails = emails
        self.emailDomains = emailDomains
        self.scopes = scopes
        self.claims = claims
    }

    public var isEmpty: Bool {
        anyGroup.isEmpty && allGroups.isEmpty && emails.isEmpty && emailDomains.isEmpty && scopes.isEmpty
            && claims.isEmpty
    }
}

extension ProviderConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Never shows `client_secret` or the shared secret: configs get printed and logged.
    public var description: String {
        "ProviderConfig(id: \(id), issuer: \(issuer), jwks_uri: \(jwksURI ?? "discovery"), client_id: \(clientID ?? "-"), client_secret: \(clientSecret == nil ? "-" : "<redacted>"), shared_secret: \(sharedSecret == nil ? "-" : "<redacted>"), audiences: \(audiences), algorithms: \(algorithms.map(\.rawValue).sorted()))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "id": id, "issuer": issuer, "jwksURI": jwksURI as Any, "clientID": clientID as Any,
                "clientSecret": clientSecret == nil ? "-" : "<redacted>",
                "sharedSecret": sharedSecret == nil ? "-" : "<redacted>", "audiences": audiences,
                "algorithms": algorithms.map(\.rawValue).sorted(), "clockSkew": clockSkew, "claims": claims,
            ])
    }
}
