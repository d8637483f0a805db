import Foundation
import GatehouseCore
import Testing

@testable import GatehouseAuth

@Suite struct TokenVerifierTests {
    let keys = TestKeys.shared
    let verifier = TokenVerifier()

    func verify(_ token: String, provider p: ProviderConfig = provider(), keySet: KeySet? = nil) -> TokenVerifier.Outcome {
        verifier.verify(token: token, providers: [.init(config: p, keys: keySet ?? keys.keySet())], now: now)
    }

    func rejection(_ token: String, provider p: ProviderConfig = provider()) -> String? {
        if case .rejected(let why) = verify(token, provider: p) { return why }
        return nil
    }

    func verified(_ token: String, provider p: ProviderConfig = provider()) -> Identity? {
        if case .verified(let identity, _) = verify(token, provider: p) { return identity }
        return nil
    }

    @Test(arguments: [("RS256", "rsa"), ("RS512", "rsa"), ("PS256", "rsa"), ("ES256", "p256"), ("ES384", "p384"),
        ("ES512", "p521"), ("EdDSA", "ed")])
    func everyAlgorithmVerifies(alg: String, kid: String) {
        let identity = verified(keys.token(alg: alg, kid: kid, claims: claims()))
        #expect(identity?.user == "alice")
        #expect(identity?.email == "alice@example.com")
        #expect(identity?.groups == ["staff", "admins"])
        #expect(identity?.scopes == ["orders.read", "orders.write"])
        // without kid the key is found by algorithm among the provider's own keys
        #expect(verified(keys.token(alg: alg, kid: nil, claims: claims())) != nil)
    }

    @Test func hmacOnlyWithSharedSecret() {
        let secret = Array(repeating: UInt8(7), count: 32)
        let token = keys.token(alg: "HS256", kid: nil, claims: claims(), hmacSecret: secret)
        #expect(rejection(token) == "algorithm not allowed")
        let hs = provider(algorithms: JWTAlgorithm.asymmetric.union([.hs256]), secret: secret)
        #expect(verified(token, provider: hs) != nil)
        let wrong = keys.token(alg: "HS256", kid: nil, claims: claims(), hmacSecret: Array(repeating: 8, count: 32))
        #expect(rejection(wrong, provider: hs) == "invalid signature")
    }

    @Test func rsaToHmacConfusionIsRefused() {
        // HS256 signed with the RSA public key bytes as the secret (the classic confusion attack).
        let publicBytes = Array(keys.rsa.publicKey.pkcs1DERRepresentation)
        let token = keys.token(alg: "HS256", kid: "rsa", claims: claims(), hmacSecret: publicBytes)
        #expect(rejection(token) == "algorithm not allowed")
        let pem = Array(keys.rsa.publicKey.pemRepresentation.utf8)
        #expect(rejection(keys.token(alg: "HS256", kid: "rsa", claims: claims(), hmacSecret: pem)) == "algorithm not allowed")
    }

    @Test func algorithmIsBoundToTheKey() {
        // ES256 header naming the RSA key: refused before any signature maths.
        #expect(rejection(keys.token(alg: "ES256", kid: "rsa", claims: claims())) == "algorithm does not match the key")
        #expect(rejection(keys.token(alg: "RS256", kid: "p256", claims: claims())) == "algorithm does not match the key")
        let onlyES = provider(algorithms: [.es256])
        #expect(rejection(keys.token(alg: "RS256", kid: "rsa", claims: claims()), provider: onlyES) == "algorithm not allowed")
    }

    @Test(arguments: ["none", "None", "NONE", "nOnE"])
    func algNoneInAnySpelling(alg: String) {
        let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","kid":"rsa"}"#.utf8))
        let payload = Base64URL.encode(Array(claims().utf8))
        #expect(rejection(header + "." + payload + ".") == "missing signature" || rejection(header + "." + payload + ".") == "alg none is not accepted")
        #expect(rejection(header + "." + payload + ".c2ln") == "alg none is not accepted")
    }

