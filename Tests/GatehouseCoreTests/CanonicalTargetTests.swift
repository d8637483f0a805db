import Testing

@testable import GatehouseCore

@Suite struct CanonicalTargetTests {
    @Test(arguments: [
        ("/", "/", nil as String?),
        ("/a/b", "/a/b", nil),
        ("/a/b/", "/a/b/", nil),
        ("/a/b?x=1&y=%2F", "/a/b", "x=1&y=%2F"),
        ("/public/../admin", "/admin", nil),
        ("/public/%2e%2e/admin", "/admin", nil),
        ("/public/%2E%2E/admin", "/admin", nil),
        ("/public/.%2e/admin", "/admin", nil),
        ("/a/./b", "/a/b", nil),
        ("/a/.", "/a/", nil),
        ("/a/..", "/", nil),
        ("/../../etc/passwd", "/etc/passwd", nil),
        ("//admin", "/admin", nil),
        ("/api//v1///x", "/api/v1/x", nil),
        ("/%61%70%69", "/api", nil),
        ("/a%7eb", "/a~b", nil),
        ("/a%3bb", "/a%3Bb", nil),
        ("/a%20b", "/a%20b", nil),
        ("/file.css", "/file.css", nil),
        ("/.well-known/x", "/.well-known/x", nil),
        ("/a;b/c", "/a;b/c", nil),
        ("/a/%252e%252e/admin", "/a/%252e%252e/admin", nil),
        ("/a?", "/a", ""),
    ])
    func canonicalises(input: String, path: String, query: String?) throws {
        let t = try CanonicalTarget.parse(input)
        #expect(t.path == path)
        #expect(t.query == query)
        #expect(!t.hasEncodedSlash)
    }

    @Test(arguments: [
        ("/a#b", CanonicalTarget.Rejection.fragment),
        ("/a?x#b", .fragment),
        ("/a%23b", nil),
        ("/a\\b", .backslash),
        ("/a%5cb", .encodedBackslash),
        ("/a%5Cb", .encodedBackslash),
        ("/a%00b", .controlCharacter),
        ("/a%0ab", .controlCharacter),
        ("/a%0Db", .controlCharacter),
        ("/a%zz", .invalidPercentEncoding),
        ("/a%2", .invalidPercentEncoding),
        ("/a%", .invalidPercentEncoding),
        ("/..;/admin", .dotSegmentParameters),
        ("/public/..;x=1/admin", .dotSegmentParameters),
        ("/.;/admin", .dotSegmentParameters),
        ("/%2e%2e;/admin", .dotSegmentParameters),
        ("*", .notOriginForm),
        ("admin", .notOriginForm),
        ("/a\u{7f}", .controlCharacter),
        ("/caf\u{e9}", .nonASCII),
    ] as [(String, CanonicalTarget.Rejection?)])
    func rejects(input: String, rejection: CanonicalTarget.Rejection?) {
        if let rejection {
            #expect(throws: rejection) { try CanonicalTarget.parse(input) }
        } else {
            // %23 is an escaped '#': legitimate data, kept encoded.
            #expect((try? CanonicalTarget.parse(input))?.path == "/a%23b")
        }
    }

    @Test func encodedSlashIsKeptAndFlagged() throws {
        let t = try CanonicalTarget.parse("/files/a%2fb/../c")
        #expect(t.path == "/files/c")
        let u = try CanonicalTarget.parse("/files/a%2Fb")
        #expect(u.path == "/files/a%2Fb")
        #expect(u.hasEncodedSlash)
    }

    @Test func forwardTargetKeepsQuery() throws {
        #expect(try CanonicalTarget.parse("/x/../y?q=%2e%2e").forwardTarget == "/y?q=%2e%2e")
    }
}
