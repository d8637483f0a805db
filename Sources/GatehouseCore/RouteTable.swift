/// The compiled route table. Matching is pure: normalised host + canonical path + method in, a route out.
///
/// Rules: a route's host pattern must match (a route without one matches every host); its path prefix must
/// match on a segment boundary (`/api` matches `/api` and `/api/x`, never `/apix`). Among the matches, routes
/// naming the host exactly beat `*.suffix` routes, which beat routes without a host (as virtual hosts select
/// first in nginx); within that, the longest prefix wins and the first route in file order breaks ties. A route whose method list excludes the method is skipped; if only
/// such routes matched, the answer is `methodNotAllowed` with the methods that would have matched.
public struct RouteTable: Sendable {
    public let routes: [RouteConfig]

    public init(routes: [RouteConfig]) {
        self.routes = routes
    }

    public enum Match: Sendable, Equatable {
        case route(index: Int)
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// Segment-aware prefix test on canonical paths.
    @inline(__always)
    public static func pathMatches(prefix: String, path: String) -> Bool {
        if prefix == "/" { return true }
        guard path.hasPrefix(prefix) else { return false }
        let p = path.utf8
        let n = prefix.utf8.count
        if p.count == n { return true }
        return p[p.index(p.startIndex, offsetBy: n)] == UInt8(ascii: "/")
    }

    /// `host` is the normalised Host (nil when the request had none, which only HTTP/1.0 allows).
    ///
    /// The most specific match by host and path decides; a method list only chooses among routes of that same
    /// rank. A request whose best-matching routes all exclude its method gets 405: it never falls through to a
    /// less specific route (which would turn `methods: [GET]` on `/admin` into "POST /admin goes to `/`").
    public func match(host: String?, path: String, method: String) -> Match {
        var best: Int?
        var bestRank = -1
        var blocked: Set<String> = []
        for (index, route) in routes.enumerated() {
            if let pattern = route.host {
                guard let host, pattern.matches(host) else { continue }
            }
            guard RouteTable.pathMatches(prefix: route.pathPrefix, path: path) else { continue }
            let tier: Int
            switch route.host {
            case .exact: tier = 2
            case .wildcard: tier = 1
            case nil: tier = 0
            }
            // Host tier first, then prefix length: one comparable rank.
            let rank = tier << 20 + (route.pathPrefix == "/" ? 0 : route.pathPrefix.utf8.count)
            if rank < bestRank { continue }
            if rank > bestRank {
                bestRank = rank
                best = nil
                blocked = []
            }
            if best != nil { continue }  // the first route of this rank that allows the method wins
            if let methods = route.methods, !methods.contains(method) {
                blocked.formUnion(methods)
            } else {
                best = index
            }
        }
        if let best { return .route(index: best) }
        if bestRank >= 0 { return .methodNotAllowed(allowed: blocked.sorted()) }
        return .notFound
    }
}