    @Test func claimChecks() {
        func tok(_ c: String) -> String { keys.token(alg: "ES256", kid: "p256", claims: c) }
        #expect(rejection(tok(claims(exp: now - 61))) == "token expired")
        #expect(verified(tok(claims(exp: now - 59))) != nil)  // within the 60 s clock skew
        #expect(rejection(tok(claims(exp: nil))) == "missing exp")
        #expect(rejection(tok(claims(extra: #","nbf":\#(now + 120)"#))) == "token not yet valid")
        #expect(rejection(tok(claims(extra: #","iat":\#(now + 120)"#))) == "token issued in the future")
        #expect(rejection(tok(claims(iss: "https://evil.example.com"))) == "untrusted issuer")
        #expect(rejection(tok(claims(iss: issuer + "/"))) == "untrusted issuer")
        #expect(rejection(tok(claims(aud: #""other""#))) == "audience not accepted")
        #expect(rejection(tok(claims(aud: #"["a","b"]"#))) == "audience not accepted")
        #expect(verified(tok(claims(aud: #"["a","api"]"#))) != nil)
        #expect(rejection(tok(claims(aud: #"[1,"api"]"#))) == "malformed aud")
        #expect(rejection(tok(#"{"iss":"\#(issuer)","exp":\#(now + 60)}"#)) == "missing aud")
        #expect(rejection(tok(claims(extra: #","exp":1"#))) == "malformed claims")  // duplicate key
    }

    @Test func tamperingAndMalformedTokens() {
        let good = keys.token(alg: "ES256", kid: "p256", claims: claims())
        let parts = good.split(separator: ".").map(String.init)
        let evilPayload = Base64URL.encode(Array(claims(extra: #","role":"admin""#).utf8))
        #expect(rejection(parts[0] + "." + evilPayload + "." + parts[2]) == "invalid signature")
        #expect(rejection(parts[0] + "." + parts[1] + ".") == "missing signature")
        #expect(rejection(parts[0] + "." + parts[1]) == "not a compact JWS")
        #expect(rejection(good + ".x.y") == "not a compact JWS")  // JWE-shaped, five segments
        #expect(rejection(parts[0] + "=." + parts[1] + "." + parts[2]) == "malformed base64url")
        #expect(rejection(parts[0] + "." + parts[1] + "." + parts[2] + "+") == "malformed base64url")
        #expect(rejection(String(repeating: "a", count: 17000)) == "token too large")
        // ECDSA r = s = 0 (CVE-2022-21449)
        let zeros = Base64URL.encode([UInt8](repeating: 0, count: 64))
        #expect(rejection(parts[0] + "." + parts[1] + "." + zeros) == "invalid signature")
    }

    @Test func headerParametersNeverChooseKeys() {
        let attackerJWK = #","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},"jku":"http://127.0.0.1:1/jwks","x5u":"http://127.0.0.1:1/cert""#
        let forged = keys.token(alg: "attacker-ES256", kid: "p256", claims: claims(), extraHeader: attackerJWK)
        let fixed = forged.replacingOccurrences(of: "attacker-ES256", with: "ES256")
        _ = fixed
        // header says alg attacker-ES256 (unsupported) -> rebuild with a proper alg but the attacker's signature
        let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"p256"\#(attackerJWK)}"#.utf8))
        let payload = Base64URL.encode(Array(claims().utf8))
        let forgedSig = forged.split(separator: ".")[2]
        #expect(rejection(header + "." + payload + "." + forgedSig) == "invalid signature")
        #expect(rejection(keys.token(alg: "ES256", kid: "p256", claims: claims(), extraHeader: #","crit":["exp"]"#))
            == "unsupported critical header")
        #expect(rejection(keys.token(alg: "ES256", kid: "p256", claims: claims(), extraHeader: #","enc":"A128GCM""#))
            == "encrypted tokens are not accepted")
        #expect(rejection(keys.token(alg: "ES256", kid: "p256", claims: claims(), extraHeader: #","kid":"again""#))
            == "malformed header")
    }

    @Test func unknownKidAsksForRefreshAndMissingKeysAreUnavailable() {
        let token = keys.token(alg: "ES256", kid: "rotated", claims: claims())
        guard case .unknownKeyID(let id) = verify(token) else {
            Issue.record("expected unknownKeyID")
            return
        }
        #expect(id == "corp")
        let outcome = verifier.verify(token: keys.token(alg: "ES256", kid: "p256", claims: claims()), providers: [.init(config: provider(), keys: nil)], now: now)
        guard case .keysUnavailable = outcome else {
            Issue.record("expected keysUnavailable")
            return
        }
    }

