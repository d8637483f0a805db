import Crypto
import CryptoExtras
import Foundation
import GatehouseCore

/// A public (or, for HS*, shared) key with the algorithms it may verify. The algorithm is bound to the key:
/// an RSA key never verifies ES256, a P-256 key only ES256, and a key whose JWK names an `alg` only that one.
public struct VerificationKey: Sendable {
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case hmac(SymmetricKey)
    }

    public let kid: String?
    public let material: Material
    public let algorithms: Set<JWTAlgorithm>

    public init(kid: String?, material: Material, algorithms: Set<JWTAlgorithm>) {
        self.kid = kid
        self.material = material
        self.algorithms = algorithms
    }

    /// Verifies `signature` over `input` with `algorithm`; false when the algorithm is not bound to this key.
    public func verify(_ signature: [UInt8], over input: [UInt8], algorithm: JWTAlgorithm) -> Bool {
        guard algorithms.contains(algorithm) else { return false }
        switch (material, algorithm) {
        case (.rsa(let key), .rs256), (.rsa(let key), .ps256):
            return Self.rsaValid(key, signature, SHA256.hash(data: input), algorithm)
        case (.rsa(let key), .rs384), (.rsa(let key), .ps384):
            return Self.rsaValid(key, signature, SHA384.hash(data: input), algorithm)
        case (.rsa(let key), .rs512), (.rsa(let key), .ps512):
            return Self.rsaValid(key, signature, SHA512.hash(data: input), algorithm)
        case (.p256(let key), .es256):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return false
            }
            return key.isValidSignature(sig, for: SHA256.hash(data: input))
        case (.p384(let key), .es384):
            guard signature.count == 96, let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else {
                return false
            }
            return key.isValidSignature(sig, for: SHA384.hash(data: input))
        case (.p521(let key), .es512):
            guard signature.count == 132, let sig = try? P521.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA512.hash(data: input))
        case (.ed25519(let key), .edDSA):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: input)
        case (.hmac(let key), .hs256):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        case (.hmac(let key), .hs384):
            return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        case (.hmac(let key), .hs512):
            return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        default:
            return false
        }
    }

    /// RS* use PKCS #1 v1.5 padding, PS* use PSS (RFC 7518 §3.3, §3.5).
    private static func rsaValid(
        _ key: _RSA.Signing.PublicKey, _ signature: [UInt8], _ digest: some Digest, _ algorithm: JWTAlgorithm
    ) -> Bool {
        let pss = algorithm == .ps256 || algorithm == .ps384 || algorithm == .ps512
        return key.isValidSignature(
            .init(rawRepresentation: signature), for: digest, padding: pss ? .PSS : .insecurePKCS1v1_5)
    }
}

/// A provider's verified key set, as fetched at one moment. Immutable; a refresh makes a new one.
public struct KeySet: Sendable {
    public let keys: [VerificationKey]
    /// Increases with every successful fetch; verified-token cache entries are tied to it.
    public let generation: UInt64
    /// Why individual JWKs were skipped (never fatal for the whole set).
    public let skipped: [String]

    public init(keys: [VerificationKey], generation: UInt64, skipped: [String] = []) {
        self.keys = keys
        self.generation = generation
        self.skipped = skipped
    }

    public func keys(kid: String) -> [VerificationKey] { keys.filter { $0.kid == kid } }
}

/// Parses a JWKS document (RFC 7517 §5) into verification keys. Keys that are malformed, of an unknown type,
/// meant for encryption (`use: enc`), private, symmetric, or RSA under 2048 bits are skipped with a reason:
/// one bad key never makes the whole set fail.
public enum JWKSParser {
    public static let maxBytes = 1 << 20

    public static func parse(_ data: [UInt8], generation: UInt64) throws(JSONParseError) -> KeySet {
        guard data.count <= maxBytes else { throw JSONParseError("key set too large") }
        let json = try JSONValue.parse(data)
        guard case .array(let items)? = json["keys"] else { throw JSONParseError("no keys array") }
        var keys: [VerificationKey] = []
        var skipped: [String] = []
        for (index, item) in items.prefix(100).enumerated() {
            switch parseKey(item) {
            case .success(let key): keys.append(key)
            case .failure(let why): skipped.append("keys[\(index)]: \(why.reason)")
            }
        }
        return KeySet(keys: keys, generation: generation, skipped: skipped)
    }

    static func bytes(_ value: JSONValue?) -> [UInt8]? {
        guard let s = value?.stringValue else { return nil }
        return Base64URL.decode(s.utf8)
    }

    static func parseKey(_ jwk: JSONValue) -> Result<VerificationKey, JSONParseError> {
        guard case .object = jwk else { return .failure(.init("not an object")) }
        let kid = jwk["kid"]?.stringValue
        if let use = jwk["use"]?.stringValue, use != "sig" { return .failure(.init("use is not sig")) }
        if jwk["d"] != nil { return .failure(.init("private key material")) }
        var declared: JWTAlgorithm?
        if let alg = jwk["alg"]?.stringValue {
            guard let a = JWTAlgorithm(rawValue: alg) else { return .failure(.init("unsupported alg")) }
            declared = a
        }
        func bound(_ family: Set<JWTAlgorithm>) -> Result<Set<JWTAlgorithm>, JSONParseError> {
            if let declared {
                return family.contains(declared)
                    ? .success([declared]) : .failure(.init("alg does not fit the key type"))
            }
            return .success(family)
        }
        switch jwk["kty"]?.stringValue {
        case "RSA":
            guard let n = bytes(jwk["n"]), let e = bytes(jwk["e"]) else { return .failure(.init("bad RSA parameters")) }
            guard let key = try? _RSA.Signing.PublicKey(n: n, e: e) else {
                return .failure(.init("RSA key rejected (under 2048 bits or invalid)"))
            }
            return bound([.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]).map {
                VerificationKey(kid: kid, material: .rsa(key), algorithms: $0)
            }
        case "EC":
            guard let x = bytes(jwk["x"]), let y = bytes(jwk["y"]) else { return .failure(.init("bad EC parameters")) }
            let point = x + y
            switch jwk["crv"]?.stringValue {
            case "P-256":
                guard x.count == 32, y.count == 32, let key = try? P256.Signing.PublicKey(rawRepresentation: point)
                else {
                    return .failure(.init("invalid P-256 point"))
                }
                return bound([.es256]).map { VerificationKey(kid: kid, material: .p256(key), algorithms: $0) }
            case "P-384":
                guard x.count == 48, y.count == 48, let key = try? P384.Signing.PublicKey(rawRepresentation: point)
                else {
                    return .failure(.init("invalid P-384 point"))
                }
                return bound([.es384]).map { VerificationKey(kid: kid, material: .p384(key), algorithms: $0) }
            case "P-521":
                guard x.count == 66, y.count == 66, let key = try? P521.Signing.PublicKey(rawRepresentation: point)
                else {
                    return .failure(.init("invalid P-521 point"))
                }
                return bound([.es512]).map { VerificationKey(kid: kid, material: .p521(key), algorithms: $0) }
            default:
                return .failure(.init("unsupported curve"))
            }
        case "OKP":
            guard jwk["crv"]?.stringValue == "Ed25519", let x = bytes(jwk["x"]), x.count == 32,
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x)
            else { return .failure(.init("unsupported or invalid OKP key")) }
            return bound([.edDSA]).map { VerificationKey(kid: kid, material: .ed25519(key), algorithms: $0) }
        case "oct":
            return .failure(.init("symmetric keys are never taken from a key set"))
        default:
            return .failure(.init("unsupported kty"))
        }
    }
}
