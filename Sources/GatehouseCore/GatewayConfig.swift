/// The validated, immutable configuration snapshot. Produced once by `GatehouseConfig` from YAML and never
/// re-parsed: every field is already a typed value (durations, sizes, URLs, header names, CIDRs).
public struct GatewayConfig: Sendable, Equatable {
    public var server: ServerConfig
    public var providers: [ProviderConfig]
    public var identityHeaders: [IdentityHeader]
    public var routes: [RouteConfig]
    /// nil when the document has no `session:` section (then no route may use `auth: session`).
    public var session: SessionConfig?
    public var login: LoginConfig

    public init(
        server: ServerConfig, providers: [ProviderConfig] = [], identityHeaders: [IdentityHeader],
        routes: [RouteConfig], session: SessionConfig? = nil, login: LoginConfig = LoginConfig()
    ) {
        self.server = server
        self.providers = providers
        self.identityHeaders = identityHeaders
        self.routes = routes
        self.session = session
        self.login = login
    }

    /// The identity headers injected by default (CONFIG.md).
    public static let defaultIdentityHeaders: [IdentityHeader] = [
        IdentityHeader(name: "X-Forwarded-User", claim: "user"),
        IdentityHeader(name: "X-Forwarded-Email", claim: "email"),
        IdentityHeader(name: "X-Forwarded-Groups", claim: "groups"),
        IdentityHeader(name: "X-Forwarded-Preferred-Username", claim: "preferred_username"),
    ]
}

/// A `host:port` pair to bind. The host is an IPv4/IPv6 literal or a name; IPv6 literals are stored without brackets.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A span of time, stored in nanoseconds.
public struct Duration: Sendable, Equatable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static func seconds(_ s: Int64) -> Duration { Duration(nanoseconds: s * 1_000_000_000) }
    public static func milliseconds(_ ms: Int64) -> Duration { Duration(nanoseconds: ms * 1_000_000) }
    public static func < (a: Duration, b: Duration) -> Bool { a.nanoseconds < b.nanoseconds }
    public var description: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        return "\(nanoseconds / 1_000_000)ms"
    }
}

public enum AccessLogFormat: String, Sendable, Equatable {
    case json, logfmt, off
}

public struct ServerConfig: Sendable, Equatable {
    public var listen: [ListenAddress]
    public var adminListen: ListenAddress?
    /// Number of event loops; nil means one per core.
    public var workers: Int?
    public var trustedProxies: [CIDR]
    public var maxHeaderBytes: Int
    /// Header fields per request (HTTP/1 field lines, HTTP/2 regular fields); more: 431.
    public var maxHeaderCount: Int = 100
    public var maxBodyBytes: Int64
    /// Client connections open at once over all listeners; beyond it a new connection is refused.
    public var maxConnections: Int = 4096
    /// Client connections open at once from one client address (the TCP peer); 0: no per-address limit.
    public var maxConnectionsPerClient: Int = 256
    public var requestHeaderTimeout: Duration
    public var idleTimeout: Duration
    public var upstreamConnectTimeout: Duration
    public var upstreamResponseTimeout: Duration
    public var shutdownGrace: Duration
    public var accessLog: AccessLogFormat
    /// Idle keep-alive connections kept per upstream per event loop.
    public var upstreamMaxIdlePerLoop: Int
    /// Open connections allowed per upstream per event loop; further requests wait for one.
    public var upstreamMaxConnectionsPerLoop: Int = 1024
    /// How long a request waits for a pooled connection before 503 `upstream_busy`.
    public var upstreamQueueTimeout: Duration = .seconds(5)
    public var tls: TLSListenerConfig?
    public var http2: HTTP2Config

