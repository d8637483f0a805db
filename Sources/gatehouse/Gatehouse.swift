import ArgumentParser
import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A reverse authentication proxy.",
        version: GatehouseVersion.string,
        subcommands: [Serve.self, Check.self, Dev.self, MintSession.self, Version.self]
    )
}

enum GatehouseVersion {
    static let string = "0.1.0"
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Path to the YAML config file.")
    var config: String = "Config/gatehouse.yaml"
}

/// Seals a session cookie with the config's first session secret: for load tests and debugging of session
/// routes without a browser login. Anyone who can run it already holds the secret, so it grants nothing new.
struct MintSession: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mint-session",
        abstract: "Print a Cookie header value holding a session sealed with the config's session secret.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Provider id the session belongs to (default: the first provider with a client_id).")
    var provider: String?
    @Option(help: "The session's claims, a JSON object.")
    var claims: String = #"{"sub":"load-test"}"#
    @Option(help: "Lifetime in seconds (session and access token).")
    var lifetime: Int64 = 3600

    func run() throws {
        let config = try loadConfig(options.config)
        guard let session = config.session else {
            FileHandle.standardError.write(Data("\(options.config): no session: section\n".utf8))
            throw ExitCode(1)
        }
        guard let providerID = provider ?? config.providers.first(where: { $0.clientID != nil })?.id,
            config.providers.contains(where: { $0.id == providerID })
        else {
            FileHandle.standardError.write(Data("\(options.config): no such provider\n".utf8))
            throw ExitCode(1)
        }
        guard case .object(let claimObject)? = try? JSONValue.parse(Array(claims.utf8)),
            (1...(30 * 86_400)).contains(lifetime)
        else {
            FileHandle.standardError.write(Data("--claims must be a JSON object and --lifetime 1...2592000\n".utf8))
            throw ExitCode(1)
        }
        let now = Int64(Date().timeIntervalSince1970)
        let record = SessionRecord(
            providerID: providerID, sessionID: LoginRandom.token(bytes: 12), claims: claimObject, createdAt: now,
            expiresAt: now + lifetime, accessTokenExpiresAt: now + lifetime)
        guard let sealed = CookieSealer(secrets: session.secrets).seal(record.encoded(), purpose: .session),
            let parts = SessionCookieNames(base: session.cookieName).split(sealed)
        else {
            FileHandle.standardError.write(Data("the session is too large for cookies\n".utf8))
            throw ExitCode(1)
        }
        print(parts.map { "\($0.name)=\($0.value)" }.joined(separator: "; "))
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() {
        print("gatehouse \(GatehouseVersion.string)")
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a config file and print the resolved routes.")
    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try loadConfig(options.config)
        let unsupported = GatehouseServer.unsupported(in: config)
        if !unsupported.isEmpty {
            FileHandle.standardError.write(
                Data((unsupported.map { "\(options.config): \($0)" }.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(1)
        }
        print("config OK: \(options.config)")
        print("listen: \(config.server.listen.map(\.description).joined(separator: ", "))")
        print("admin: \(config.server.adminListen?.description ?? "off")")
        print("routes (\(config.routes.count)):")
        for route in config.routes {
            let host = route.host?.description ?? "*"
            let methods = route.methods.map { $0.sorted().joined(separator: ",") } ?? "any"
            print(
                "  \(route.id): host=\(host) path=\(route.pathPrefix) methods=\(methods) auth=\(route.auth.rawValue) -> \(route.upstream)"
            )
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy with a config file.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try loadConfig(options.config)
        try await runGatehouse(config: config, banner: nil)
    }
}

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development quick start: a built-in echo upstream behind Gatehouse. NOT for production.")
    @Option(help: "Port for the proxy listener on 127.0.0.1.") var port: Int = 8080
    @Option(help: "Port for the admin listener on 127.0.0.1.") var adminPort: Int = 9090

    func run() async throws {
        let bootGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoUpstream.start(group: bootGroup)
        guard let echoPort = echo.localAddress?.port,
            let upstream = UpstreamTarget.parse("http://127.0.0.1:\(echoPort)")
        else { throw ExitCode(1) }
        // A development identity provider: a fresh ES256 key, its JWKS in a temporary file, and a token.
        let signer = DevTokenSigner()
        let jwksPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gatehouse-dev-\(getpid())-jwks.json"
        ).path
        try Data(signer.jwks.utf8).write(to: URL(fileURLWithPath: jwksPath))
        defer { try? FileManager.default.removeItem(atPath: jwksPath) }
        let issuer = "https://dev.gatehouse.invalid"
        let now = Int(Date().timeIntervalSince1970)
        let token = try signer.sign(
            claimsJSON:
                #"{"iss":"\#(issuer)","aud":"gatehouse-dev","sub":"dev-user","email":"dev@example.com","preferred_username":"dev","groups":["developers"],"scope":"orders.read","iat":\#(now),"exp":\#(now + 12 * 3600)}"#
        )
        let outsider = try signer.sign(
            claimsJSON:
                #"{"iss":"\#(issuer)","aud":"gatehouse-dev","sub":"guest","email":"guest@example.org","groups":["guests"],"iat":\#(now),"exp":\#(now + 12 * 3600)}"#
        )
        let config = GatewayConfig(
            server: ServerConfig(
                listen: [ListenAddress(host: "127.0.0.1", port: port)],
                adminListen: ListenAddress(host: "127.0.0.1", port: adminPort), workers: 2, accessLog: .json),
            providers: [
                ProviderConfig(
                    id: "dev", issuer: issuer, jwksURI: "file://" + jwksPath, audiences: ["gatehouse-dev"])
            ],
            identityHeaders: GatewayConfig.defaultIdentityHeaders,
            routes: [
                RouteConfig(id: "public", pathPrefix: "/public", upstream: upstream, auth: .none),
                RouteConfig(
                    id: "private", pathPrefix: "/private", upstream: upstream, auth: .jwt,
                    allow: AllowRules(anyGroup: ["developers"])),
                RouteConfig(id: "echo", pathPrefix: "/", upstream: upstream, auth: .none),
            ])
        let banner = """
            ================================================================
             gatehouse dev: DEVELOPMENT MODE. A built-in echo upstream and a
             throw-away signing key; do not expose this to a network.
            ================================================================
             proxy:  http://127.0.0.1:\(port)    admin: http://127.0.0.1:\(adminPort)
             echo upstream (direct): http://127.0.0.1:\(echoPort)

             Open route:
               curl -s http://127.0.0.1:\(port)/public/hello
               curl -s -H 'X-Forwarded-User: mallory' http://127.0.0.1:\(port)/public/spoof   # forged header stripped
               curl -s --data-binary 'hello' http://127.0.0.1:\(port)/upload                   # body streamed back
             Protected route (auth: jwt, allow any_group: developers):
               curl -si http://127.0.0.1:\(port)/private/                                      # 401
               curl -s -H 'Authorization: Bearer \(token)' http://127.0.0.1:\(port)/private/hello
               curl -si -H 'Authorization: Bearer \(outsider)' http://127.0.0.1:\(port)/private/  # 403
             Health:
               curl -s http://127.0.0.1:\(adminPort)/readyz
            ================================================================
            """
        try await runGatehouse(config: config, banner: banner)
        try await echo.close()
        try await bootGroup.shutdownGracefully()
    }
}

/// Loads and validates a config file; problems go to standard error and the command exits 1.
func loadConfig(_ path: String) throws -> GatewayConfig {
    do {
        return try ConfigLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(1)
    }
}

func runGatehouse(config: GatewayConfig, banner: String?) async throws {
    let format = config.server.accessLog == .off ? AccessLogFormat.json : config.server.accessLog
    let factory: @Sendable (String) -> LogHandler = { label in StructuredLogHandler(label: label, format: format) }
    LoggingSystem.bootstrap(factory)
    let logger = Logger(label: "gatehouse")
    let group = MultiThreadedEventLoopGroup(numberOfThreads: config.server.workers ?? System.coreCount)
    // The server (and its quiescing helper) must be gone before the event loops shut down.
    let outcome = await serve(config: config, group: group, logger: logger, factory: factory, banner: banner)
    try await group.shutdownGracefully()
    if case .failure(let message) = outcome {
        FileHandle.standardError.write(Data("gatehouse: \(message)\n".utf8))
        throw ExitCode(1)
    }
}

enum ServeOutcome {
    case stopped
    case failure(String)
}

private func serve(
    config: GatewayConfig, group: EventLoopGroup, logger: Logger, factory: @escaping @Sendable (String) -> LogHandler,
    banner: String?
) async -> ServeOutcome {
    let server: GatehouseServer
    do {
        server = try GatehouseServer(config: config, group: group, logger: logger, logHandlerFactory: factory)
    } catch {
        return .failure("\(error)")
    }
    let service = GatehouseService(server: server) { _ in
        if let banner { FileHandle.standardOutput.write(Data((banner + "\n").utf8)) }
    }
    // SIGHUP re-reads the TLS certificate and key (the new pair serves new connections; open ones keep theirs).
    signal(SIGHUP, SIG_IGN)
    let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    hangup.setEventHandler { server.reloadTLS(reason: "SIGHUP") }
    hangup.resume()
    defer { hangup.cancel() }
    let serviceGroup = ServiceGroup(
        configuration: .init(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await serviceGroup.run()
        return .stopped
    } catch {
        return .failure("\(error)")
    }
}
