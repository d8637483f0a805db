import Testing

@testable import GatehouseCore

/// Paths that a backend decoding twice (or reading `\` as `/`) would route differently are flagged; every
/// other path, including ordinary uses of `%25`, is not.
@Suite struct DoubleEncodingTests {
    @Test(arguments: [
        "/public/%252e%252e/admin/secret", "/public/%252e%252e%252fadmin/secret", "/public/%252E%252E/admin",
        "/public/%252e./admin", "/public/.%252e/admin", "/a%252Fb", "/a%255cb", "/a%255C..%255Cadmin",
        "/a/%2525252e%2525252e/b", "/%2525", "/x/%25%32%65%25%32%65/admin",
        // rule 2: a second decoding changes the first segment
        "/pub%2541/x", "/public%253F/admin",
    ])
    func suspectPathsAreFlagged(input: String) throws {
        let t = try CanonicalTarget.parse(input)
        #expect(t.hasDoubleEncoding, "\(input) -> \(t.path)")
    }

    @Test(arguments: [
        "/", "/public/file.txt", "/a%20b", "/100%25", "/discount/50%25off", "/a%25zz", "/public/x%2541",
        "/a/b%3Bc", "/public/%2e%2e/admin", "/files/a%2Fb", "/q?x=%252e%252e",
    ])
    func ordinaryPathsAreNot(input: String) throws {
        let t = try CanonicalTarget.parse(input)
        #expect(!t.hasDoubleEncoding, "\(input) -> \(t.path)")
    }

    @Test func theCanonicalPathIsUnchanged() throws {
        // Flagging does not rewrite: a route that opts out (allow_double_encoding) forwards the path as before.
        let t = try CanonicalTarget.parse("/public/%252e%252e/admin")
        #expect(t.path == "/public/%252e%252e/admin")
    }

    @Test func everyFlaggedPathReallyDecodesToAnotherShape() throws {
        // The property behind rule 2, checked on generated paths: when the flag is off, decoding twice keeps the
        // dot-segment count and the first segment of a single decoding.
        let pieces = ["a", ".", "..", "%25", "%2e", "%2E", "2e", "2f", "%252", "5c", "%41", "%2F", "x"]
        var checked = 0
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let input = "/" + a + b + "/" + c
                    guard let t = try? CanonicalTarget.parse(input) else { continue }
                    checked += 1
                    if t.hasDoubleEncoding { continue }
                    let once = DoubleEncoding.decode(Array(t.path.utf8))
                    let twice = DoubleEncoding.decode(once)
                    let s1 = DoubleEncoding.shape(once)
                    let s2 = DoubleEncoding.shape(twice)
                    #expect(s2.dotSegments <= s1.dotSegments && s2.firstSegment == s1.firstSegment, "\(input)")
                }
            }
        }
        #expect(checked > 1000)
    }
}
