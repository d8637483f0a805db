import Logging
import NIOCore
import ServiceLifecycle

/// Runs a `GatehouseServer` as a service: binds on start, and on graceful shutdown (SIGTERM/SIGINT through the
/// `ServiceGroup`) stops accepting and drains in-flight requests for up to the configured grace period.
public struct GatehouseService: Service {
    let server: GatehouseServer
    let onStarted: @Sendable (GatehouseServer) -> Void

    public init(server: GatehouseServer, onStarted: @escaping @Sendable (GatehouseServer) -> Void = { _ in }) {
        self.server = server
        self.onStarted = onStarted
    }

    public func run() async throws {
        try await server.start()
        onStarted(server)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await server.runBackground() }
            // Returns when graceful shutdown is triggered, throws on cancellation: drain in both cases.
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await server.shutdown()
    }
}
