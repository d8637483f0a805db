/// Where a browser may be sent after login or logout (`rd`, `post_logout_redirect_url`). Open redirects are a
/// classic login-proxy hole, so the rule is an allow-list: a relative path that starts with exactly one `/`, or
/// an absolute `http(s)://` URL whose host is the request's own host or one of `allowed_redirect_hosts`.
/// Everything else (`//evil`, `/\evil`, `/\t/evil`, `https:evil`, userinfo, control characters, `javascript:`,
/// `data:`) falls back to `/`.
public enum ReturnURL {
    public static let fallback = "/"
    public static let maxBytes = 2048

    /// The validated target, or `/`.
    public static func validate(_ raw: String?, requestHost: String?, allowedHosts: [HostPattern]) -> String {
        guard let raw, isAcceptable(raw, requestHost: requestHost, allowedHosts: allowedHosts) else {
            return fallback
        }
        return raw
    }

    public static func isAcceptable(_ raw: String, requestHost: String?, allowedHosts: [HostPattern]) -> Bool {
        let bytes = raw.utf8
        guard !bytes.isEmpty, bytes.count <= maxBytes else { return false }
        // Printable ASCII only, and no backslash (browsers read `\` as `/`) or space.
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else { return false }
        if raw.hasPrefix("/") {
            return !raw.hasPrefix("//")
        }
        guard let url = AbsoluteURL(raw) else { return false }
        if let requestHost, let own = HostName.normalise(requestHost), own == url.host { return true }
        return allowedHosts.contains { $0.matches(url.host) }
    }
}

/// Splits `http://` or `https://` (lower-case schemes only) `authority[tail]`: the authority runs to the first
/// `/`, `?` or `#`. The one split behind the redirect checks and the provider URL checks; each adds its own
/// rules for the authority and the tail.
public func splitHTTPURL(_ text: String) -> (isHTTPS: Bool, authority: Substring, tail: Substring)? {
    let rest: Substring
    let isHTTPS: Bool
    if text.hasPrefix("https://") {
        isHTTPS = true
        rest = text.dropFirst(8)
    } else if text.hasPrefix("http://") {
        isHTTPS = false
        rest = text.dropFirst(7)
    } else {
        return nil
    }
    let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
    return (isHTTPS, rest[..<authorityEnd], rest[authorityEnd...])
}

/// The parts of an absolute `http(s)://host[:port][path][?query]` URL that redirect checks need. Userinfo,
/// an empty host, a non-numeric port and upper-case schemes are refused.
public struct AbsoluteURL: Sendable, Equatable {
    public var isHTTPS: Bool
    /// Normalised (lower-case, no trailing dot) host.
    public var host: String
    public var port: Int?
    /// Path and query as written (`/` when absent).
    public var pathAndQuery: String
    public var path: Substring { pathAndQuery.prefix { $0 != "?" } }

    public init?(_ text: String) {
        guard let (isHTTPS, authority, tail) = splitHTTPURL(text), !authority.isEmpty, !authority.contains("@"),
            !authority.contains("\\"), let (host, port) = splitHostPort(authority)
        else { return nil }
        self.isHTTPS = isHTTPS
        var normal = host.lowercased()
        if normal.hasSuffix(".") { normal.removeLast() }
        guard !normal.isEmpty else { return nil }
        self.host = normal
        self.port = port
        var rest = String(tail)
        if let hash = rest.firstIndex(of: "#") { rest = String(rest[..<hash]) }
        if rest.isEmpty || rest.hasPrefix("?") { rest = "/" + rest }
        self.pathAndQuery = rest
    }

    /// `scheme://host[:port]`.
    public var origin: String {
        let scheme = isHTTPS ? "https" : "http"
        let h = host.contains(":") ? "[\(host)]" : host
        guard let port, port != (isHTTPS ? 443 : 80) else { return "\(scheme)://\(h)" }
        return "\(scheme)://\(h):\(port)"
    }
}
