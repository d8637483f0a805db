import Crypto
import GatehouseAuth
import GatehouseCore

/// JWT verification with a fixed key set, and cookies: parsing, stripping, sealing, session records.
enum AuthTargets {
    static let now: Int64 = 1_800_000_000
    static let hmacSecret = Array(SHA256.hash(data: Array("gatehouse-fuzz-hmac".utf8)))
    static let p256: P256.Signing.PrivateKey =
        (try? P256.Signing.PrivateKey(rawRepresentation: Array(SHA256.hash(data: Array("gatehouse-fuzz-p256".utf8)))))
        ?? P256.Signing.PrivateKey()

    /// Three providers, all for the audience `api`: HS256, ES256 by `kid`, and a machine-token provider whose
    /// user is `client_id`.
    static let providers: [TokenVerifier.ProviderKeys] = {
        let none = KeySet(keys: [], generation: 1)
        let es = KeySet(
            keys: [VerificationKey(kid: "k1", material: .p256(p256.publicKey), algorithms: [.es256])], generation: 1)
        return [
            .init(
                config: ProviderConfig(
                    id: "hs", issuer: "https://hs.example", audiences: ["api"], algorithms: [.hs256],
                    sharedSecret: hmacSecret),
                keys: none),
            .init(
                config: ProviderConfig(
                    id: "es", issuer: "https://es.example", audiences: ["api"], algorithms: [.es256]),
                keys: es),
            .init(
                config: ProviderConfig(
                    id: "m2m", issuer: "https://m2m.example", audiences: ["api"], algorithms: [.hs256],
                    sharedSecret: hmacSecret,
                    claims: ClaimMapping(user: "client_id")),
                keys: none),
        ]
    }()

    static let identityHeaders = [
        IdentityHeader(name: "X-Forwarded-User", claim: "user"),
        IdentityHeader(name: "X-Forwarded-Email", claim: "email"),
        IdentityHeader(name: "X-Forwarded-Groups", claim: "groups"),
    ]

    static func hs256(header: [UInt8], payload: [UInt8]) -> String {
        let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: hmacSecret))
        return input + "." + Base64URL.encode(Array(mac))
    }

    /// The first byte picks the shape: a raw token; a payload signed with the HS256 key under a fixed header;
    /// a header and a payload (split at the first NUL) signed with the HS256 key, so the fuzzer explores the
    /// header rules (alg, crit, b64, kid, typ) behind valid signatures.
    ///
    /// Properties of every verified token: it names a user (a non-empty string in the provider's user claim);
    /// its segments are canonical base64url (one token, one text: revocation and caches key on the text); its
    /// algorithm is one the provider allows and never `none`; it carries no `crit` or `b64`; it is not expired
    /// beyond the skew; the identity headers built from it carry each safe member once and nothing else.
    static func jwt(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        guard let mode = data.first else { return }
        let rest = Array(data.dropFirst())
        let token: String
        switch mode % 3 {
        case 0: token = String(decoding: rest, as: UTF8.self)
        case 1: token = hs256(header: Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8), payload: rest)
        default:
            let cut = rest.firstIndex(of: 0) ?? rest.count
            token = hs256(header: Array(rest[0..<cut]), payload: Array(rest[min(cut + 1, rest.count)...]))
        }
        guard case .verified(let identity, _) = TokenVerifier().verify(token: token, providers: providers, now: now)
        else { return }
        try require(identity.user.map { !$0.isEmpty } == true, "a token naming nobody was verified")
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        try require(segments.count == 3, "a token of \(segments.count) segments was verified")
        for segment in segments {
            let decoded = Base64URL.decode(Array(segment.utf8)) ?? []
            try require(Base64URL.encode(decoded) == segment, "a non-canonical segment \(segment) was verified")
        }
        guard let header = try? JSONValue.parse(Base64URL.decode(Array(segments[0].utf8)) ?? []),
            let alg = header["alg"]?.stringValue
        else { throw PropertyViolation("a token without a readable alg was verified") }
        let provider = providers.first { $0.config.id == identity.providerID }
        try require(
            alg != "none" && provider?.config.algorithms.contains { $0.rawValue == alg } == true,
            "algorithm \(alg) was accepted for \(identity.providerID)")
        try require(header["crit"] == nil && header["b64"] == nil, "a token with crit or b64 was verified")
        try require(identity.expiresAt > now - 60, "an expired token was verified")
        try checkIdentityHeaders(identity)
    }

    static func checkIdentityHeaders(_ identity: Identity) throws(PropertyViolation) {
        let (fields, _) = HeaderRules.identityHeaderFields(identityHeaders, identity: identity)
        for (name, value) in fields {
            try require(RequestValidation.isValidFieldValue(value), "\(name) carries a control byte")
            let claim = identityHeaders.first { $0.name == name }?.claim ?? ""
            let safe = identity.values(for: claim).filter(HeaderRules.isSafeIdentityMember)
            // How a naive receiver reads a list: split at commas, trim.
            let members = value.split(separator: ",", omittingEmptySubsequences: false).map {
                String($0.trimmingSpaces())
            }
            try require(members == safe, "\(name): \(value.debugDescription) splits into other members than \(safe)")
        }
    }

    static let sealer = CookieSealer(secrets: [
        Array(SHA256.hash(data: Array("gatehouse-fuzz-cookie-1".utf8))),
        Array(SHA256.hash(data: Array("gatehouse-fuzz-cookie-2".utf8))),
    ])
    static let names = SessionCookieNames(base: "_gatehouse")

    /// Properties: stripping Gatehouse's own cookies from a `Cookie` header leaves none of them and keeps every
    /// other pair in order; a cookie value that opens has exactly one text (canonical base64url) and opens for
    /// its purpose only; sealing round-trips; a session record or login transaction that decodes re-encodes to
    /// itself.
    static func cookie(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let text = String(decoding: data, as: UTF8.self)
        let pairs = Cookies.parse([("Cookie", text)])
        let isOwn: (Substring) -> Bool = { names.isOwn($0) }
        let kept = Cookies.removing(isOwn, from: [("Cookie", text)])
        let after = Cookies.parse(kept)
        try require(!after.contains { isOwn(Substring($0.name)) }, "an own cookie survived stripping")
        let others = pairs.filter { !isOwn(Substring($0.name)) }
        if pairs.count < Cookies.maxPairs {
            try require(
                after.map { "\($0.name)=\($0.value)" } == others.map { "\($0.name)=\($0.value)" },
                "stripping changed the other cookies")
        }
        for purpose in [CookieSealer.Purpose.session, .login] {
            guard let opened = sealer.open(text, purpose: purpose) else { continue }
            let raw = Base64URL.decode(Array(text.utf8)) ?? []
            try require(Base64URL.encode(raw) == text, "a non-canonical sealed value opened")
            let other: CookieSealer.Purpose = purpose == .session ? .login : .session
            try require(sealer.open(text, purpose: other) == nil, "a sealed value opened for both purposes")
            try require(sealer.open(text, purpose: purpose) == opened, "a sealed value opened two ways")
        }
        let bytes = Array(data)
        if let sealed = sealer.seal(bytes, purpose: .session) {
            try require(sealer.open(sealed, purpose: .session) == bytes, "sealing does not round-trip")
        }
        if let record = SessionRecord.decode(bytes) {
            try require(SessionRecord.decode(record.encoded()) == record, "a session record does not round-trip")
        }
        if let login = LoginTransaction.decode(bytes) {
            try require(LoginTransaction.decode(login.encoded()) == login, "a login transaction does not round-trip")
        }
    }
}
