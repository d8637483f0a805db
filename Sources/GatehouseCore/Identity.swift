/// Who a verified token (or session) says the caller is. Built only from verified claims.
///
/// A class (immutable, so Sendable): an identity is handed from the token cache through authentication, the
/// policy and the exchange on every request, and passing one reference costs one retain where a struct of
/// eight reference-counted fields cost eight.
public final class Identity: Sendable, Equatable {
    public static func == (a: Identity, b: Identity) -> Bool {
        a === b
            || (a.providerID == b.providerID && a.user == b.user && a.email == b.email && a.groups == b.groups
                && a.preferredUsername == b.preferredUsername && a.scopes == b.scopes && a.claims == b.claims
                && a.expiresAt == b.expiresAt)
    }

    public let providerID: String
    public let user: String?
    public let email: String?
    public let groups: [String]
    public let preferredUsername: String?
    public let scopes: Set<String>
    /// Every claim of the token, for `allow.claims` and identity headers naming other claims.
    public let claims: JSONValue
    /// `exp` in seconds since the epoch.
    public let expiresAt: Int64

    public init(providerID: String, claims: JSONValue, mapping: ClaimMapping, expiresAt: Int64) {
        self.providerID = providerID
        self.claims = claims
        self.expiresAt = expiresAt
        self.user = claims.lookup(path: mapping.user)?.scalarText
        // An address the provider says is unverified is not an identity fact (oauth2-proxy refuses it too);
        // tokens without `email_verified` (most access tokens) are taken as they are.
        if case .bool(false)? = claims["email_verified"] {
            self.email = nil
        } else {
            self.email = claims.lookup(path: mapping.email)?.stringValue
        }
        self.groups = claims.lookup(path: mapping.groups)?.stringList ?? []
        self.preferredUsername = claims.lookup(path: mapping.preferredUsername)?.stringValue
        var scopes: Set<String> = []
        if let scope = claims["scope"]?.stringValue {
            for s in scope.split(separator: " ") { scopes.insert(String(s)) }
        }
        if case .array = claims["scp"] {
            for s in claims["scp"]?.stringList ?? [] { scopes.insert(s) }
        } else if let scp = claims["scp"]?.stringValue {
            for s in scp.split(separator: " ") { scopes.insert(String(s)) }
        }
        self.scopes = scopes
    }

    /// The values of an identity field for header injection: the four mapped fields by name, any other name is
    /// looked up as a claim (dotted paths allowed).
    public func values(for field: String) -> [String] {
        switch field {
        case "user": return user.map { [$0] } ?? []
        case "email": return email.map { [$0] } ?? []
        case "groups": return groups
        case "preferred_username": return preferredUsername.map { [$0] } ?? []
        default: return claims.lookup(path: field)?.stringList ?? []
        }
    }
}
