import GatehouseCore
import Testing

@testable import GatehouseConfig

@Suite struct SyntaxTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("[::1]:8080", "::1", 8080),
        ("[::]:443", "::", 443),
        ("LocalHost:65535", "localhost", 65535),
    ])
    func listenAddresses(text: String, host: String, port: Int) {
        #expect(ListenAddress.parse(text) == ListenAddress(host: host, port: port))
    }

    @Test(arguments: [
        "", "127.0.0.1", ":8080", "::1:8080", "[::1]", "[::1]8080", "[127.0.0.1]:80", "host:65536", "host:-1",
        "host:+80", "host:", "ho st:80", "1.2.3.4.5:80", "999.0.0.1:80", "host:080808",
    ])
    func invalidListenAddresses(text: String) {
        #expect(ListenAddress.parse(text) == nil)
    }

    @Test(arguments: [("/", "/"), ("/api", "/api"), ("/api/", "/api"), ("/a/b.c/~d@e:f", "/a/b.c/~d@e:f")])
    func pathPrefixes(text: String, stored: String) throws {
        #expect(try Syntax.pathPrefix(text).get() == stored)
    }

    @Test(arguments: [
        ("api", Syntax.PathPrefixError.notAbsolute), ("", .notAbsolute), ("/a?b", .queryOrFragment),
        ("/a#b", .queryOrFragment), ("/a%20b", .percentEncoded), ("//", .emptySegment), ("/a//", .emptySegment),
        ("/.", .dotSegment), ("/a/..", .dotSegment), ("/a/./b", .dotSegment), ("/a b", .invalidCharacter),
        ("/ä", .invalidCharacter), ("/a\\b", .invalidCharacter),
    ])
    func invalidPathPrefixes(text: String, error: Syntax.PathPrefixError) {
        #expect(throws: error) { try Syntax.pathPrefix(text).get() }
    }

    @Test func tokensAndNames() {
        #expect(Syntax.isToken("X-Forwarded-User"))
        #expect(!Syntax.isToken("X User"))
        #expect(!Syntax.isToken("X:User"))
        #expect(!Syntax.isToken(""))
        #expect(Syntax.isUpperCaseMethod("M-SEARCH"))
        #expect(!Syntax.isUpperCaseMethod("Get"))
        #expect(Syntax.isClaimName("realm_access.roles"))
        #expect(!Syntax.isClaimName("realm_access..roles"))
        #expect(!Syntax.isClaimName(".roles"))
        #expect(Syntax.isClaimName("a-b"))
        #expect(!Syntax.isClaimName("a b"))
        #expect(Syntax.isRouteID("api.v1_x-2"))
        #expect(!Syntax.isRouteID(String(repeating: "a", count: 65)))
    }

    @Test func claimPathsAndScopes() {
        for valid in ["sub", "realm_access.roles", "resource_access.orders-api.roles", "urn:zitadel:iam:org:id", "scp",
            "https://example.com/roles"]
        {
            #expect(Syntax.isClaimPath(valid), "\(valid)")
        }
        for invalid in ["", ".", "a.", ".a", "a..b", "a b", "https://example.com/a b", "a/b", "é"] {
            #expect(!Syntax.isClaimPath(invalid), "\(invalid)")
        }
        for valid in ["openid", "orders:read", "api://orders/Orders.Read", "https://graph.microsoft.com/.default"] {
            #expect(Syntax.isScopeToken(valid), "\(valid)")
        }
        for invalid in ["", "a b", "a\"b", "a\\b", "tab\tx", "é"] {
            #expect(!Syntax.isScopeToken(invalid), "\(invalid)")
        }
    }
}
