/// Header rewriting between client and upstream: strip before inject.
///
/// Every header whose name *normalises* (ASCII case-folded, `_` and `.` read as `-`) to a header Gatehouse
/// manages is removed from the client's request before anything is added, so `X_Forwarded_User`,
/// `x.forwarded.user` and `X-FORWARDED-USER` are all gone before Gatehouse sets `X-Forwarded-User`. Hop-by-hop
/// headers (RFC 9110 §7.6.1) and every header a `Connection` header nominates are removed too; because
/// Gatehouse's own headers are added afterwards, a `Connection` header can never remove them.
public struct HeaderRules: Sendable {
    /// Normalised names of the identity headers Gatehouse injects.
    public let managedIdentityNames: Set<String>
    public let trustedProxies: [CIDR]

    public init(identityHeaders: [IdentityHeader], trustedProxies: [CIDR]) {
        self.managedIdentityNames = Set(identityHeaders.map { HeaderRules.normalise($0.name) })
        self.trustedProxies = trustedProxies
    }

    /// Case-folds ASCII letters and maps `_` and `.` to `-`.
    public static func normalise(_ name: String) -> String {
        // Written straight into the new string's storage: names up to 15 bytes stay inline (no allocation).
        let utf8 = name.utf8
        return String(unsafeUninitializedCapacity: utf8.count) { buffer in
            var i = 0
            for b in utf8 {
                switch b {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): buffer[i] = b + 32
                case UInt8(ascii: "_"), UInt8(ascii: "."): buffer[i] = UInt8(ascii: "-")
                default: buffer[i] = b
                }
                i += 1
            }
            return i
        }
    }

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    public static func isHopByHop(normalised n: String) -> Bool {
        hopByHop.contains(n) || n.hasPrefix("proxy-")
    }

    /// Every normalised name that needs more than "forward as is" (besides the `x-` and `proxy-` families and
    /// the identity headers): the fast path of `upstreamRequestHeaders` only looks here.
    static let special: [String: Bool] = {
        var d: [String: Bool] = [:]
        for n in hopByHop.union(aliasSensitive).union(["host", "expect", "forwarded", "transfer-encoding", "cookie"]) {
            d[n] = true
        }
        return d
    }()

    /// Headers whose non-canonical spellings are dropped rather than forwarded.
    static let aliasSensitive: Set<String> = [
        "content-length", "content-type", "content-encoding", "x-request-id",
    ]

    /// Names a `Connection` header may not remove: message framing and the target host are Gatehouse's to set.
    static let notNominable: Set<String> = ["host", "content-length", "transfer-encoding"]

    public func isTrusted(_ peer: IPAddress?) -> Bool {
        guard let peer else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }

    /// Everything about the request that the upstream header set depends on.
    public struct ForwardContext: Sendable {
        /// The TCP peer's address as text (computed once per connection).
        public var peerText: String? { peerTextStorage ?? peer?.description }
        var peerTextStorage: String?
        public var peer: IPAddress?
        public var peerTrusted: Bool
        public var scheme: String
        public var rawHost: String?
        public var upstreamHost: String
        public var preserveHost: Bool
        public var requestID: String
        /// The client's `Authorization` header stays here (an authenticated route without `pass_access_token`).
        public var dropAuthorization: Bool
        public init(
            peer: IPAddress?, peerTrusted: Bool, scheme: String, rawHost: String?, upstreamHost: String,
            preserveHost: Bool, requestID: String, peerText: String? = nil, dropAuthorization: Bool = false
        ) {
            self.dropAuthorization = dropAuthorization
            self.peerTextStorage = peerText
            self.peer = peer
            self.peerTrusted = peerTrusted
            self.scheme = scheme
            self.rawHost = rawHost
            self.upstreamHost = upstreamHost
            self.preserveHost = preserveHost
            self.requestID = requestID
        }
    }

    /// What becomes of one client request field on its way to the upstream.
    public enum RequestFieldDisposition: Sendable, Equatable {
        /// Forwarded as it is.
        case keep
        case drop
        /// A trusted peer's `X-Forwarded-For` (canonical spelling): its value goes before the peer's address in
        /// the one `X-Forwarded-For` Gatehouse writes.
        case forwardedFor
        /// A trusted peer's `X-Forwarded-Proto` / `X-Forwarded-Host`: the first one replaces Gatehouse's own.
        case forwardedProto
        case forwardedHost
        /// `Cookie`: forwarded without Gatehouse's own cookies (the caller filters the value).
        case cookie
    }

    /// The names a `Connection` field nominates (hop-by-hop for this message), normalised; framing and `Host`
    /// cannot be nominated, and names that are hop-by-hop already are left out.
    public static func nominated(byConnectionValue value: UnsafeRawBufferPointer, into set: inout Set<String>) {
        var start = 0
        for i in 0...value.count where i == value.count || value[i] == UInt8(ascii: ",") {
            var a = start
            var b = i
            while a < b, value[a] == 0x20 || value[a] == 0x09 { a += 1 }
            while b > a, value[b - 1] == 0x20 || value[b - 1] == 0x09 { b -= 1 }
            if b > a {
                let t = normalise(bytes: UnsafeRawBufferPointer(rebasing: value[a..<b]))
                // Hop-by-hop names go anyway: leaving them out keeps the set empty (no allocation) for the
                // usual `Connection: keep-alive` / `upgrade`.
                if !notNominable.contains(t), !isHopByHop(normalised: t) { set.insert(t) }
            }
            start = i + 1
        }
    }

    /// `normalise` for a name's bytes (names up to 15 bytes give a string without allocating).
    public static func normalise(bytes name: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: name.count) { buffer in
            for i in 0..<name.count {
                let b = name[i]
                switch b {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): buffer[i] = b + 32
                case UInt8(ascii: "_"), UInt8(ascii: "."): buffer[i] = UInt8(ascii: "-")
                default: buffer[i] = b
                }
            }
            return name.count
        }
    }

    /// Whether `name` is spelled exactly as its normalised form (lower case, no `_` or `.` stand-ins).
    static func isCanonicalSpelling(_ name: UnsafeRawBufferPointer, normalised n: String) -> Bool {
        var n = n
        return n.withUTF8 { u in
            u.count == name.count
                && zip(u, name).allSatisfy { $0 == (($1 >= 0x41 && $1 <= 0x5A) ? $1 + 32 : $1) }
        }
    }

    /// The rule for one client field (strip before inject): hop-by-hop and nominated fields, every spelling of a
    /// managed identity header and of `X-Auth-Request-*`, non-canonical spellings of framing-related fields,
    /// `Host`, `X-Request-Id` and `Expect` (Gatehouse writes its own), and forwarding headers from untrusted
    /// peers (or in a non-canonical spelling) are dropped; the client's `Authorization` when
    /// `dropAuthorization`.
    public func disposition(
        ofRequestField name: UnsafeRawBufferPointer, peerTrusted: Bool, dropAuthorization: Bool,
        nominated: Set<String>
    ) -> RequestFieldDisposition {
        let n = HeaderRules.normalise(bytes: name)
        if dropAuthorization, n.utf8.count == 13, n == "authorization" { return .drop }
        // Ordinary headers (the vast majority) cost one dictionary miss and three prefix checks.
        if HeaderRules.special[n] == nil, nominated.isEmpty || !nominated.contains(n), !n.hasPrefix("x-"),
            !n.hasPrefix("proxy-"), !managedIdentityNames.contains(n)
        {
            return .keep
        }
        if HeaderRules.isHopByHop(normalised: n) || nominated.contains(n) { return .drop }
        if managedIdentityNames.contains(n) || n.hasPrefix("x-auth-request-") { return .drop }
        // An alias spelling (`Content_Length`, `X.Request.Id`) of a header with a meaning to the upstream could
        // be read as the real one by a server that maps `_` to `-` (CGI, WSGI): never forward it.
        let canonical = HeaderRules.isCanonicalSpelling(name, normalised: n)
        if HeaderRules.aliasSensitive.contains(n), !canonical { return .drop }
        switch n {
        case "host", "x-request-id", "expect":
            return .drop
        case "cookie":
            return .cookie
        case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip":
            // Believed only from a trusted peer, and only in the canonical spelling.
            guard peerTrusted, canonical else { return .drop }
            switch n {
            case "x-forwarded-for": return .forwardedFor
            case "x-forwarded-proto": return .forwardedProto
            case "x-forwarded-host": return .forwardedHost
            default: return .keep
            }
        default:
            if n.hasPrefix("x-forwarded-") {
                guard peerTrusted, canonical else { return .drop }
            }
            return .keep
        }
    }

    /// The header list for the upstream request: the client's headers minus hop-by-hop, nominated, managed and
    /// (from untrusted peers) forwarding headers; then Host, X-Forwarded-*, X-Request-Id set by Gatehouse.
    /// Identity headers are injected afterwards by the authentication phase. (The string form of the rules the
    /// byte-level writer applies; used by `explain`-style tools and the tests.)
    public func upstreamRequestHeaders(
        from client: HeaderFields, context: ForwardContext
    ) -> [(String, String)] {
        var nominated: Set<String> = []
        for (name, value) in client where name.utf8.count == 10 && HeaderRules.normalise(name) == "connection" {
            var v = value
            v.withUTF8 { HeaderRules.nominated(byConnectionValue: UnsafeRawBufferPointer($0), into: &nominated) }
        }
        var out: [(String, String)] = []
        out.reserveCapacity(16)
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        for (name, value) in client {
            var nameCopy = name
            let kind = nameCopy.withUTF8 {
                self.disposition(
                    ofRequestField: UnsafeRawBufferPointer($0), peerTrusted: context.peerTrusted,
                    dropAuthorization: context.dropAuthorization, nominated: nominated)
            }
            switch kind {
            case .keep, .cookie: out.append((name, value))
            case .drop: continue
            case .forwardedFor: forwardedFor.append(value)
            case .forwardedProto: forwardedProto = forwardedProto ?? value
            case .forwardedHost: forwardedHost = forwardedHost ?? value
            }
        }
        out += forwardingHeaders(
            context: context, forwardedFor: forwardedFor.isEmpty ? nil : forwardedFor.joined(separator: ", "),
            forwardedProto: forwardedProto, forwardedHost: forwardedHost)
        return out
    }

    /// The headers Gatehouse writes itself after the client's: Host, X-Forwarded-For (a trusted peer's chain,
    /// then the peer), X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id.
    public func forwardingHeaders(
        context: ForwardContext, forwardedFor: String?, forwardedProto: String?, forwardedHost: String?
    ) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(5)
        forEachForwardingHeader(
            context: context, forwardedFor: forwardedFor, forwardedProto: forwardedProto, forwardedHost: forwardedHost
        ) { out.append(($0.description, $1)) }
        return out
    }

    /// `forwardingHeaders` without building an array (the upstream request writer's path).
    @inlinable
    public func forEachForwardingHeader(
        context: ForwardContext, forwardedFor: String?, forwardedProto: String?, forwardedHost: String?,
        _ body: (StaticString, String) -> Void
    ) {
        body("Host", context.preserveHost ? (context.rawHost ?? context.upstreamHost) : context.upstreamHost)
        switch (forwardedFor, context.peerText) {
        case (let chain?, let peer?): body("X-Forwarded-For", chain + ", " + peer)
        case (let chain?, nil): body("X-Forwarded-For", chain)
        case (nil, let peer?): body("X-Forwarded-For", peer)
        case (nil, nil): break
        }
        body("X-Forwarded-Proto", forwardedProto ?? context.scheme)
        if let h = forwardedHost ?? context.rawHost { body("X-Forwarded-Host", h) }
        body("X-Request-Id", context.requestID)
    }

    /// The response headers for the client: the upstream's minus hop-by-hop and `Connection`-nominated ones.
    public static func clientResponseHeaders(
        from upstream: HeaderFields
    ) -> [(String, String)] {
        var nominated: Set<String> = []
        for (name, value) in upstream where name.utf8.count == 10 && normalise(name) == "connection" {
            for token in value.split(separator: ",") {
                let t = normalise(String(token.trimmingSpaces()))
                if !t.isEmpty, !notNominable.contains(t) { nominated.insert(t) }
            }
        }
        var out: [(String, String)] = []
        for (name, value) in upstream {
            let n = normalise(name)
            if isHopByHop(normalised: n) || nominated.contains(n) { continue }
            out.append((name, value))
        }
        return out
    }

    /// A client-supplied request id is kept when it is 1...128 characters of `[A-Za-z0-9._:-]`.
    public static func acceptableRequestID(_ value: String) -> Bool {
        let u = value.utf8
        guard !u.isEmpty, u.count <= 128 else { return false }
        return u.allSatisfy { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"):
                return true
            default: return false
            }
        }
    }
}

/// A request's or response's header fields in order. A concrete array (not a generic sequence): the pure
/// functions that take it run on every request, and a generic parameter crossing the module boundary is not
/// specialised, which cost microseconds per call in the micro-benchmarks.
public typealias HeaderFields = [(name: String, value: String)]
