import GatehouseCore
import Yams

extension NodeReader {
    static let documentKeys: Set<String> = [
        "version", "server", "providers", "identity_headers", "routes", "session", "login",
    ]

    /// Reads the whole document. The result is only meaningful when no problem was reported.
    mutating func readDocument(_ root: Node?) -> GatewayConfig {
        let server = ServerConfig()
        let empty = GatewayConfig(server: server, identityHeaders: GatewayConfig.defaultIdentityHeaders, routes: [])
        guard let root, !root.isNull else {
            report("the document is empty (expected version: 1 and routes)", at: "", .start)
            return empty
        }
        guard let fields = readMapping(root, path: "", section: .document, known: Self.documentKeys) else {
            return empty
        }
        readVersion(fields)
        var config = empty
        if let node = fields.value("server") {
            config.server = readServer(node, path: "server")
        }
        if let node = fields.value("identity_headers") {
            config.identityHeaders = readIdentityHeaders(node, path: "identity_headers")
        }
        var declared = DeclaredProviders()
        if let node = fields.value("providers") {
            (config.providers, declared) = readProviders(node, path: "providers")
        }
        config.routes = readRoutes(fields, providers: declared)
        if let node = fields.value("session") {
            config.session = readSession(node, path: "session")
        }
        if let node = fields.value("login") {
            config.login = readLogin(node, path: "login")
        }
        return config
    }

    /// `version: 1` is required so that a future incompatible format can be told apart.
    private mutating func readVersion(_ fields: Fields) {
        guard let node = fields.node("version") else {
            report("required", at: "version", .start)
            return
        }
        guard !node.isNull else {
            report("required", at: "version", node: node)
            return
        }
        guard let text = string(node, path: "version", expected: "unsupported version, expected 1") else { return }
        if text != "1" {
            report("unsupported version, expected 1", at: "version", node: node)
        }
    }
}
