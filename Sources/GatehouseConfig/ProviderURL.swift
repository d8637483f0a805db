import GatehouseCore

/// Checks of the URLs a provider is configured with: its `issuer` and its `jwks_uri`.
///
/// They are checked, never rewritten. The issuer in particular is compared byte for byte with the `iss` of
/// every token (RFC 7519 section 4.1.1, OpenID Connect Discovery section 4.3), so `https://x/` and `https://x`
/// are different issuers and the text is stored exactly as written. Plain `http://` is refused except on a
/// loopback host: keys fetched in the clear could be swapped by anyone on the path, and with them every token.
enum ProviderURL {
    static let issuerExpectation = "expected an https:// URL (http:// only for a loopback host)"
    static let jwksExpectation = "expected an https:// URL, http:// on a loopback host, or file:///absolute/path"
    static let plainHTTP = "http:// is only allowed for a loopback host (127.0.0.0/8, ::1 or localhost); use https://"
    static let queryOrFragment = "must not contain a query or fragment (? or #)"

    /// The problem with `text` as an issuer, or nil when it is acceptable.
    static func issuerProblem(_ text: String) -> String? {
        guard let url = WebURL(text) else { return issuerExpectation }
        if url.hasQuery || url.hasFragment { return queryOrFragment }
        if !url.isHTTPS && !url.isLoopback { return plainHTTP }
        return nil
    }

    /// The problem with `text` as a key-set location, or nil when it is acceptable. A query is allowed (some
    /// providers select a policy with one); a fragment is not, since it is never sent.
    static func jwksProblem(_ text: String) -> String? {
        if text.hasPrefix("file:") {
            guard text.hasPrefix("file:///"), text.utf8.count > 8, !text.contains("?"), !text.contains("#") else {
                return "expected file:///absolute/path (no host, query or fragment)"
            }
            return nil
        }
        guard let url = WebURL(text) else { return jwksExpectation }
        if url.hasFragment { return "must not contain a fragment (#)" }
        if !url.isHTTPS && !url.isLoopback { return plainHTTP }
        return nil
    }

    /// The parts of an `http(s)://host[:port][/path][?query][#fragment]` URL that the checks need. Userinfo,
    /// an empty host and characters outside RFC 3986 are refused (percent-escapes are allowed).
    private struct WebURL {
        var isHTTPS: Bool
        var host: String
        var hasQuery: Bool
        var hasFragment: Bool

        init?(_ text: String) {
            guard let (isHTTPS, authority, tail) = splitHTTPURL(text), !authority.contains("@"),
                let (host, _) = splitHostPort(authority), tail.utf8.allSatisfy(WebURL.isURLByte)
            else { return nil }
            self.isHTTPS = isHTTPS
            self.host = host
            hasQuery = tail.contains("?")
            hasFragment = tail.contains("#")
        }

        /// 127.0.0.0/8, ::1 (an IPv4-mapped address counts as IPv4) or the name `localhost`.
        var isLoopback: Bool {
            if host == "localhost" { return true }
            guard let address = IPAddress(host) else { return false }
            if address.bytes.count == 4 { return address.bytes[0] == 127 }
            return address.bytes == [UInt8](repeating: 0, count: 15) + [1]
        }

        /// RFC 3986 characters of a path, query and fragment: unreserved, sub-delims, `:@/?#` and `%`.
        private static func isURLByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || "-._~!$&'()*+,;=:@/?#%".utf8.contains(b)
        }
    }
}
