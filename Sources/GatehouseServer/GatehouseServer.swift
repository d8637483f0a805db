import GatehouseAuth
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Binds the proxy listeners and the admin listener for one config snapshot, and shuts them down gracefully:
/// stop accepting, let in-flight requests finish up to the grace period, then close what is left.
public final class GatehouseServer: Sendable {
    public let config: GatewayConfig
    let group: EventLoopGroup
    let runtime: ProxyRuntime
    let logger: Logger
    let state: NIOLockedValueBox<State>
    let readiness: Readiness
    /// Failed accepts on every listener since start (AcceptErrors; metric-ready).
    let acceptErrorCount = NIOLockedValueBox(0)

    struct State {
        var listeners: [Channel] = []
        var tlsListeners: [Channel] = []
        var admin: Channel?
        /// Open client connections: told to quiesce on shutdown, closed when they outlive the grace period.
        var clients: [ObjectIdentifier: Channel] = [:]
        var draining = false
        var drained: EventLoopPromise<Void>?
        var admission: ConnectionAdmission
    }

    /// Reports whether the process is ready for traffic (`/readyz`): listeners bound and every provider's keys
    /// fetched once.
    public final class Readiness: Sendable {
        private let listening = NIOLockedValueBox(false)
        let keyStore: KeyStore?
        init(keyStore: KeyStore?) { self.keyStore = keyStore }
        public var isReady: Bool { listening.withLockedValue { $0 } && (keyStore?.allReady ?? true) }
        func set(_ value: Bool) { listening.withLockedValue { $0 = value } }
    }

    /// The providers' keys (nil without providers).
    public let keyStore: KeyStore?
    let keySource: HTTPKeySource?
    let serverTLS: ServerTLS?
    /// The login's HTTP clients when key fetching uses another source (tests inject one).
    let oidcHTTP: HTTPKeySource?

    public init(
        config: GatewayConfig, group: EventLoopGroup, logger: Logger,
        logHandlerFactory: @escaping @Sendable (String) -> LogHandler, keySource: KeySource? = nil
    ) throws(GatehouseStartupError) {
        let problems = GatehouseServer.unsupported(in: config)
        if !problems.isEmpty { throw GatehouseStartupError(message: problems.joined(separator: "\n")) }
        self.config = config
        state = NIOLockedValueBox(
            State(
                admission: ConnectionAdmission(
                    maxTotal: config.server.maxConnections, maxPerClient: config.server.maxConnectionsPerClient)))
        self.group = group
        self.logger = logger
        var authenticator: BearerAuthenticator?
        if config.providers.isEmpty {
            keyStore = nil
            self.keySource = nil
        } else {
            let source: KeySource
            if let keySource {
                source = keySource
                self.keySource = nil
            } else {
                do {
                    let http = try HTTPKeySource(providers: config.providers, eventLoopGroup: group)
                    self.keySource = http
                    source = http
                } catch {
                    throw GatehouseStartupError(message: "providers: cannot set up TLS for key fetching: \(error)")
                }
            }
            let store = KeyStore(providers: config.providers, source: source, logger: logger)
            keyStore = store
            authenticator = BearerAuthenticator(store: store)
        }
        var browserLogin: BrowserLogin?
        if let session = config.session, let keyStore {
            let http: HTTPKeySource
            do {
                http = try self.keySource ?? HTTPKeySource(providers: config.providers, eventLoopGroup: group)
            } catch {
                throw GatehouseStartupError(message: "providers: cannot set up TLS for the login: \(error)")
            }
            self.oidcHTTP = self.keySource == nil ? http : nil
            browserLogin = BrowserLogin(
                config: config, session: session, keyStore: keyStore, oidc: OIDCClient(http: http), logger: logger,
                scheme: "http")
        } else {
            self.oidcHTTP = nil
        }
        if let tls = config.server.tls {
            serverTLS = try ServerTLS(config: tls, logger: logger)
        } else {
            serverTLS = nil
        }
        let upstreamTLS: [UpstreamTLS: NIOSSLContext]
        do {
            upstreamTLS = try ProxyRuntime.makeUpstreamTLSContexts(config, logger: logger)
        } catch {
            throw GatehouseStartupError(message: "upstream_tls: \(error)")
        }
        self.runtime = ProxyRuntime(
            config: config, group: group,
            accessLog: AccessLog(format: config.server.accessLog, makeHandler: logHandlerFactory), logger: logger,
            authenticator: authenticator, browserLogin: browserLogin, upstreamTLS: upstreamTLS)
        self.readiness = Readiness(keyStore: keyStore)
    }

