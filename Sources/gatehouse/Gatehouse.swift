import ArgumentParser
import Foundation
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
        subcommands: [Serve.self, Check.self, Dev.self, Version.self]
    )
}

enum GatehouseVersion {
    static let string = "0.1.0"
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Path to the YAML config file.")
    var config: String = "Config/gatehouse.yaml"
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
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(path: options.config, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        print("config OK: \(options.config)")
        print("listen: \(config.server.listen.map(\.description).joined(separator: ", "))")
        print("admin: \(config.server.adminListen?.description ?? "off")")
        print("routes (\(config.routes.count)):")
        for route in config.routes {
            let host = route.host?.description ?? "*"
            let methods = route.methods.map { $0.sorted().joined(separator: ",") } ?? "any"
            print("  \(route.id): host=\(host) path=\(route.pathPrefix) methods=\(methods) auth=\(route.auth.rawValue) -> \(route.upstream)")
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy with a config file.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(path: options.config, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
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
        let config = GatewayConfig(
            server: ServerConfig(
                listen: [ListenAddress(host: "127.0.0.1", port: port)],
                adminListen: ListenAddress(host: "127.0.0.1", port: adminPort), workers: 2, accessLog: .json),
            identityHeaders: GatewayConfig.defaultIdentityHeaders,
            routes: [
                RouteConfig(id: "public", pathPrefix: "/public", upstream: upstream, auth: .none),
                RouteConfig(id: "echo", pathPrefix: "/", upstream: upstream, auth: .none),
            ])
        let banner = """
            ================================================================
             gatehouse dev: DEVELOPMENT MODE. Open routes to a built-in echo
             upstream; do not expose this to a network.
            ================================================================
             proxy:  http://127.0.0.1:\(port)    admin: http://127.0.0.1:\(adminPort)
             echo upstream (direct): http://127.0.0.1:\(echoPort)

             Try:
               curl -s http://127.0.0.1:\(port)/public/hello
               curl -s -H 'X-Forwarded-User: mallory' http://127.0.0.1:\(port)/public/spoof   # forged header is stripped
               curl -s --data-binary 'hello' http://127.0.0.1:\(port)/upload                   # body streamed back
               curl -s http://127.0.0.1:\(adminPort)/readyz
             Protected (JWT) routes arrive with issue 3; this build serves auth: none only.
            ================================================================
            """
        try await runGatehouse(config: config, banner: banner)
        try await echo.close()
        try await bootGroup.shutdownGracefully()
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
