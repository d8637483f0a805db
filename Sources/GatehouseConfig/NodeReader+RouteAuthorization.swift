import GatehouseCore
import Yams

/// The authorization keys of a route: `providers`, `allow`, `identity_headers` and `pass_access_token`.
///
/// Authorization keys on an `auth: none` route are refused: the route is public whatever they say, and an
/// operator reading `allow: {any_group: [admins]}` would believe otherwise. A `jwt` or `session` route with no
/// provider to accept tokens from could never let anyone in, which is a mistake rather than a policy.
extension NodeReader {
    static let allowKeys: Set<String> = ["any_group", "all_groups", "emails", "email_domains", "scopes", "claims"]
    /// Keys that mean nothing on a public route.
    static let authenticatedOnlyKeys = ["providers", "allow", "pass_access_token"]

    /// Reads the authorization keys into `route`. `auth` is the route's mode, nil when it was not readable
    /// (then the checks that depend on it are skipped rather than guessed).
    mutating func readRouteAuthorization(
        _ fields: Fields, auth: AuthMode?, providers: DeclaredProviders, into route: inout RouteConfig
    ) {
        if let node = fields.value("identity_headers") {
            route.identityHeaders = readIdentityHeaders(node, path: fields.path("identity_headers"))
        }
        if auth == AuthMode.none {
            for key in Self.authenticatedOnlyKeys where fields.value(key) != nil {
                let keyNode = fields.entries.first { $0.key == key }?.keyNode ?? fields.mapping
                report("only meaningful on jwt or session routes", at: fields.path(key), node: keyNode)
            }
            return
        }
        if let auth, let authNode = fields.value("auth"), !providers.any {
            report(
                "auth: \(auth.rawValue) needs at least one provider under providers:", at: fields.path("auth"),
                node: authNode)
        }
        if let node = fields.value("providers") {
            route.providers = readRouteProviders(node, path: fields.path("providers"), declared: providers)
        }
        if let node = fields.value("allow") {
            route.allow = readAllow(node, path: fields.path("allow"))
        }
        if let node = fields.value("pass_access_token") {
            route.passAccessToken = bool(node, path: fields.path("pass_access_token")) ?? false
        }
    }

    /// `providers: [id, ...]` — at least one, each declared under the top-level `providers:`. Order is kept,
    /// repeats are dropped.
    private mutating func readRouteProviders(_ node: Node, path: String, declared: DeclaredProviders) -> [String]? {
        guard let items = list(node, path: path) else { return nil }
        guard !items.isEmpty else {
            report("expected at least one provider id (omit the key to accept every provider)", at: path, node: node)
            return nil
        }
        var ids: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = nonEmptyString(item, path: itemPath) else { continue }
            guard declared.ids.contains(text) else {
                report("unknown provider '\(text)'", at: itemPath, node: item)
                continue
            }
            if !ids.contains(text) { ids.append(text) }
        }
        return ids
    }

    /// `allow:` — conditions that must all hold; an empty mapping allows any authenticated user.
    private mutating func readAllow(_ node: Node, path: String) -> AllowRules {
        var rules = AllowRules()
        guard let fields = readMapping(node, path: path, known: Self.allowKeys) else { return rules }
        let lists: [(key: String, field: WritableKeyPath<AllowRules, [String]>, check: (String) -> String?)] = [
            ("any_group", \.anyGroup, { _ in nil }),
            ("all_groups", \.allGroups, { _ in nil }),
            ("emails", \.emails, Self.emailProblem),
            ("email_domains", \.emailDomains, Self.emailDomainProblem),
            ("scopes", \.scopes, { Syntax.isScopeToken($0) ? nil : Self.scopeExpectation }),
        ]
        for target in lists {
            guard let node = fields.value(target.key),
                let values = strings(node, path: fields.path(target.key), check: target.check)
            else { continue }
            rules[keyPath: target.field] = values
        }
        if let node = fields.value("claims") {
            rules.claims = readAllowClaims(node, path: fields.path("claims"))
        }
        return rules
    }

    /// `claims: {claim path: value}` — scalar values kept as written (`true`, `42`).
    private mutating func readAllowClaims(_ node: Node, path: String) -> [String: String] {
        guard let entries = readEntries(node, path: path) else { return [:] }
        var claims: [String: String] = [:]
        for entry in entries {
            let entryPath = Fields.join(path, entry.key)
            guard Syntax.isClaimPath(entry.key) else {
                report(Self.claimPathExpectation, at: entryPath, node: entry.keyNode)
                continue
            }
            if let value = scalarText(entry.value, path: entryPath, expected: "expected a string, number or boolean") {
                claims[entry.key] = value
            }
        }
        return claims
    }

    private static func emailProblem(_ text: String) -> String? {
        guard let at = text.lastIndex(of: "@"), at != text.startIndex, text.index(after: at) != text.endIndex else {
            return "expected an email address such as alice@example.com"
        }
        return nil
    }

    private static func emailDomainProblem(_ text: String) -> String? {
        text.contains("@") ? "expected a domain without @ (example.com, not @example.com)" : nil
    }
}
