import GatehouseAuth
import GatehouseCore
import Testing

@testable import GatehouseFuzz

/// The seeds reach the paths whose properties matter: a property checked only on inputs that never get there
/// would pass vacuously.
@Suite struct FuzzReachTests {
    func verified(_ file: String) -> Identity? {
        guard let input = FuzzCorpusTests.inputs("jwt").first(where: { $0.0 == file })?.1, input.first == 0 else {
            return nil
        }
        let token = String(decoding: input.dropFirst(), as: UTF8.self)
        let outcome = TokenVerifier().verify(token: token, providers: AuthTargets.providers, now: AuthTargets.now)
        if case .verified(let identity, _) = outcome { return identity }
        return nil
    }

    @Test func jwtSeedsVerifyAndTheirIdentityHeadersAreChecked() throws {
        let alice = try #require(verified("raw-alice"))
        #expect(alice.groups.contains("users,admins"))  // the defect-2 shape reaches the header rules
        #expect(verified("raw-machine")?.user == "svc")
        #expect(verified("raw-no-sub") == nil)
        #expect(verified("raw-expired") == nil)
    }

    @Test func requestSeedsReachTheDifferentialWithBodies() {
        let inputs = FuzzCorpusTests.inputs("request-head")
        let compared = inputs.filter { _, bytes in
            guard let mine = Differential.ourRequest(bytes) else { return false }
            return Differential.comparable(mine, bytes: bytes) && mine.body?.isEmpty == false
        }
        #expect(compared.count >= 4)
    }
}
