import GatehouseCore
import Testing

@testable import GatehouseAuth

/// A token that names nobody authenticates nobody: the user claim (`sub`, or the provider's `claims.user`) must
/// be present and a non-empty string, checked after the signature like every other claim.
@Suite struct SubjectTests {
    let keys = TestKeys.shared

    func outcome(_ payload: String, mapping: ClaimMapping = ClaimMapping()) -> TokenVerifier.Outcome {
        var p = provider()
        p.claims = mapping
        let token = keys.token(alg: "ES256", kid: "p256", claims: payload)
        return TokenVerifier().verify(token: token, providers: [.init(config: p, keys: keys.keySet())], now: now)
    }

    func payload(_ subject: String?) -> String {
        var c = #"{"iss":"\#(issuer)","aud":"api","exp":\#(now + 600)"#
        if let subject { c += #","sub":\#(subject)"# }
        return c + #","groups":["staff"]}"#
    }

    @Test(arguments: [nil, #""""#, "42", "true", "null", #"["alice"]"#, #"{"id":"alice"}"#])
    func tokenWithoutAStringSubjectIsRefused(subject: String?) {
        guard case .rejected(let why) = outcome(payload(subject)) else {
            Issue.record("accepted a token with sub \(subject ?? "absent")")
            return
        }
        #expect(why == "token has no subject")
    }

    @Test func aStringSubjectIsTheUser() {
        guard case .verified(let identity, _) = outcome(payload(#""alice""#)) else {
            Issue.record("refused a token with a subject")
            return
        }
        #expect(identity.user == "alice")
    }

    @Test func anExplicitUserClaimReplacesSub() {
        // Machine tokens: `claims.user: client_id` names the client; sub may be absent.
        let machine = #"{"iss":"\#(issuer)","aud":"api","exp":\#(now + 600),"client_id":"billing-job"}"#
        guard case .verified(let identity, _) = outcome(machine, mapping: ClaimMapping(user: "client_id")) else {
            Issue.record("refused a machine token with client_id")
            return
        }
        #expect(identity.user == "billing-job")
        // ...but the mapped claim must then be there, and a non-empty string: sub does not stand in for it.
        for bad in ["", #","client_id":"""#, #","client_id":7"#] {
            let p = #"{"iss":"\#(issuer)","aud":"api","exp":\#(now + 600),"sub":"alice"\#(bad)}"#
            guard case .rejected(let why) = outcome(p, mapping: ClaimMapping(user: "client_id")) else {
                Issue.record("accepted a token whose mapped user claim is \(bad)")
                continue
            }
            #expect(why == "token has no subject")
        }
        // A dotted path works the same way.
        let nested = #"{"iss":"\#(issuer)","aud":"api","exp":\#(now + 600),"ext":{"uid":"u-1"}}"#
        guard case .verified(let n, _) = outcome(nested, mapping: ClaimMapping(user: "ext.uid")) else {
            Issue.record("refused a nested user claim")
            return
        }
        #expect(n.user == "u-1")
    }

    @Test func theCheckComesAfterTheSignature() {
        // A forged token without sub is refused for its signature, not for its subject (no oracle on claims).
        let unsigned = keys.token(alg: "ES256", kid: "p256", claims: payload(nil)).split(separator: ".")
        let other = keys.token(alg: "ES256", kid: "p256", claims: payload(#""alice""#)).split(separator: ".")
        let forged = [unsigned[0], unsigned[1], other[2]].joined(separator: ".")
        let outcome = TokenVerifier().verify(token: forged, providers: [.init(config: provider(), keys: keys.keySet())], now: now)
        guard case .rejected(let why) = outcome else {
            Issue.record("accepted a forged token")
            return
        }
        #expect(why == "invalid signature")
    }

    @Test func idTokensLeaveTheUserToTheLogin() {
        // The ID token path still requires sub itself (OIDC Core §2); the mapped user may come from userinfo.
        var p = provider()
        p.clientID = "api"
        p.claims = ClaimMapping(user: "preferred_username")
        let idToken = keys.token(alg: "ES256", kid: "p256", claims: payload(#""alice""#))
        let ok = IDTokenValidator().validate(idToken: idToken, accessToken: nil, nonce: nil, provider: p, keys: keys.keySet(), now: now)
        #expect(ok != .rejected("id token: token has no subject"))
        if case .valid = ok {} else { Issue.record("ID token refused: \(ok)") }
        let noSub = keys.token(alg: "ES256", kid: "p256", claims: payload(nil))
        let refused = IDTokenValidator().validate(idToken: noSub, accessToken: nil, nonce: nil, provider: p, keys: keys.keySet(), now: now)
        #expect(refused == .rejected("id token: missing sub"))
    }
}
