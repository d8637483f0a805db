import Crypto
import Foundation
import GatehouseCore
import Testing

@testable import GatehouseAuth

/// RFC 7520 (JOSE Cookbook) §4.1-4.4 compact JWS examples, extracted by scripts/jwt/rfc7520_vectors.py from
/// the test data jwcrypto ships. Their payload is prose, not claims, so these check the signature layer:
/// key parsing, algorithm binding and the signature maths against an independent implementation's vectors.
@Suite struct RFC7520Tests {
    struct Vector {
        let section: String
        let alg: JWTAlgorithm
        let key: VerificationKey
        let jws: String
    }

    static func vectors() throws -> [Vector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rfc7520.json")
        let doc = try JSONValue.parse(Array(try Data(contentsOf: url)))
        guard case .array(let items)? = doc["vectors"] else { throw JSONParseError("no vectors") }
        return try items.map { item in
            guard let section = item["section"]?.stringValue, let algText = item["alg"]?.stringValue,
                let alg = JWTAlgorithm(rawValue: algText), let jws = item["jws"]?.stringValue
            else { throw JSONParseError("bad vector") }
            let key: VerificationKey
            if let secret = item["secret_jwk"]?["k"]?.stringValue, let bytes = Base64URL.decode(secret.utf8) {
                key = VerificationKey(kid: nil, material: .hmac(SymmetricKey(data: bytes)), algorithms: [alg])
            } else if let jwk = item["jwk"], case .success(let parsed) = JWKSParser.parseKey(jwk) {
                key = parsed
            } else {
                throw JSONParseError("bad key in \(section)")
            }
            return Vector(section: section, alg: alg, key: key, jws: jws)
        }
    }

    @Test func cookbookSignaturesVerify() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 4)
        for v in vectors {
            let parts = v.jws.split(separator: ".", omittingEmptySubsequences: false)
            #expect(parts.count == 3)
            let input = Array((parts[0] + "." + parts[1]).utf8)
            let signature = Base64URL.decode(parts[2].utf8) ?? []
            #expect(v.key.verify(signature, over: input, algorithm: v.alg), "RFC 7520 \(v.section) \(v.alg)")
            // the same signature fails for a modified input and for any other algorithm
            #expect(!v.key.verify(signature, over: input + [0x20], algorithm: v.alg))
            for other in JWTAlgorithm.allCases where other != v.alg {
                #expect(!v.key.verify(signature, over: input, algorithm: other), "\(v.section) accepted \(other)")
            }
        }
    }
}
