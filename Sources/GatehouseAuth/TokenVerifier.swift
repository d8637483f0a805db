import Crypto
import GatehouseCore

/// Verifies compact JWS bearer tokens (RFC 7515, RFC 7519) for a set of providers, following RFC 8725:
/// only three-segment compact JWS; the algorithm must be allowed for the provider and bound to the selected
/// key; `none`, `crit`, JWE and `b64` tokens are refused; `jwk`/`jku`/`x5u`/`x5c` are never used to find a
/// key; the unverified `iss` only chooses whose keys to try. Pure: keys and the time come in as values.
public struct TokenVerifier: Sendable {
    public static let maxTokenBytes = 16 * 1024

    public enum Outcome: Sendable {
        case verified(Identity, keyGeneration: UInt64)
        /// The token names a `kid` absent from the provider's current key set: a refresh may help.
        case unknownKeyID(providerID: String)
        case keysUnavailable(providerID: String)
        case rejected(String)
    }

    /// The per-provider view the verifier needs: its config and its current keys (nil = never fetched).
    public struct ProviderKeys: Sendable {
        public let config: ProviderConfig
        public let keys: KeySet?
        public init(config: ProviderConfig, keys: KeySet?) {
            self.config = config
            self.keys = keys
        }
    }

    public init() {}

    /// `requireUser`: the provider's user claim (`claims.user`, default `sub`) must be a non-empty string. Off
    /// only for ID tokens, whose user may come from userinfo (the login checks the merged claims).
    public func verify(token: String, providers: [ProviderKeys], now: Int64, requireUser: Bool = true) -> Outcome {
        guard token.utf8.count <= Self.maxTokenBytes else { return .rejected("token too large") }
        // Exactly three base64url segments; the first two joined by '.' are the signing input. Split and decoded
        // on the token's contiguous bytes (no per-byte generic iteration).
        var text = token
        enum Split {
            case parts([UInt8], [UInt8], [UInt8], signingInput: [UInt8])
            case notCompact, badBase64
        }
        let split: Split = text.withUTF8 { buf in
            var dots: (Int, Int) = (-1, -1)
            for i in 0..<buf.count where buf[i] == UInt8(ascii: ".") {
                if dots.0 < 0 {
                    dots.0 = i
                } else if dots.1 < 0 {
                    dots.1 = i
                } else {
                    return .notCompact  // more than two dots
                }
            }
            guard dots.1 > dots.0 + 1, dots.0 > 0 else { return .notCompact }  // an empty header or payload, < 3 parts
            guard let header = Base64URL.decode(bytes: UnsafeBufferPointer(rebasing: buf[0..<dots.0])),
                let payload = Base64URL.decode(bytes: UnsafeBufferPointer(rebasing: buf[(dots.0 + 1)..<dots.1])),
                let signature = Base64URL.decode(bytes: UnsafeBufferPointer(rebasing: buf[(dots.1 + 1)...]))
            else { return .badBase64 }
            return .parts(
                header, payload, signature, signingInput: Array(UnsafeBufferPointer(rebasing: buf[0..<dots.1])))
        }
        let headerBytes: [UInt8]
        let payloadBytes: [UInt8]
        let signature: [UInt8]
        let signingInput: [UInt8]
        switch split {
        case .notCompact: return .rejected("not a compact JWS")
        case .badBase64: return .rejected("malformed base64url")
        case .parts(let h, let p, let sig, let input):
            (headerBytes, payloadBytes, signature, signingInput) = (h, p, sig, input)
        }
        guard !signature.isEmpty else { return .rejected("missing signature") }
        guard let header = try? JSONValue.parse(headerBytes), case .object(let h) = header else {
            return .rejected("malformed header")
        }
        guard let algText = h["alg"]?.stringValue else { return .rejected("missing alg") }
        if algText.lowercased() == "none" { return .rejected("alg none is not accepted") }
        guard let alg = JWTAlgorithm(rawValue: algText) else { return .rejected("unsupported alg") }
        if h["crit"] != nil { return .rejected("unsupported critical header") }
        if h["enc"] != nil || h["zip"] != nil { return .rejected("encrypted tokens are not accepted") }
        if h["b64"] != nil { return .rejected("unsupported header b64") }
        let kid: String?
        switch h["kid"] {
        case nil: kid = nil
        case .string(let k)?: kid = k
        default: return .rejected("malformed kid")
        }
        guard let claims = try? JSONValue.parse(payloadBytes), case .object(let c) = claims else {
            return .rejected("malformed claims")
        }
        guard let iss = c["iss"]?.stringValue else { return .rejected("missing iss") }
        let candidates = providers.filter { $0.config.issuer == iss }
        guard !candidates.isEmpty else { return .rejected("untrusted issuer") }
        var failure: Outcome = .rejected("invalid signature")
        for provider in candidates {
            let outcome = verify(
                provider: provider, alg: alg, kid: kid, typ: h["typ"]?.stringValue, signingInput: signingInput,
                signature: signature, claims: claims, now: now, requireUser: requireUser)
            switch outcome {
            case .verified: return outcome
            // A provider that may learn the key on refresh (or has no keys yet) outranks a plain rejection.
            case .unknownKeyID, .keysUnavailable: failure = outcome
            case .rejected: if case .rejected = failure { failure = outcome }
            }
        }
        return failure
    }

