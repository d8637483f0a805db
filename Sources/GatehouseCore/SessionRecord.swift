/// What a browser session holds (serialised compactly as JSON with short keys, then sealed by
/// `CookieSealer`). Only the claims the routes need are kept, so the cookie stays small.
public struct SessionRecord: Sendable, Equatable {
    public var providerID: String
    /// Random id of this login (survives refreshes), for logs and the refresh single flight.
    public var sessionID: String
    public var claims: [String: JSONValue]
    /// Seconds since the epoch.
    public var createdAt: Int64
    /// Absolute end of the session (`session.lifetime` after the login).
    public var expiresAt: Int64
    /// When the access token expires; a refresh is due from then on.
    public var accessTokenExpiresAt: Int64
    public var accessToken: String?
    public var refreshToken: String?
    /// Kept only when sign-out needs it (`id_token_hint`).
    public var idToken: String?

    public init(
        providerID: String, sessionID: String, claims: [String: JSONValue], createdAt: Int64, expiresAt: Int64,
        accessTokenExpiresAt: Int64, accessToken: String? = nil, refreshToken: String? = nil, idToken: String? = nil
    ) {
        self.providerID = providerID
        self.sessionID = sessionID
        self.claims = claims
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.idToken = idToken
    }

    public func encoded() -> [UInt8] {
        var o: [String: JSONValue] = [
            "v": .number(1), "p": .string(providerID), "s": .string(sessionID), "c": .object(claims),
            "i": .number(Double(createdAt)), "e": .number(Double(expiresAt)),
            "a": .number(Double(accessTokenExpiresAt)),
        ]
        if let accessToken { o["at"] = .string(accessToken) }
        if let refreshToken { o["rt"] = .string(refreshToken) }
        if let idToken { o["it"] = .string(idToken) }
        return Array(JSONValue.object(o).serialized.utf8)
    }

    public static func decode(_ bytes: [UInt8]) -> SessionRecord? {
        guard let value = try? JSONValue.parse(bytes), case .object(let o) = value, o["v"] == .number(1),
            let p = o["p"]?.stringValue, let s = o["s"]?.stringValue, case .object(let c)? = o["c"],
            let i = o["i"]?.numberValue, let e = o["e"]?.numberValue, let a = o["a"]?.numberValue,
            abs(i) < 1e12, abs(e) < 1e12, abs(a) < 1e12
        else { return nil }
        return SessionRecord(
            providerID: p, sessionID: s, claims: c, createdAt: Int64(i), expiresAt: Int64(e),
            accessTokenExpiresAt: Int64(a), accessToken: o["at"]?.stringValue, refreshToken: o["rt"]?.stringValue,
            idToken: o["it"]?.stringValue)
    }

    /// The identity the routes see, built from the stored claims with the provider's claim mapping.
    public func identity(mapping: ClaimMapping) -> Identity {
        Identity(providerID: providerID, claims: .object(claims), mapping: mapping, expiresAt: expiresAt)
    }

    /// Keeps only the top-level claims named by `paths` (dotted paths keep their whole first segment), plus
    /// `sub` and `email_verified`.
    public static func reduce(_ claims: [String: JSONValue], keeping paths: Set<String>) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (key, value) in claims {
            if key == "sub" || key == "email_verified" || paths.contains(key)
                || paths.contains(where: { $0.hasPrefix(key + ".") })
            {
                out[key] = value
            }
        }
        return out
    }
}

/// One browser login in progress, kept in its own short-lived sealed cookie until the callback.
public struct LoginTransaction: Sendable, Equatable {
    public static let lifetime: Int64 = 600

    public var state: String
    public var nonce: String
    public var codeVerifier: String
    public var returnURL: String
    public var providerID: String
    public var createdAt: Int64

    public init(
        state: String, nonce: String, codeVerifier: String, returnURL: String, providerID: String, createdAt: Int64
    ) {
        self.state = state
        self.nonce = nonce
        self.codeVerifier = codeVerifier
        self.returnURL = returnURL
        self.providerID = providerID
        self.createdAt = createdAt
    }

    public func encoded() -> [UInt8] {
        Array(
            JSONValue.object([
                "s": .string(state), "n": .string(nonce), "v": .string(codeVerifier), "r": .string(returnURL),
                "p": .string(providerID), "t": .number(Double(createdAt)),
            ]).serialized.utf8)
    }

    public static func decode(_ bytes: [UInt8]) -> LoginTransaction? {
        guard let value = try? JSONValue.parse(bytes), let s = value["s"]?.stringValue,
            let n = value["n"]?.stringValue, let v = value["v"]?.stringValue, let r = value["r"]?.stringValue,
            let p = value["p"]?.stringValue, let t = value["t"]?.numberValue, abs(t) < 1e12
        else { return nil }
        return LoginTransaction(state: s, nonce: n, codeVerifier: v, returnURL: r, providerID: p, createdAt: Int64(t))
    }

    public func isLive(now: Int64) -> Bool { now >= createdAt - 60 && now < createdAt + Self.lifetime }
}
