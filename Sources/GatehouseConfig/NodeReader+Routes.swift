import GatehouseCore
import Yams

/// `routes:` — at least one route; each needs an id, an upstream and an explicit auth mode (deny by default:
/// a route never becomes public because a line was forgotten).
extension NodeReader {
    static let routeKeys: Set<String> = [
        "id", "match", "upstream", "auth", "preserve_host", "max_body_bytes", "allow_encoded_slashes", "providers",
        "allow", "identity_headers", "pass_access_token", "upstream_tls", "websocket", "allow_double_encoding",
    ]
    static let matchKeys: Set<String> = ["host", "path", "methods"]

    mutating func readRoutes(_ document: Fields, providers: DeclaredProviders) -> [RouteConfig] {
        guard let node = document.node("routes") else {
            report("required", at: "routes", .start)
            return []
        }
        guard !node.isNull else {
            report("required", at: "routes", node: node)
            return []
        }
        guard let items = list(node, path: "routes") else { return [] }
        guard !items.isEmpty else {
            report("expected at least one route", at: "routes", node: node)
            return []
        }
        var seen = SeenRoutes()
        var routes: [RouteConfig] = []
        for (index, item) in items.enumerated() {
            if let route = readRoute(item, index: index, providers: providers, seen: &seen) {
                routes.append(route)
            }
        }
        return routes
    }

    /// What earlier routes used, to refuse a repeated id or a match that an earlier route already claims.
    struct SeenRoutes {
        var ids: [String: Int] = [:]
        var matches: [String: Int] = [:]
    }

    private mutating func readRoute(
        _ node: Node, index: Int, providers: DeclaredProviders, seen: inout SeenRoutes
    ) -> RouteConfig? {
        let path = "routes[\(index)]"
        guard let fields = readMapping(node, path: path, section: .route, known: Self.routeKeys) else { return nil }

        var id: String?
        if let idNode = required(fields, "id") {
            id = string(idNode, path: fields.path("id"))
            if let text = id, !Syntax.isRouteID(text) {
                report("expected 1 to 64 letters, digits, '-', '_' or '.'", at: fields.path("id"), node: idNode)
                id = nil
            } else if let text = id, let first = seen.ids[text] {
                report(
                    "duplicate route id '\(text)' (already used by routes[\(first)])", at: fields.path("id"),
                    node: idNode)
                id = nil
            } else if let text = id {
                seen.ids[text] = index
            }
        }

        var route = RouteConfig(id: id ?? "", upstream: UpstreamTarget(scheme: .http, host: "", port: 80), auth: .none)
        var valid = id != nil
        if let matchNode = fields.value("match") {
            valid = readMatch(matchNode, path: fields.path("match"), into: &route) && valid
        }
        if let upstreamNode = required(fields, "upstream") {
            let upstreamPath = fields.path("upstream")
            if let text = string(upstreamNode, path: upstreamPath) {
                if let target = UpstreamTarget.parse(text) {
                    route.upstream = target
                } else {
                    report("not an http(s) URL", at: upstreamPath, node: upstreamNode)
                    valid = false
                }
            } else {
                valid = false
            }
        } else {
            valid = false
        }
        var auth: AuthMode?
        if let authNode = fields.value("auth") {
            let expectation = "expected none, jwt or session"
            auth = choice(
                authNode, path: fields.path("auth"), [AuthMode.none, .jwt, .session], expectation: expectation)
            if let auth {
                route.auth = auth
            } else {
                valid = false
            }
        } else {
            report(
                "required: none, jwt or session (deny by default)", at: fields.path("auth"),
                fields.node("auth")?.position ?? node.position)
            valid = false
        }
        if let node = fields.value("preserve_host") {
            route.preserveHost = bool(node, path: fields.path("preserve_host")) ?? route.preserveHost
        }
        if let node = fields.value("max_body_bytes") {
            route.maxBodyBytes = size(node, path: fields.path("max_body_bytes"))
        }
        if let node = fields.value("allow_encoded_slashes") {
            route.allowEncodedSlashes = bool(node, path: fields.path("allow_encoded_slashes")) ?? false
        }
        if let node = fields.value("allow_double_encoding") {
            route.allowDoubleEncoding = bool(node, path: fields.path("allow_double_encoding")) ?? false
        }
        readRouteAuthorization(fields, auth: auth, providers: providers, into: &route)
        if let node = fields.value("websocket") {
            route.websocket = bool(node, path: fields.path("websocket")) ?? false
        }
        if let node = fields.value("upstream_tls") {
            if route.upstream.scheme != .https {
                report("only meaningful with an https:// upstream", at: fields.path("upstream_tls"), node: node)
            } else if let tls = readUpstreamTLS(node, path: fields.path("upstream_tls")) {
                route.upstream.tls = tls
            }
        }

        guard valid else { return nil }
        let matchKey = [
            route.host?.description ?? "*", route.pathPrefix,
            route.methods.map { $0.sorted().joined(separator: ",") } ?? "*",
        ].joined(separator: " ")
        if let first = seen.matches[matchKey] {
            let matchNode = fields.node("match") ?? node
            report(
                "same match as routes[\(first)], so this route is never used", at: fields.path("match"), node: matchNode
            )
            return nil
        }
        seen.matches[matchKey] = index
        return route
    }

    /// `match:` — host pattern, canonical path prefix and methods. Returns false when something was reported.
    private mutating func readMatch(_ node: Node, path: String, into route: inout RouteConfig) -> Bool {
        guard let fields = readMapping(node, path: path, known: Self.matchKeys) else { return false }
        var valid = true
        if let hostNode = fields.value("host") {
            let hostPath = fields.path("host")
            if let text = string(hostNode, path: hostPath) {
                if let pattern = Self.hostPattern(text) {
                    route.host = pattern
                } else {
                    report("not a host name or *.suffix pattern", at: hostPath, node: hostNode)
                    valid = false
                }
            } else {
                valid = false
            }
        }
        if let pathNode = fields.value("path") {
            let pathPath = fields.path("path")
            if let text = string(pathNode, path: pathPath) {
                switch Syntax.pathPrefix(text) {
                case .success(let prefix):
                    route.pathPrefix = prefix
                case .failure(let error):
                    report(error.description, at: pathPath, node: pathNode)
                    valid = false
                }
            } else {
                valid = false
            }
        }
        if let methodsNode = fields.value("methods") {
            if let methods = readMethods(methodsNode, path: fields.path("methods")) {
                route.methods = methods
            } else {
                valid = false
            }
        }
        return valid
    }

    private mutating func readMethods(_ node: Node, path: String) -> Set<String>? {
        guard let items = list(node, path: path) else { return nil }
        guard !items.isEmpty else {
            report("expected at least one method (omit the key to allow any method)", at: path, node: node)
            return nil
        }
        var methods: Set<String> = []
        var valid = true
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = string(item, path: itemPath) else {
                valid = false
                continue
            }
            guard Syntax.isUpperCaseMethod(text) else {
                report("expected an upper-case method such as GET", at: itemPath, node: item)
                valid = false
                continue
            }
            methods.insert(text)
        }
        return valid ? methods : nil
    }

    /// `HostPattern.parse`, refusing a port: a route matches host names, and `Host` ports are ignored.
    static func hostPattern(_ text: String) -> HostPattern? {
        let hasPort = text.hasPrefix("[") ? !text.hasSuffix("]") : text.contains(":")
        return hasPort ? nil : HostPattern.parse(text)
    }
}