    /// Background work that runs while the server serves: fetching and refreshing providers' keys. Returns when
    /// cancelled.
    public func runBackground() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.keyStore?.run() }
            if let tls = self.serverTLS {
                // Certificate files replaced on disk (cert-manager, certbot) are picked up within 5 s.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(5))
                        if Task.isCancelled { break }
                        tls.reloadIfChanged()
                    }
                }
            }
        }
    }

    /// The addresses actually bound (useful with port 0).
    public var listeningAddresses: [SocketAddress] {
        state.withLockedValue { $0.listeners.compactMap { $0.localAddress } }
    }

    /// The HTTPS listeners' addresses.
    public var tlsAddresses: [SocketAddress] {
        state.withLockedValue { $0.tlsListeners.compactMap { $0.localAddress } }
    }

    /// Re-reads the TLS certificate and key (SIGHUP). Returns false when there is no TLS listener or the new
    /// files are bad (the old certificate stays in use).
    @discardableResult
    public func reloadTLS(reason: String = "SIGHUP") -> Bool {
        serverTLS?.reload(reason: reason) ?? false
    }

    public var adminAddress: SocketAddress? {
        state.withLockedValue { $0.admin?.localAddress }
    }

    public var isReady: Bool { readiness.isReady }

    /// Binds every listener. Throws (and binds nothing further) when an address cannot be bound.
    public func start() async throws {
        let runtime = self.runtime
        let server = config.server
        let cleartextH2 = server.http2.cleartext
        for address in server.listen {
            try await bind(address, tls: false) { channel in
                if cleartextH2 {
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(CleartextProtocolDetector(runtime: runtime))
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try GatehouseServer.configureClientPipeline(channel, runtime: runtime)
                }
            }
        }
        if let tls = serverTLS {
            for address in tls.config.listen {
                try await bind(address, tls: true) { channel in
                    GatehouseServer.configureTLSPipeline(channel, runtime: runtime, tls: tls)
                }
            }
        }
        if let adminAddress = server.adminListen {
            let readiness = self.readiness
            let adminListener = "\(adminAddress.host):\(adminAddress.port) (admin)"
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { [logger, acceptErrorCount] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            AcceptErrorHandler(logger: logger, listener: adminListener, count: acceptErrorCount))
                    }
                }
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(AdminHandler(readiness: readiness))
                    }
                }
                .bind(host: adminAddress.host, port: adminAddress.port).get()
            state.withLockedValue { $0.admin = channel }
            logger.info(
                "admin listening", metadata: ["address": "\(adminAddress.host):\(channel.localAddress?.port ?? 0)"])
        }
        readiness.set(true)
    }

    /// Binds one listener; every accepted connection is tracked for the graceful drain, then `configure`d.
    private func bind(
        _ address: ListenAddress, tls: Bool, configure: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) async throws {
        let listener = "\(address.host):\(address.port)"
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { [logger, acceptErrorCount] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptErrorHandler(logger: logger, listener: listener, count: acceptErrorCount))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [state, logger] channel in
                let id = ObjectIdentifier(channel)
                let client = ConnectionAdmission.clientKey(channel.remoteAddress)
                let decision = state.withLockedValue { s -> (ConnectionAdmission.Decision, refusals: Int)? in
                    if s.draining { return nil }
                    let decision = s.admission.admit(client)
                    if decision == .admit { s.clients[id] = channel }
                    return (decision, s.admission.refusedTotal + s.admission.refusedPerClient)
                }
                guard let (decision, refusals) = decision else { return channel.close() }
                guard decision == .admit else {
                    // Logged at the 1st, 2nd, 4th, 8th ... refusal: a flood must not flood the log as well.
                    if refusals & (refusals - 1) == 0 {
                        logger.warning(
                            "client connection refused",
                            metadata: [
                                "reason":
                                    "\(decision == .refuseTotal ? "max_connections" : "max_connections_per_client")",
                                "refused_so_far": "\(refusals)",
                            ])
                    }
                    return GatehouseServer.refuse(channel, perClient: decision == .refusePerClient, tls: tls)
                }
                channel.closeFuture.whenComplete { _ in
                    let done = state.withLockedValue { s -> EventLoopPromise<Void>? in
                        s.clients.removeValue(forKey: id)
                        s.admission.release(client)
                        guard s.draining, s.clients.isEmpty else { return nil }
                        defer { s.drained = nil }
                        return s.drained
                    }
                    done?.succeed()
                }
                return configure(channel)
            }
            .bind(host: address.host, port: address.port).get()
        state.withLockedValue { s in
            if tls { s.tlsListeners.append(channel) } else { s.listeners.append(channel) }
        }
        logger.info(
            tls ? "listening (TLS)" : "listening",
            metadata: ["address": "\(address.host):\(channel.localAddress?.port ?? 0)"])
    }

    static func configureClientPipeline(_ channel: Channel, runtime: ProxyRuntime, scheme: String? = nil) throws {
        let server = runtime.config.server
        let timeouts = ConnectionTimeoutHandler(
            requestHeader: TimeAmount(server.requestHeaderTimeout), idle: TimeAmount(server.idleTimeout))
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(LingeringCloseHandler())
        try sync.addHandler(timeouts)
        let isTLS = (try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
        try sync.addHandler(
            HTTP1Connection(
                runtime: runtime, timeouts: timeouts, scheme: scheme ?? (isTLS ? "https" : "http"),
                eventLoop: channel.eventLoop))
    }

    /// Graceful shutdown: not ready, stop accepting, finish in-flight exchanges, close idle keep-alive
    /// connections; after `grace`, close whatever is left.
    public func shutdown(grace: TimeAmount? = nil) async {
        readiness.set(false)
        let grace = grace ?? TimeAmount(config.server.shutdownGrace)
        // 1. stop accepting
        let listeners = state.withLockedValue { s in
            defer {
                s.listeners = []
                s.tlsListeners = []
            }
            return s.listeners + s.tlsListeners
        }
        for listener in listeners { try? await listener.close() }
        // 2. ask every open connection to finish its exchange and close (HTTP1Connection does this on
        //    ChannelShouldQuiesceEvent: idle ones close now, busy ones after their response)
        let loop = group.next()
        let promise = loop.makePromise(of: Void.self)
        let clients = state.withLockedValue { s -> [Channel] in
            s.draining = true
            if s.clients.isEmpty { promise.succeed() } else { s.drained = promise }
            return Array(s.clients.values)
        }
        for channel in clients {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        // 3. wait for them, up to the grace period
        let timer = loop.scheduleTask(in: grace) { promise.fail(ChannelError.ioOnClosedChannel) }
        do {
            try await promise.futureResult.get()
            timer.cancel()
        } catch {
            let remaining = state.withLockedValue { Array($0.clients.values) }
            logger.warning(
                "shutdown grace period over; closing remaining connections",
                metadata: ["connections": "\(remaining.count)"])
            for channel in remaining { try? await channel.close() }
        }
        let admin = state.withLockedValue { $0.admin }
        try? await admin?.close()
        // PerLoop.forEach hops to each pool's event loop; it is not Sequence.forEach.
        // swift-format-ignore: ReplaceForEachWithForLoop
        await runtime.upstreamPools.forEach { $0.shutdown() }
        await keySource?.shutdown()
        await oidcHTTP?.shutdown()
    }
}

public struct GatehouseStartupError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