    func verify(
        provider: ProviderKeys, alg: JWTAlgorithm, kid: String?, typ: String?, signingInput input: [UInt8],
        signature: [UInt8], claims: JSONValue, now: Int64, requireUser: Bool = true
    ) -> Outcome {
        let config = provider.config
        guard config.algorithms.contains(alg) else { return .rejected("algorithm not allowed") }
        if !config.acceptedTypes.isEmpty {
            guard let typ, config.acceptedTypes.contains(where: { $0.lowercased() == typ.lowercased() }) else {
                return .rejected("unexpected typ")
            }
        }
        var generation: UInt64 = 0
        let candidates: [VerificationKey]
        if alg.isSymmetric {
            guard let secret = config.sharedSecret else { return .rejected("algorithm not allowed") }
            candidates = [VerificationKey(kid: nil, material: .hmac(SymmetricKey(data: secret)), algorithms: [alg])]
        } else {
            guard let keys = provider.keys else { return .keysUnavailable(providerID: config.id) }
            generation = keys.generation
            if let kid {
                let named = keys.keys(kid: kid)
                if named.isEmpty { return .unknownKeyID(providerID: config.id) }
                candidates = named.filter { $0.algorithms.contains(alg) }
                if candidates.isEmpty { return .rejected("algorithm does not match the key") }
            } else {
                candidates = keys.keys.filter { $0.algorithms.contains(alg) }
                if candidates.isEmpty { return .rejected("no key for this algorithm") }
            }
        }
        guard candidates.contains(where: { $0.verify(signature, over: input, algorithm: alg) }) else {
            return .rejected("invalid signature")
        }
        // Claims (RFC 7519 §4.1), checked only after the signature.
        let skew = config.clockSkew.nanoseconds / 1_000_000_000
        guard let exp = claims["exp"]?.numberValue else { return .rejected("missing exp") }
        guard Double(now) <= exp + Double(skew) else { return .rejected("token expired") }
        if let nbfValue = claims["nbf"] {
            guard let nbf = nbfValue.numberValue else { return .rejected("malformed nbf") }
            guard nbf <= Double(now + skew) else { return .rejected("token not yet valid") }
        }
        if let iatValue = claims["iat"] {
            guard let iat = iatValue.numberValue else { return .rejected("malformed iat") }
            guard iat <= Double(now + skew) else { return .rejected("token issued in the future") }
        }
        let accepted = config.acceptedAudiences
        guard !accepted.isEmpty else { return .rejected("no audience configured") }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let a)?: audiences = [a]
        case .array(let items)?:
            audiences = items.compactMap(\.stringValue)
            guard audiences.count == items.count else { return .rejected("malformed aud") }
        default: return .rejected("missing aud")
        }
        guard audiences.contains(where: accepted.contains) else { return .rejected("audience not accepted") }
        if requireUser, config.claims.mappedUser(in: claims) == nil { return .rejected("token has no subject") }
        let expiresAt = exp >= Double(Int64.max) ? Int64.max : Int64(exp)
        let identity = Identity(providerID: config.id, claims: claims, mapping: config.claims, expiresAt: expiresAt)
        return .verified(identity, keyGeneration: generation)
    }
}
