import GatehouseCore

extension GatehouseServer {
    /// What a valid config asks for that this build cannot serve safely. `gatehouse check` and `serve` both use
    /// it, so a config that checks clean also starts. Each entry names the config path.
    public static func unsupported(in config: GatewayConfig) -> [String] {
        var problems: [String] = []
        for (index, route) in config.routes.enumerated() {
            if route.auth == .session {
                if config.session == nil {
                    problems.append("routes[\(index)].auth: session needs a session: section (with secrets)")
                }
                let ids = route.providers ?? config.providers.map(\.id)
                if !ids.contains(where: { id in config.providers.first { $0.id == id }?.clientID != nil }) {
                    problems.append(
                        "routes[\(index)].auth: session needs a provider with client_id (the browser login's OIDC client)"
                    )
                }
            }
            if route.auth == .jwt || route.auth == .session {
                let ids = route.providers ?? config.providers.map(\.id)
                if ids.isEmpty { problems.append("routes[\(index)].auth: jwt needs at least one provider") }
                for id in ids {
                    guard let provider = config.providers.first(where: { $0.id == id }) else {
                        problems.append("routes[\(index)].providers: unknown provider '\(id)'")
                        continue
                    }
                    if provider.acceptedAudiences.isEmpty {
                        problems.append(
                            "providers '\(id)': set audiences or client_id: a bearer token's aud must be checked (RFC 8725 §3.9)"
                        )
                    }
                }
            }
        }
        if let session = config.session, session.secrets.isEmpty {
            problems.append("session.secrets: required")
        }
        return problems
    }
}