    public init(
        listen: [ListenAddress] = [ListenAddress(host: "0.0.0.0", port: 8080)],
        adminListen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9090),
        workers: Int? = nil,
        trustedProxies: [CIDR] = [],
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int64 = 16 * 1024 * 1024,
        requestHeaderTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(75),
        upstreamConnectTimeout: Duration = .seconds(5),
        upstreamResponseTimeout: Duration = .seconds(60),
        shutdownGrace: Duration = .seconds(20),
        accessLog: AccessLogFormat = .json,
        upstreamMaxIdlePerLoop: Int = 64, tls: TLSListenerConfig? = nil, http2: HTTP2Config = HTTP2Config()
    ) {
        self.tls = tls
        self.http2 = http2
        self.listen = listen
        self.adminListen = adminListen
        self.workers = workers
        self.trustedProxies = trustedProxies
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.requestHeaderTimeout = requestHeaderTimeout
        self.idleTimeout = idleTimeout
        self.upstreamConnectTimeout = upstreamConnectTimeout
        self.upstreamResponseTimeout = upstreamResponseTimeout
        self.shutdownGrace = shutdownGrace
        self.accessLog = accessLog
        self.upstreamMaxIdlePerLoop = upstreamMaxIdlePerLoop
    }
}

/// One injected identity header: the header name and the identity field (claim name) it carries.
public struct IdentityHeader: Sendable, Equatable {
    public var name: String
    public var claim: String
    public init(name: String, claim: String) {
        self.name = name
        self.claim = claim
    }
}

public enum AuthMode: String, Sendable, Equatable {
    case none, jwt, session
}

