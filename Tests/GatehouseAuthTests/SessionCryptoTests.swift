import Crypto
import Foundation
import GatehouseCore
import Testing

@testable import GatehouseAuth

@Suite struct CookieSealerTests {
    let a = [UInt8](repeating: 1, count: 32)
    let b = [UInt8](repeating: 2, count: 32)

    @Test func roundTripAndPurposeBinding() throws {
        let sealer = CookieSealer(secrets: [a])
        let sealed = try #require(sealer.seal(Array("hello".utf8), purpose: .session))
        #expect(sealer.open(sealed, purpose: .session) == Array("hello".utf8))
        #expect(sealer.open(sealed, purpose: .login) == nil)
        // Two seals of the same plaintext differ (random nonce).
        #expect(sealer.seal(Array("hello".utf8), purpose: .session) != sealed)
    }

    @Test func everyTamperedByteFailsToOpen() throws {
        let sealer = CookieSealer(secrets: [a])
        let sealed = try #require(sealer.seal(Array("some session".utf8), purpose: .session))
        var bytes = try #require(Base64URL.decode(sealed.utf8))
        for i in bytes.indices {
            bytes[i] ^= 0x01
            #expect(sealer.open(Base64URL.encode(bytes), purpose: .session) == nil, "byte \(i)")
            bytes[i] ^= 0x01
        }
        #expect(sealer.open(String(sealed.dropLast(3)), purpose: .session) == nil)
        #expect(sealer.open("", purpose: .session) == nil)
        #expect(sealer.open("!!!not base64!!!", purpose: .session) == nil)
        #expect(sealer.open(String(repeating: "A", count: 100_000), purpose: .session) == nil)
    }

    @Test func rotation() throws {
        let old = CookieSealer(secrets: [a])
        let rotated = CookieSealer(secrets: [b, a])
        let oldCookie = try #require(old.seal([1, 2, 3], purpose: .session))
        #expect(rotated.open(oldCookie, purpose: .session) == [1, 2, 3])
        let newCookie = try #require(rotated.seal([4], purpose: .session))
        #expect(old.open(newCookie, purpose: .session) == nil)  // sealed with the new first secret
        #expect(CookieSealer(secrets: [b]).open(newCookie, purpose: .session) == [4])
        // A foreign key: nothing opens.
        #expect(CookieSealer(secrets: [[UInt8](repeating: 3, count: 32)]).open(oldCookie, purpose: .session) == nil)
    }

    @Test func pkceChallengeMatchesRFC7636AppendixB() {
        #expect(LoginRandom.codeChallenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(LoginRandom.token().utf8.count == 43)
        #expect(LoginRandom.constantTimeEqual("abc", "abc"))
        #expect(!LoginRandom.constantTimeEqual("abc", "abd"))
        #expect(!LoginRandom.constantTimeEqual("abc", "abcd"))
    }
}

@Suite struct IDTokenValidatorTests {
    let keys = TestKeys.shared
    let provider = ProviderConfig(id: "p", issuer: "https://idp.test", clientID: "gate", audiences: ["api://other"])

    func claims(aud: String = "\"gate\"", nonce: String = "n1", extra: String = "") -> String {
        let now = Int(Date().timeIntervalSince1970)
        return #"{"iss":"https://idp.test","sub":"alice","aud":\#(aud),"exp":\#(now + 300),"iat":\#(now),"nonce":"\#(nonce)"\#(extra)}"#
    }

    func validate(_ token: String, accessToken: String? = "at", nonce: String? = "n1") -> IDTokenValidator.Outcome {
        IDTokenValidator().validate(
            idToken: token, accessToken: accessToken, nonce: nonce, provider: provider, keys: keys.keySet(),
            now: Int64(Date().timeIntervalSince1970))
    }

    @Test func validTokenAndAtHash() throws {
        let atHash = Base64URL.encode(Array(SHA256.hash(data: Array("at".utf8))).prefix(16))
        let token = keys.token(alg: "ES256", kid: "p256", claims: claims(extra: #","at_hash":"\#(atHash)""#))
        guard case .valid(let c) = validate(token) else { Issue.record("expected valid"); return }
        #expect(c["sub"] == .string("alice"))
    }

    @Test(arguments: [
        ("nonce", "id token: nonce mismatch"), ("aud-other", "id token: audience not accepted"),
        ("azp", "id token: azp is not our client"), ("multi-aud", "id token: several audiences and no azp"),
        ("at_hash", "id token: at_hash mismatch"),
    ])
    func rejections(_ kind: String, _ expected: String) {
        let token: String
        switch kind {
        case "nonce": token = keys.token(alg: "RS256", kid: "rsa", claims: claims(nonce: "other"))
        case "aud-other": token = keys.token(alg: "RS256", kid: "rsa", claims: claims(aud: "\"api://other\""))
        case "azp": token = keys.token(alg: "RS256", kid: "rsa", claims: claims(extra: #","azp":"someone""#))
        case "multi-aud": token = keys.token(alg: "RS256", kid: "rsa", claims: claims(aud: #"["gate","x"]"#))
        default: token = keys.token(alg: "RS256", kid: "rsa", claims: claims(extra: #","at_hash":"AAAA""#))
        }
        #expect(validate(token) == .rejected(expected))
    }
}
