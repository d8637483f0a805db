import GatehouseCore
import Yams

/// `session:` and `login:` — browser sessions and the login endpoints (issue 4).
extension NodeReader {
    static let sessionKeys: Set<String> = [
        "cookie_name", "secrets", "secure", "same_site", "domain", "lifetime", "refresh", "store", "postgres",
    ]
    static let loginKeys: Set<String> = [
        "path_prefix", "redirect_url", "allowed_redirect_hosts", "post_logout_redirect_url",
    ]
    static let secretExpectation = "expected base64 of at least 32 random bytes (e.g. openssl rand -base64 32)"

    mutating func readSession(_ node: Node, path: String) -> SessionConfig {
        var config = SessionConfig()
        guard let fields = readMapping(node, path: path, known: Self.sessionKeys) else { return config }
        if let node = fields.value("cookie_name"), let name = nonEmptyString(node, path: fields.path("cookie_name")) {
            if Syntax.isRouteID(name), !name.contains(".") {
                config.cookieName = name
            } else {
                report("expected 1 to 64 letters, digits, '-' or '_'", at: fields.path("cookie_name"), node: node)
            }
        }
        if let node = required(fields, "secrets"), let items = list(node, path: fields.path("secrets")) {
            if items.isEmpty { report("must list at least one secret", at: fields.path("secrets"), node: node) }
            for (index, item) in items.enumerated() {
                let itemPath = "\(fields.path("secrets"))[\(index)]"
                guard let text = nonEmptyString(item, path: itemPath) else { continue }
                guard let bytes = Self.decodeBase64(text), bytes.count >= 32 else {
                    report(Self.secretExpectation, at: itemPath, node: item)
                    continue
                }
                config.secrets.append(bytes)
            }
        }
        if let node = fields.value("secure"), let value = bool(node, path: fields.path("secure")) {
            config.secure = value
        }
        if let node = fields.value("same_site"),
            let value = choice(
                node, path: fields.path("same_site"), [SessionConfig.SameSite.lax, .strict, .none],
                expectation: "expected lax, strict or none")
        {
            config.sameSite = value
            if value == .none && !config.secure {
                report(
                    "same_site: none requires secure: true (browsers drop such cookies)", at: fields.path("same_site"),
                    node: node)
            }
        }
        if let node = fields.value("domain"), let text = nonEmptyString(node, path: fields.path("domain")) {
            let bare = text.hasPrefix(".") ? String(text.dropFirst()) : text
            if HostPattern.parse(bare) == .exact(bare.lowercased()), !bare.contains(":") {
                config.domain = text.lowercased()
            } else {
                report("expected a domain name such as .example.com", at: fields.path("domain"), node: node)
            }
        }
        // Cookie name prefixes (RFC 6265bis §4.1.3): browsers enforce them, so a config that breaks their
        // rules would silently lose every cookie.
        if config.cookieName.hasPrefix("__Host-") || config.cookieName.hasPrefix("__Secure-"),
            let node = fields.value("cookie_name")
        {
            if !config.secure {
                report(
                    "a __Host- or __Secure- cookie name needs secure: true", at: fields.path("cookie_name"), node: node)
            } else if config.cookieName.hasPrefix("__Host-") && config.domain != nil {
                report("a __Host- cookie name cannot have a domain", at: fields.path("cookie_name"), node: node)
            }
        }
        if let node = fields.value("lifetime"), let value = duration(node, path: fields.path("lifetime")) {
            if value < .seconds(60) || value > .seconds(30 * 86_400) {
                report("must be between 1m and 30d", at: fields.path("lifetime"), node: node)
            } else {
                config.lifetime = value
            }
        }
        if let node = fields.value("refresh"), let value = bool(node, path: fields.path("refresh")) {
            config.refresh = value
        }
        if let node = fields.value("store"),
            let value = choice(
                node, path: fields.path("store"), [SessionConfig.Store.cookie, .postgres],
                expectation: "expected cookie or postgres")
        {
            if value == .postgres {
                report(
                    "not supported yet: store: postgres (the shared session store) is not in this build; use store: cookie",
                    at: fields.path("store"), node: node)
            }
            config.store = value
        }
        if let node = fields.node("postgres") {
            report(
                "not supported yet: the postgres session store is not in this build", at: fields.path("postgres"),
                node: node)
        }
        return config
    }

    mutating func readLogin(_ node: Node, path: String) -> LoginConfig {
        var config = LoginConfig()
        guard let fields = readMapping(node, path: path, known: Self.loginKeys) else { return config }
        if let node = fields.value("path_prefix"), let text = string(node, path: fields.path("path_prefix")) {
            switch Syntax.pathPrefix(text) {
            case .success(let prefix) where prefix != "/":
                config.pathPrefix = prefix
            case .success:
                report(
                    "must not be / (the endpoints need their own prefix)", at: fields.path("path_prefix"), node: node)
            case .failure(let error):
                report(error.description, at: fields.path("path_prefix"), node: node)
            }
        }
        if let node = fields.value("redirect_url"), let text = nonEmptyString(node, path: fields.path("redirect_url")) {
            if let url = AbsoluteURL(text), !text.contains("?"), !text.contains("#") {
                if url.path == config.pathPrefix + "/callback" {
                    config.redirectURL = text
                } else {
                    report(
                        "must end in \(config.pathPrefix)/callback (the callback endpoint)",
                        at: fields.path("redirect_url"),
                        node: node)
                }
            } else {
                report(
                    "expected an absolute http(s):// URL without query or fragment", at: fields.path("redirect_url"),
                    node: node)
            }
        }
        if let node = fields.value("allowed_redirect_hosts"),
            let items = strings(
                node, path: fields.path("allowed_redirect_hosts"),
                check: { HostPattern.parse($0) == nil ? "expected a host name or *.suffix" : nil })
        {
            config.allowedRedirectHosts = items.compactMap(HostPattern.parse)
        }
        if let node = fields.value("post_logout_redirect_url"),
            let text = nonEmptyString(node, path: fields.path("post_logout_redirect_url"))
        {
            if text.hasPrefix("/") && !text.hasPrefix("//") || AbsoluteURL(text) != nil {
                config.postLogoutRedirectURL = text
            } else {
                report(
                    "expected a path starting with / or an absolute http(s):// URL",
                    at: fields.path("post_logout_redirect_url"), node: node)
            }
        }
        return config
    }

    /// Standard or URL-safe base64, padding optional.
    static func decodeBase64(_ text: String) -> [UInt8]? {
        var s = String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
        while s.hasSuffix("=") { s.removeLast() }
        return Base64URL.decode(s.utf8)
    }
}