/// Where a route forwards to. Parsed once from `http(s)://host[:port][/base]`.
public struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable { case http, https }
    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// Path prefix prepended to the forwarded path ("" when the URL has no path or only "/").
    public var basePath: String
    /// TLS settings of an https upstream (nil for http).
    public var tls: UpstreamTLS?

    public init(scheme: Scheme, host: String, port: Int, basePath: String = "", tls: UpstreamTLS? = nil) {
        self.tls = tls ?? (scheme == .https ? UpstreamTLS() : nil)
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// The value for the upstream `Host` header: the port is omitted when it is the scheme's default.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let isDefault = (scheme == .http && port == 80) || (scheme == .https && port == 443)
        return isDefault ? h : "\(h):\(port)"
    }

    public var description: String { "\(scheme.rawValue)://\(hostHeader)\(basePath)" }

    /// Parses an upstream URL. Returns nil for anything that is not `http(s)://host[:port][/path]` without
    /// userinfo, query or fragment.
    public static func parse(_ text: String) -> UpstreamTarget? {
        let scheme: Scheme
        var rest: Substring
        if text.hasPrefix("http://") {
            scheme = .http
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            scheme = .https
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        if rest.contains("?") || rest.contains("#") || rest.contains("@") { return nil }
        let authority: Substring
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[slash...]
        } else {
            authority = rest
        }
        guard let (host, port) = splitHostPort(authority) else { return nil }
        let defaultPort = scheme == .http ? 80 : 443
        var base = String(path)
        while base.hasSuffix("/") { base.removeLast() }
        // The base path is pasted in front of every forwarded path: it must already be canonical.
        if !base.isEmpty {
            guard let canonical = try? CanonicalTarget.parse(base), canonical.path == base, canonical.query == nil,
                !canonical.hasEncodedSlash
            else { return nil }
        }
        return UpstreamTarget(scheme: scheme, host: host, port: port ?? defaultPort, basePath: base)
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. Returns nil on an empty host, a bad port or bad characters.
/// The host comes back lower-cased. Every request's `Host` goes through here, so the usual form (a reg-name or
/// IPv4 address, an optional port) is one pass over the bytes.
public func splitHostPort(_ authority: Substring) -> (String, Int?)? {
    let bytes = authority.utf8
    if bytes.first == UInt8(ascii: "[") { return splitBracketedHostPort(authority) }
    var hostLength = 0
    var port = 0
    var portDigits = -1  // -1 until the colon
    for b in bytes {
        if portDigits >= 0 {
            guard b >= 0x30 && b <= 0x39, portDigits < 5 else { return nil }
            port = port * 10 + Int(b &- 0x30)
            portDigits += 1
        } else if b == UInt8(ascii: ":") {
            portDigits = 0
        } else {
            guard HostName.isRegNameByte(b) else { return nil }
            hostLength += 1
        }
    }
    guard hostLength > 0, portDigits != 0, portDigits < 0 || (port > 0 && port < 65536) else { return nil }
    let host = String(unsafeUninitializedCapacity: hostLength) { out in
        var i = 0
        for b in bytes.prefix(hostLength) {
            out[i] = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            i += 1
        }
        return hostLength
    }
    return (host, portDigits < 0 ? nil : port)
}

/// `[v6]` or `[v6]:port` (the address must parse as IPv6).
private func splitBracketedHostPort(_ authority: Substring) -> (String, Int?)? {
    guard let close = authority.firstIndex(of: "]") else { return nil }
    let host = authority[authority.index(after: authority.startIndex)..<close]
    let after = authority[authority.index(after: close)...]
    var port: Int?
    if !after.isEmpty {
        guard after.hasPrefix(":") else { return nil }
        let portText = after.dropFirst()
        guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let p = Int(portText), p > 0, p < 65536
        else { return nil }
        port = p
    }
    guard !host.isEmpty, IPAddress(String(host)) != nil, host.contains(":") else { return nil }
    return (String(host).lowercased(), port)
}

/// One route: what it matches, where it forwards and how it authenticates.
public struct RouteConfig: Sendable, Equatable {
    public var id: String
    public var host: HostPattern?
    /// Segment-aware path prefix, canonical form without a trailing slash (except "/").
    public var pathPrefix: String
    /// Upper-case method names, nil = any method.
    public var methods: Set<String>?
    public var upstream: UpstreamTarget
    public var auth: AuthMode
    public var preserveHost: Bool
    /// nil = the server's `limits.max_body_bytes`.
    public var maxBodyBytes: Int64?
    /// Opt-in: keep `%2F` (encoded slash) in paths of this route instead of refusing them with 400.
    public var allowEncodedSlashes: Bool
    /// Opt-in: forward paths that a backend decoding twice would read differently (`%252e%252e`, see
    /// `DoubleEncoding`) instead of refusing them with 400. Only for upstreams known to decode once.
    public var allowDoubleEncoding: Bool
    /// Provider ids whose tokens this route accepts; nil = every provider.
    public var providers: [String]?
    public var allow: AllowRules
    /// Per-route additions to and overrides of the global identity headers (matched by normalised name).
    public var identityHeaders: [IdentityHeader]
    /// Forward the bearer token upstream in `Authorization`; otherwise Gatehouse removes it on jwt routes.
    public var passAccessToken: Bool
    /// Accept WebSocket upgrades on this route.
    public var websocket: Bool

    public init(
        id: String, host: HostPattern? = nil, pathPrefix: String = "/", methods: Set<String>? = nil,
        upstream: UpstreamTarget, auth: AuthMode, preserveHost: Bool = false, maxBodyBytes: Int64? = nil,
        allowEncodedSlashes: Bool = false, providers: [String]? = nil, allow: AllowRules = AllowRules(),
        identityHeaders: [IdentityHeader] = [], passAccessToken: Bool = false, websocket: Bool = false,
        allowDoubleEncoding: Bool = false
    ) {
        self.allowDoubleEncoding = allowDoubleEncoding
        self.websocket = websocket
        self.providers = providers
        self.allow = allow
        self.identityHeaders = identityHeaders
        self.passAccessToken = passAccessToken
        self.id = id
        self.host = host
        self.pathPrefix = pathPrefix
        self.methods = methods
        self.upstream = upstream
        self.auth = auth
        self.preserveHost = preserveHost
        self.maxBodyBytes = maxBodyBytes
        self.allowEncodedSlashes = allowEncodedSlashes
    }
}
