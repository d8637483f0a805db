import Foundation
import GatehouseConfig
import GatehouseCore
import Testing

/// Every YAML file shipped in Config/ must load: they are documentation users copy.
@Suite struct ConfigFilesTests {
    /// `<package>/Config`, found from this file's location.
    static let configDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config").resolvingSymlinksInPath()

    /// Variables the shipped files read (all have defaults; set here to prove they are used).
    static let environment = [
        "ASSETS_UPSTREAM": "http://10.0.2.10:8081", "APP_UPSTREAM": "http://10.0.2.11:8000",
        "GATEHOUSE_CLIENT_SECRET": "client-secret", "GATEHOUSE_COOKIE_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ]

    static func yamlFiles() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: configDirectory.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
    }

    @Test func shippedFilesExist() {
        let files = Self.yamlFiles()
        #expect(files.contains("gatehouse.yaml"))
        #expect(files.contains("reference.yaml"))
        #expect(files.contains("examples/legacy-app.yaml"))
        #expect(files.contains("examples/jwt-keycloak.yaml"))
        #expect(files.contains("examples/jwt-entra-id.yaml"))
        #expect(files.contains("examples/jwt-auth0.yaml"))
    }

    @Test(arguments: yamlFiles())
    func loads(file: String) throws {
        let path = Self.configDirectory.appendingPathComponent(file).path
        _ = try ConfigLoader.load(path: path, environment: Self.environment)
    }

    @Test func defaultConfigMatchesItsDescription() throws {
        let path = Self.configDirectory.appendingPathComponent("gatehouse.yaml").path
        let config = try ConfigLoader.load(path: path, environment: [:])
        #expect(config.server.listen == [ListenAddress(host: "127.0.0.1", port: 8080)])
        #expect(config.server.adminListen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.routes.count == 1)
        #expect(config.routes.first?.auth == AuthMode.none)
        #expect(config.routes.first?.upstream == UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000))
    }

    @Test func referenceShowsTheDefaults() throws {
        let path = Self.configDirectory.appendingPathComponent("reference.yaml").path
        let config = try ConfigLoader.load(path: path, environment: [:])
        #expect(config.server == ServerConfig())
        #expect(config.identityHeaders == GatewayConfig.defaultIdentityHeaders)
        #expect(config.providers == [ProviderConfig(id: "corp", issuer: "https://idp.example.com/realms/corp", audiences: ["api://orders"])])
        #expect(
            config.routes == [
                RouteConfig(
                    id: "app", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000), auth: .none),
                RouteConfig(
                    id: "api", pathPrefix: "/api",
                    upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 4000),
                    auth: .jwt),
            ])
    }

    /// The JWT examples name each provider's real issuer and audience shapes; a typo there locks everyone out.
    @Test func jwtExamplesMatchTheirProviders() throws {
        func load(_ name: String) throws -> GatewayConfig {
            try ConfigLoader.load(
                path: Self.configDirectory.appendingPathComponent("examples/\(name)").path, environment: [:])
        }
        let keycloak = try #require(try load("jwt-keycloak.yaml").providers.first)
        #expect(keycloak.issuer == "https://sso.example.com/realms/acme")
        #expect(keycloak.acceptedAudiences == ["orders-api"])
        #expect(keycloak.claims.groups == "realm_access.roles")
        #expect(keycloak.algorithms == [.rs256])

        let entra = try load("jwt-entra-id.yaml")
        let entraProvider = try #require(entra.providers.first)
        #expect(entraProvider.issuer.hasPrefix("https://login.microsoftonline.com/"))
        #expect(entraProvider.issuer.hasSuffix("/v2.0"))
        #expect(entraProvider.claims.groups == "roles")
        #expect(entra.routes.first?.allow.scopes == ["Orders.Read"])

        let auth0 = try load("jwt-auth0.yaml")
        let auth0Provider = try #require(auth0.providers.first)
        #expect(auth0Provider.issuer == "https://acme.auth0.com/")
        #expect(auth0Provider.acceptedAudiences == ["https://api.example.com/orders"])
        #expect(auth0Provider.claims.groups == "permissions")
        #expect(auth0.routes.allSatisfy { $0.auth == .jwt })
    }

    @Test func legacyExampleUsesTheEnvironment() throws {
        let path = Self.configDirectory.appendingPathComponent("examples/legacy-app.yaml").path
        let config = try ConfigLoader.load(path: path, environment: Self.environment)
        #expect(config.routes.map(\.id) == ["assets", "uploads", "app"])
        #expect(config.routes.first?.upstream.host == "10.0.2.10")
        #expect(config.routes.first?.pathPrefix == "/static")
        #expect(config.routes[1].maxBodyBytes == Int64(100 * 1024 * 1024))
        #expect(config.server.trustedProxies.count == 2)
    }
}
