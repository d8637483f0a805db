import Crypto
import CryptoExtras
import Foundation
import GatehouseCore

@testable import GatehouseAuth

/// Test-side token minting with swift-crypto (independent library tests mint with Python's joserfc, see the
/// server tests). Private keys are generated per test run.
struct TestKeys {
    let rsa: _RSA.Signing.PrivateKey
    let p256 = P256.Signing.PrivateKey()
    let p384 = P384.Signing.PrivateKey()
    let p521 = P521.Signing.PrivateKey()
    let ed = Curve25519.Signing.PrivateKey()
    let attacker = P256.Signing.PrivateKey()

    static let shared = TestKeys()

    init() {
        rsa = (try? _RSA.Signing.PrivateKey(keySize: .bits2048)) ?? { fatalError("rsa keygen") }()
    }

    func b64(_ bytes: some Sequence<UInt8>) -> String { Base64URL.encode(Array(bytes)) }

    var jwks: String {
        let n = b64(rsa.publicKey.pkcs1DERRepresentation.rsaModulus)
        func ec(_ raw: Data, size: Int, crv: String, kid: String) -> String {
            let r = Array(raw)
            return #"{"kty":"EC","crv":"\#(crv)","kid":"\#(kid)","x":"\#(b64(r[0..<size]))","y":"\#(b64(r[size..<(2 * size)]))"}"#
        }
        let keys = [
            #"{"kty":"RSA","kid":"rsa","n":"\#(n)","e":"AQAB"}"#,
            ec(p256.publicKey.rawRepresentation, size: 32, crv: "P-256", kid: "p256"),
            ec(p384.publicKey.rawRepresentation, size: 48, crv: "P-384", kid: "p384"),
            ec(p521.publicKey.rawRepresentation, size: 66, crv: "P-521", kid: "p521"),
            #"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"\#(b64(ed.publicKey.rawRepresentation))"}"#,
            #"{"kty":"XYZ","kid":"future"}"#,
            #"{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"}"#,
        ]
        return #"{"keys":[\#(keys.joined(separator: ","))]}"#
    }

    func keySet(generation: UInt64 = 1) -> KeySet {
        (try? JWKSParser.parse(Array(jwks.utf8), generation: generation)) ?? KeySet(keys: [], generation: 0)
    }

    func token(alg: String, kid: String?, claims: String, extraHeader: String = "", hmacSecret: [UInt8]? = nil) -> String {
        var header = #"{"alg":"\#(alg)""#
        if let kid { header += #","kid":"\#(kid)""# }
        header += extraHeader + "}"
        let input = b64(Array(header.utf8)) + "." + b64(Array(claims.utf8))
        let data = Array(input.utf8)
        let sig: [UInt8]
        switch alg {
        case "RS256": sig = Array((try? rsa.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5))?.rawRepresentation ?? Data())
        case "RS512": sig = Array((try? rsa.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5))?.rawRepresentation ?? Data())
        case "PS256": sig = Array((try? rsa.signature(for: SHA256.hash(data: data), padding: .PSS))?.rawRepresentation ?? Data())
        case "ES256": sig = Array((try? p256.signature(for: SHA256.hash(data: data)))?.rawRepresentation ?? Data())
        case "ES384": sig = Array((try? p384.signature(for: SHA384.hash(data: data)))?.rawRepresentation ?? Data())
        case "ES512": sig = Array((try? p521.signature(for: SHA512.hash(data: data)))?.rawRepresentation ?? Data())
        case "EdDSA": sig = Array((try? ed.signature(for: data)) ?? Data())
        case "HS256":
            sig = Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: hmacSecret ?? [])))
        case "attacker-ES256": sig = Array((try? attacker.signature(for: SHA256.hash(data: data)))?.rawRepresentation ?? Data())
        default: sig = []
        }
        return input + "." + b64(sig)
    }
}

extension Data {
    /// The modulus from a PKCS#1 RSAPublicKey DER (SEQUENCE { INTEGER n, INTEGER e }), leading zero removed.
    var rsaModulus: [UInt8] {
        let b = Array(self)
        var i = 0
        func length() -> Int {
            var l = Int(b[i]); i += 1
            if l & 0x80 != 0 {
                let n = l & 0x7f
                l = 0
                for _ in 0..<n { l = l << 8 | Int(b[i]); i += 1 }
            }
            return l
        }
        i += 1; _ = length()  // SEQUENCE
        i += 1; var l = length()  // INTEGER n
        var start = i
        if b[start] == 0 { start += 1; l -= 1 }
        return Array(b[start..<(start + l)])
    }
}

let issuer = "https://idp.example.com"
let now: Int64 = 1_800_000_000

func claims(
    iss: String = issuer, aud: String = #""api""#, exp: Int64? = now + 600, extra: String = ""
) -> String {
    var c = #"{"iss":"\#(iss)","aud":\#(aud),"sub":"alice","email":"alice@example.com","groups":["staff","admins"],"scope":"orders.read orders.write""#
    if let exp { c += #","exp":\#(exp)"# }
    return c + extra + "}"
}

func provider(
    algorithms: Set<JWTAlgorithm> = JWTAlgorithm.asymmetric, secret: [UInt8]? = nil, types: [String] = []
) -> ProviderConfig {
    ProviderConfig(
        id: "corp", issuer: issuer, audiences: ["api"], algorithms: algorithms, sharedSecret: secret,
        acceptedTypes: types)
}
