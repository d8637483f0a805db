/// Pure lexical checks for configuration values that are not numbers: header names, method tokens, claim
/// names and paths, scopes, route ids and route path prefixes.
enum Syntax {
    /// RFC 9110 section 5.6.2 `token`: one or more tchar.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// A request method for `match.methods`: an RFC 9110 token written in upper case (methods are
    /// case-sensitive, section 9.1, and every registered method is upper case).
    static func isUpperCaseMethod(_ text: String) -> Bool {
        isToken(text) && !text.utf8.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
    }

    /// An identity field: `user`, `email`, `groups`, `preferred_username` or any claim name made of letters,
    /// digits, `_` and `.` (a dotted path such as `realm_access.roles`), without empty segments.
    static func isClaimName(_ text: String) -> Bool {
        isClaimPath(text)
    }

    /// A claim of a provider's tokens: a claim name, or a dotted path into nested objects
    /// (`realm_access.roles`); each segment is one or more letters, digits, `_`, `:` or `-`.
    static func isClaimPath(_ text: String) -> Bool {
        if isURLClaimName(text) { return true }
        let segments = text.split(separator: ".", omittingEmptySubsequences: false)
        return segments.allSatisfy { segment in
            !segment.isEmpty
                && segment.utf8.allSatisfy {
                    isAlphaNumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-")
                }
        }
    }

    /// A collision-resistant claim name in URL form (RFC 7519 §4.2), as Auth0 and others use:
    /// `https://example.com/roles`. Looked up as one name, never as a dotted path.
    static func isURLClaimName(_ text: String) -> Bool {
        guard text.hasPrefix("https://") || text.hasPrefix("http://"), text.utf8.count <= 256 else { return false }
        return text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// An OAuth scope value (RFC 6749 section 3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, so no
    /// space (the separator), `"` or `\`.
    static func isScopeToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E && $0 != 0x22 && $0 != 0x5C }
    }

    /// A route id: 1 to 64 letters, digits, `-`, `_` or `.` (it appears in logs and metric labels).
    static func isRouteID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy {
                isAlphaNumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
    }

    /// Headers an identity mapping may not set: they frame the message, steer the connection or name the
    /// target, so letting them carry identity values would break or smuggle requests.
    static let reservedHeaders: Set<String> = [
        "connection", "content-length", "host", "keep-alive", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "content-type", "content-encoding", "authorization", "cookie",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "x-request-id",
        "expect",
    ]

    /// Names compared the way Gatehouse strips client headers: case-folded, `_` and `.` read as `-`.
    static func normalisedHeaderName(_ name: String) -> String {
        String(name.lowercased().map { $0 == "_" || $0 == "." ? "-" : $0 })
    }

    /// Reserved as above, or in a family Gatehouse manages itself (`Proxy-*`, `X-Auth-Request-*`).
    static func isReservedHeader(_ name: String) -> Bool {
        let n = normalisedHeaderName(name)
        return reservedHeaders.contains(n) || n.hasPrefix("proxy-") || n.hasPrefix("x-auth-request-")
    }

    /// Validates a route path prefix and returns its stored form (no trailing slash except for "/"), or the
    /// reason it is refused. The prefix must already be canonical because requests are matched after the
    /// proxy canonicalises their paths; a non-canonical prefix would never match (or would match too much).
    static func pathPrefix(_ text: String) -> Result<String, PathPrefixError> {
        guard text.hasPrefix("/") else { return .failure(.notAbsolute) }
        if text.contains("?") || text.contains("#") { return .failure(.queryOrFragment) }
        if text.contains("%") { return .failure(.percentEncoded) }
        if text.contains("//") { return .failure(.emptySegment) }
        if text.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            return .failure(.dotSegment)
        }
        guard text.utf8.allSatisfy(isPathByte) else { return .failure(.invalidCharacter) }
        var stored = text
        if stored.count > 1, stored.hasSuffix("/") { stored.removeLast() }
        return .success(stored)
    }

    enum PathPrefixError: Error, Equatable, CustomStringConvertible {
        case notAbsolute, queryOrFragment, percentEncoded, emptySegment, dotSegment, invalidCharacter

        var description: String {
            switch self {
            case .notAbsolute: return "must start with /"
            case .queryOrFragment: return "must not contain a query or fragment (? or #)"
            case .percentEncoded: return "must not contain %-escapes (write the decoded path)"
            case .emptySegment: return "must not contain empty segments (//)"
            case .dotSegment: return "must not contain . or .. segments"
            case .invalidCharacter: return "contains a character that is not allowed in a URL path"
            }
        }
    }

    private static func isAlphaNumeric(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    private static func isTokenByte(_ b: UInt8) -> Bool {
        isAlphaNumeric(b) || "!#$%&'*+-.^_`|~".utf8.contains(b)
    }

    /// RFC 3986 pchar without pct-encoded, plus "/": unreserved / sub-delims / ":" / "@" / "/".
    private static func isPathByte(_ b: UInt8) -> Bool {
        isAlphaNumeric(b) || "-._~!$&'()*+,;=:@/".utf8.contains(b)
    }
}
