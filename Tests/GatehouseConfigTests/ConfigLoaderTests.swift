import Foundation
import GatehouseConfig
import GatehouseCore
import Testing

@Suite struct ConfigLoaderTests {
    @Test func minimalDocumentGetsDefaults() throws {
        let config = try ConfigLoader.parse(yaml: document(), file: "test.yaml", environment: [:])
        #expect(config.server == ServerConfig())
        // The limits that protect a small machine are on by default.
        #expect(config.server.maxHeaderCount == 100)
        #expect(config.server.maxConnections == 4096)
        #expect(config.server.maxConnectionsPerClient == 256)
        #expect(config.identityHeaders == GatewayConfig.defaultIdentityHeaders)
        #expect(
            config.routes == [
                RouteConfig(
                    id: "app", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000), auth: .none)
            ])
    }

    @Test func fullDocumentRoundTrip() throws {
        let yaml = """
            version: 1
            server:
              listen: ["0.0.0.0:8080", "[::1]:0", "gateway.internal:${PORT}"]
              admin_listen: "[::1]:9090"
              workers: 4
              trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.168.1.7]
              limits:
                max_header_bytes: 16KiB
                max_body_bytes: 1GB
                max_header_count: 50
                max_connections: 900
                max_connections_per_client: 0
              timeouts:
                request_header: 5s
                idle: 1m30s
                upstream_connect: 250ms
                upstream_response: 2m
                shutdown_grace: 0s
              access_log:
                format: logfmt
              upstream:
                max_idle_per_loop: 0
                max_connections_per_loop: 8
                queue_timeout: 250ms
            providers:
              - id: corp
                issuer: https://idp.example.com
            identity_headers:
              X-Auth-User: user
              X-Auth-Roles: realm_access.roles
            routes:
              - id: api.v1
                match:
                  host: "*.Example.com"
                  path: /v1/
                  methods: [GET, POST, GET]
                upstream: https://API.internal:8443/base/
                auth: jwt
                preserve_host: true
                max_body_bytes: 512KiB
                allow_encoded_slashes: true
              - id: app
                match: {host: www.example.com}
                upstream: ${APP:-http://127.0.0.1:3000}
                auth: session
              - id: public
                upstream: "http://[::1]"
                auth: none
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: ["PORT": "8081"])
        let server = config.server
        #expect(
            server.listen == [
                ListenAddress(host: "0.0.0.0", port: 8080), ListenAddress(host: "::1", port: 0),
                ListenAddress(host: "gateway.internal", port: 8081),
            ])
        #expect(server.adminListen == ListenAddress(host: "::1", port: 9090))
        #expect(server.workers == 4)
        #expect(server.trustedProxies.map(\.description) == ["10.0.0.0/8", "fd00:0:0:0:0:0:0:0/8", "192.168.1.7/32"])
        #expect(server.maxHeaderBytes == 16 * 1024)
        #expect(server.maxBodyBytes == 1_000_000_000)
        #expect(server.maxHeaderCount == 50)
        #expect(server.maxConnections == 900)
        #expect(server.maxConnectionsPerClient == 0)
        #expect(server.requestHeaderTimeout == .seconds(5))
        #expect(server.idleTimeout == .seconds(90))
        #expect(server.upstreamConnectTimeout == .milliseconds(250))
        #expect(server.upstreamResponseTimeout == .seconds(120))
        #expect(server.shutdownGrace == .seconds(0))
        #expect(server.accessLog == .logfmt)
        #expect(server.upstreamMaxIdlePerLoop == 0)
        #expect(server.upstreamMaxConnectionsPerLoop == 8)
        #expect(server.upstreamQueueTimeout == .milliseconds(250))
        #expect(config.providers == [ProviderConfig(id: "corp", issuer: "https://idp.example.com")])
        #expect(
            config.identityHeaders == [
                IdentityHeader(name: "X-Auth-User", claim: "user"),
                IdentityHeader(name: "X-Auth-Roles", claim: "realm_access.roles"),
            ])
        #expect(config.routes.count == 3)
        #expect(
            config.routes[0]
                == RouteConfig(
                    id: "api.v1", host: .wildcard(suffix: ".example.com"), pathPrefix: "/v1", methods: ["GET", "POST"],
                    upstream: UpstreamTarget(scheme: .https, host: "api.internal", port: 8443, basePath: "/base"),
                    auth: .jwt, preserveHost: true, maxBodyBytes: 512 * 1024, allowEncodedSlashes: true))
        #expect(
            config.routes[1]
                == RouteConfig(
                    id: "app", host: .exact("www.example.com"),
                    upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000), auth: .session))
        #expect(
            config.routes[2]
                == RouteConfig(
                    id: "public", upstream: UpstreamTarget(scheme: .http, host: "::1", port: 80), auth: .none))
    }

    @Test func nullMeansDefaultAndOffDisablesAdmin() throws {
        let yaml = """
            version: 1
            server:
              listen:
              admin_listen: off
              workers: auto
              limits: ~
              timeouts:
                idle: null
            identity_headers: {}
            routes:
              - id: app
                match:
                  host: null
                  path: /
                  methods: ~
                upstream: http://127.0.0.1:3000
                auth: none
                max_body_bytes: null
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
        var expected = ServerConfig()
        expected.adminListen = nil
        #expect(config.server == expected)
        #expect(config.identityHeaders.isEmpty)
        #expect(config.routes.first?.host == nil)
        #expect(config.routes.first?.methods == nil)
        #expect(config.routes.first?.maxBodyBytes == nil)
        let disabled = try ConfigLoader.parse(
            yaml: document(server: "server:\n  admin_listen: null\n"), file: "test.yaml", environment: [:])
        #expect(disabled.server.adminListen == nil)
    }

    @Test func rootPathIsKeptAndTrailingSlashDropped() throws {
        let yaml = document(
            route:
                "    match: {path: /}\n  - id: b\n    match: {path: /static/}\n    upstream: http://h\n    auth: none\n"
        )
        let config = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
        #expect(config.routes.map(\.pathPrefix) == ["/", "/static"])
    }

    @Test func everyProblemIsReportedInDocumentOrder() {
        let yaml = """
            version: 3
            server:
              listn: ["127.0.0.1:8080"]
              workers: 2
              workers: 3
              timeouts:
                idle: 0s
                request_header: soon
              tls: {}
            routes:
              - id: a
                upstream: ftp://nowhere
                auth: none
              - id: a
                upstream: ${MISSING}
                preserve_host: yes
              - match: {path: "x"}
                upstream: http://127.0.0.1:3000
                auth: jwt
            session: {}
            """
        #expect(
            problems(yaml) == [
                "test.yaml:1:10: version: unsupported version, expected 1",
                "test.yaml:3:3: server.listn: unknown key",
                "test.yaml:5:3: server.workers: duplicate key (first defined at line 4)",
                "test.yaml:7:11: server.timeouts.idle: must be greater than 0",
                "test.yaml:8:21: server.timeouts.request_header: expected a duration such as 30s, 5m, 1h30m or 250ms",
                "test.yaml:9:8: server.tls.certificate_file: required",
                "test.yaml:9:8: server.tls.private_key_file: required",
                "test.yaml:12:15: routes[0].upstream: not an http(s) URL",
                "test.yaml:14:5: routes[1].auth: required: none, jwt or session (deny by default)",
                "test.yaml:14:9: routes[1].id: duplicate route id 'a' (already used by routes[0])",
                "test.yaml:15:15: routes[1].upstream: environment variable MISSING is not set",
                "test.yaml:16:20: routes[1].preserve_host: expected true or false",
                "test.yaml:17:5: routes[2].id: required",
                "test.yaml:17:19: routes[2].match.path: must start with /",
                "test.yaml:19:11: routes[2].auth: auth: jwt needs at least one provider under providers:",
                "test.yaml:20:10: session.secrets: required",
            ])
    }

    @Test func duplicateKeysAnywhereAreAllReportedWithOtherProblems() {
        let yaml = """
            version: 1
            routes:
              - id: a
                upstream: http://127.0.0.1:3000
                auth: none
                auth: jwt
                match: {path: /a, path: /b, methods: [get]}
            routes: []
            """
        #expect(
            problems(yaml) == [
                "test.yaml:6:5: routes[0].auth: duplicate key (first defined at line 5)",
                "test.yaml:7:23: routes[0].match.path: duplicate key (first defined at line 7)",
                "test.yaml:7:43: routes[0].match.methods[0]: expected an upper-case method such as GET",
                "test.yaml:8:1: routes: duplicate key (first defined at line 2)",
            ])
    }

    @Test func errorDescriptionIsOneProblemPerLine() {
        let error = ConfigError(problems: [
            ConfigProblem(file: "a.yaml", line: 1, column: 1, path: "version", message: "required"),
            ConfigProblem(file: "a.yaml", line: 2, column: 3, path: "", message: "invalid YAML: oops"),
        ])
        #expect(error.description == "a.yaml:1:1: version: required\na.yaml:2:3: invalid YAML: oops")
    }

    @Test func loadReadsAFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("gatehouse.yaml").path
        try document().write(toFile: file, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: file, environment: [:])
        #expect(config.routes.map(\.id) == ["app"])

        try "version: 1\nroutes: []\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: file, environment: [:]) }
        do {
            _ = try ConfigLoader.load(path: file, environment: [:])
        } catch {
            #expect(error.problems.map(\.description) == ["\(file):2:9: routes: expected at least one route"])
        }
    }

    @Test func unreadableFileNamesTheFile() {
        let path = "/nonexistent/gatehouse.yaml"
        do {
            _ = try ConfigLoader.load(path: path, environment: [:])
            Issue.record("expected a ConfigError")
        } catch {
            #expect(error.description == "\(path):1:1: cannot read the configuration file: no such file")
        }
        do {
            _ = try ConfigLoader.load(path: "/", environment: [:])
            Issue.record("expected a ConfigError")
        } catch {
            #expect(error.description == "/:1:1: cannot read the configuration file: it is a directory")
        }
    }
}