    @Test func typCheck() {
        let p = provider(types: ["at+jwt"])
        #expect(verified(keys.token(alg: "ES256", kid: "p256", claims: claims(), extraHeader: #","typ":"AT+JWT""#), provider: p) != nil)
        #expect(rejection(keys.token(alg: "ES256", kid: "p256", claims: claims(), extraHeader: #","typ":"JWT""#), provider: p) == "unexpected typ")
    }

    @Test func keySetParsingSkipsBadKeysOnly() {
        let set = keys.keySet()
        #expect(set.keys.count == 5)
        #expect(set.skipped.count == 2)
        #expect(set.keys.first { $0.kid == "p256" }?.algorithms == [.es256])
        #expect(set.keys.first { $0.kid == "rsa" }?.algorithms.contains(.ps256) == true)
        // a JWK with alg pins that algorithm only
        let pinned = try? JWKSParser.parse(Array(keys.jwks.replacingOccurrences(of: #""kid":"rsa""#, with: #""kid":"rsa","alg":"RS256""#).utf8), generation: 1)
        #expect(pinned?.keys.first { $0.kid == "rsa" }?.algorithms == [.rs256])
        #expect((try? JWKSParser.parse(Array(#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#.utf8), generation: 1))?.keys.isEmpty == true)
        #expect((try? JWKSParser.parse(Array(#"{"nokeys":[]}"#.utf8), generation: 1)) == nil)
    }
}

@Suite struct EncodingTests {
    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode(Array("aGVsbG8".utf8)) == Array("hello".utf8))
        #expect(Base64URL.decode(Array("aGVsbG8=".utf8)) == nil)
        #expect(Base64URL.decode(Array("aGVs bG8".utf8)) == nil)
        #expect(Base64URL.decode(Array("aGVsbG9".utf8)) == nil)  // non-canonical trailing bits
        #expect(Base64URL.decode(Array("a".utf8)) == nil)
        #expect(Base64URL.decode(Array("+/8".utf8)) == nil)
        #expect(Base64URL.decode(Array("-_8".utf8)) == [0xfb, 0xff])
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
    }

    @Test func jsonIsStrict() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":1,"a":2}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":1} x"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":"\ud800"}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array("{\"a\":\"\u{1}\"}".utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(String(repeating: "[", count: 100).utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":01}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xff, 0x22]) }
        let v = try? JSONValue.parse(Array(#"{"a":{"b":["x",1,true]},"u":"\u00e9\ud83d\ude00","n":-1.5e2}"#.utf8))
        #expect(v?.lookup(path: "a.b")?.stringList == ["x", "1", "true"])
        #expect(v?["u"]?.stringValue == "é😀")
        #expect(v?["n"]?.numberValue == -150)
        // Strings without escapes take the direct path; escapes, errors and edge cases take the byte path.
        let w = try? JSONValue.parse(Array(#"{"":"","q":"a\"b","s":"x\\","long":"abcdefghijklmnopqrstuvwxyz","e":"café"}"#.utf8))
        #expect(w?[""]?.stringValue == "")
        #expect(w?["q"]?.stringValue == "a\"b")
        #expect(w?["s"]?.stringValue == "x\\")
        #expect(w?["long"]?.stringValue == "abcdefghijklmnopqrstuvwxyz")
        #expect(w?["e"]?.stringValue == "caf\u{E9}")
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":"abc"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0x5C, 0x6E, 0xff, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x22]) }  // truncated sequence
        // A substring's bytes (contiguous) and a non-contiguous collection decode alike.
        let fromSlice = try? JSONValue.parse(#"xx{"k":[1]}"#.utf8.dropFirst(2))
        #expect(fromSlice != nil && fromSlice == (try? JSONValue.parse(Array(#"{"k":[1]}"#.utf8))))
        #expect(Base64URL.decode("xx-_8".utf8.dropFirst(2)) == [0xfb, 0xff])
        #expect(Base64URL.decode(AnyCollection(Array("-_8".utf8))) == [0xfb, 0xff])
    }
}
