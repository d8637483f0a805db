import Testing

@testable import GatehouseCore

/// Identity values reach the upstream so that no receiver can read more members than the token had.
@Suite struct IdentityEncodingTests {
    let headers = GatewayConfig.defaultIdentityHeaders + [
        IdentityHeader(name: "X-Scopes", claim: "scp"), IdentityHeader(name: "X-Tenant", claim: "tenant"),
    ]

    func identity(_ claims: JSONValue) -> Identity {
        Identity(providerID: "corp", claims: claims, mapping: ClaimMapping(), expiresAt: 0)
    }

    func fields(_ claims: JSONValue) -> (fields: [String: String], dropped: [String]) {
        let (f, dropped) = HeaderRules.identityHeaderFields(headers, identity: identity(claims))
        var out: [String: String] = [:]
        for (n, v) in f { out[n] = v }
        return (out, dropped)
    }

    @Test func aMemberWithTheSeparatorNeverBecomesTwoMembers() {
        let (f, dropped) = fields(.object(["sub": "alice", "groups": .array(["users,admins", "staff"])]))
        #expect(f["X-Forwarded-Groups"] == "staff")
        #expect(dropped == ["X-Forwarded-Groups"])
        // Whatever an upstream does to the header, it never finds `admins`.
        let members = f["X-Forwarded-Groups"]?.split(separator: ",").map { $0.trimmingSpaces() } ?? []
        #expect(!members.contains("admins"))
    }

    @Test(arguments: [
        "users,admins", "a\"b", " admins", "admins ", "\tadmins", "", "a\r\nX-Forwarded-User: root", "a\u{0}b", "a\u{7f}",
    ])
    func unsafeMembersAreRefused(member: String) {
        #expect(!HeaderRules.isSafeIdentityMember(member))
        let (f, dropped) = fields(.object(["sub": .string(member), "groups": .array([.string(member), "staff"])]))
        #expect(f["X-Forwarded-User"] == nil, "a scalar with an unsafe value is not sent")
        #expect(f["X-Forwarded-Groups"] == "staff")
        #expect(dropped.contains("X-Forwarded-User") && dropped.contains("X-Forwarded-Groups"))
    }

    @Test(arguments: ["alice", "alice@example.com", "Ölaf Müller", "cn=x;ou=y", "a b", "o'brien", "{}[]", "a=b&c"])
    func ordinaryValuesPassUnchanged(value: String) {
        #expect(HeaderRules.isSafeIdentityMember(value))
        let (f, dropped) = fields(.object(["sub": .string(value), "groups": .array([.string(value), "staff"])]))
        #expect(f["X-Forwarded-User"] == value)
        #expect(f["X-Forwarded-Groups"] == value + ",staff")
        #expect(dropped.isEmpty)
    }

    @Test func everyListAndClaimHeaderFollowsTheSameRule() {
        let (f, dropped) = fields(
            .object([
                "sub": "alice", "email": "\"a,b\"@evil.example", "scp": .array(["read", "write,admin"]),
                "tenant": "acme,globex", "groups": .array([]),
            ]))
        #expect(f["X-Forwarded-Email"] == nil)
        #expect(f["X-Scopes"] == "read")
        #expect(f["X-Tenant"] == nil)
        #expect(f["X-Forwarded-Groups"] == nil, "an empty list is no header")
        #expect(Set(dropped) == ["X-Forwarded-Email", "X-Scopes", "X-Tenant"])
    }

    @Test func policyDecidesOnTheOriginalMembers() {
        let caller = identity(.object(["sub": "alice", "groups": .array(["users,admins"])]))
        let target = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 1)
        let admins = RouteConfig(id: "a", upstream: target, auth: .jwt, allow: AllowRules(anyGroup: ["admins"]))
        if case .permit = AccessPolicy.decide(route: admins, identity: caller) {
            Issue.record("a group named users,admins was read as admins")
        }
        let literal = RouteConfig(id: "l", upstream: target, auth: .jwt, allow: AllowRules(anyGroup: ["users,admins"]))
        if case .deny = AccessPolicy.decide(route: literal, identity: caller) {
            Issue.record("the original member was not used")
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
