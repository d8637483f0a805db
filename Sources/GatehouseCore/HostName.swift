/// Host names as they appear in `Host` headers and route patterns.
public enum HostName {
    /// RFC 3986 reg-name characters we accept in a host: the unreserved set (letters, digits, `-`, `.`, `_`, `~`).
    @inline(__always)
    public static func isRegNameByte(_ b: UInt8) -> Bool {
        CanonicalTarget.isUnreserved(b)
    }

    /// Normalises a `Host` header value for matching: lower-cased, port removed, one trailing dot removed.
    /// Returns nil for a value that is not a valid host (the request then gets 400).
    public static func normalise(_ value: String) -> String? {
        guard !value.isEmpty, value.utf8.count <= 255 else { return nil }
        guard let (host, _) = splitHostPort(Substring(value)) else { return nil }
        var h = host
        if h.hasSuffix(".") { h.removeLast() }
        guard !h.isEmpty else { return nil }
        return h
    }
}

/// A route's host pattern: an exact name, or `*.suffix` matching any name that ends in `.suffix`
/// (on a label boundary; the bare suffix itself does not match).
public enum HostPattern: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    case wildcard(suffix: String)  // stored with its leading dot: ".example.com"

    public static func parse(_ text: String) -> HostPattern? {
        let lower = text.lowercased()
        if lower.hasPrefix("*.") {
            let suffix = String(lower.dropFirst(1))
            guard suffix.count > 1, suffix.dropFirst().utf8.allSatisfy({ HostName.isRegNameByte($0) }),
                !suffix.dropFirst().hasPrefix("."), !suffix.hasSuffix(".")
            else { return nil }
            return .wildcard(suffix: suffix)
        }
        guard let host = HostName.normalise(lower), !host.contains("*") else { return nil }
        return .exact(host)
    }

    /// `host` must already be normalised (`HostName.normalise`).
    public func matches(_ host: String) -> Bool {
        switch self {
        case .exact(let name): return host == name
        case .wildcard(let suffix): return host.count > suffix.count && host.hasSuffix(suffix)
        }
    }

    public var description: String {
        switch self {
        case .exact(let name): return name
        case .wildcard(let suffix): return "*" + suffix
        }
    }
}
