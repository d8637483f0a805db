import Crypto
import GatehouseCore

/// Validates an ID token from the token endpoint (OpenID Connect Core §3.1.3.7): the JWT checks of
/// `TokenVerifier` with `aud` required to contain the client id (other configured audiences do not count),
/// then `azp` (when present, or when there are several audiences) equals the client id, `nonce` equals the
/// login's, and `at_hash` (when present) matches the access token.
public struct IDTokenValidator: Sendable {
    public enum Outcome: Sendable, Equatable {
        case valid(claims: [String: JSONValue])
        case unknownKeyID
        case rejected(String)
    }

    public init() {}

    public func validate(
        idToken: String, accessToken: String?, nonce: String?, provider: ProviderConfig, keys: KeySet?, now: Int64
    ) -> Outcome {
        guard let clientID = provider.clientID else { return .rejected("provider has no client_id") }
        var config = provider
        config.audiences = []
        config.acceptedTypes = []
        let outcome = TokenVerifier().verify(
            token: idToken, providers: [.init(config: config, keys: keys)], now: now, requireUser: false)
        let claims: [String: JSONValue]
        switch outcome {
        case .verified(let identity, _):
            guard case .object(let c) = identity.claims else { return .rejected("malformed claims") }
            claims = c
        case .unknownKeyID: return .unknownKeyID
        case .keysUnavailable: return .rejected("provider keys unavailable")
        case .rejected(let why): return .rejected("id token: \(why)")
        }
        guard claims["sub"]?.stringValue?.isEmpty == false else { return .rejected("id token: missing sub") }
        let audienceCount: Int
        if case .array(let items)? = claims["aud"] { audienceCount = items.count } else { audienceCount = 1 }
        if let azp = claims["azp"] {
            guard azp.stringValue == clientID else { return .rejected("id token: azp is not our client") }
        } else if audienceCount > 1 {
            return .rejected("id token: several audiences and no azp")
        }
        if let nonce {
            guard let got = claims["nonce"]?.stringValue, LoginRandom.constantTimeEqual(got, nonce) else {
                return .rejected("id token: nonce mismatch")
            }
        }
        if let atHash = claims["at_hash"] {
            guard let accessToken, let expected = Self.atHash(accessToken, idToken: idToken),
                atHash.stringValue == expected
            else { return .rejected("id token: at_hash mismatch") }
        }
        return .valid(claims: claims)
    }

    /// base64url of the left half of the hash of the access token, the hash chosen by the ID token's `alg`.
    static func atHash(_ accessToken: String, idToken: String) -> String? {
        guard let headerPart = idToken.split(separator: ".").first, let header = Base64URL.decode(headerPart.utf8),
            let alg = (try? JSONValue.parse(header))?["alg"]?.stringValue
        else { return nil }
        let input = Array(accessToken.utf8)
        let digest: [UInt8]
        switch alg {
        case "RS256", "PS256", "ES256", "HS256": digest = Array(SHA256.hash(data: input))
        case "RS384", "PS384", "ES384", "HS384": digest = Array(SHA384.hash(data: input))
        case "RS512", "PS512", "ES512", "HS512", "EdDSA": digest = Array(SHA512.hash(data: input))
        default: return nil
        }
        return Base64URL.encode(digest.prefix(digest.count / 2))
    }
}
