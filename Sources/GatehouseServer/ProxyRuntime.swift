import GatehouseAuth
import GatehouseCore
import GatehouseUpstream
import Logging
import NIOCore
import NIOSSL

/// Everything a client connection needs, built once from a config snapshot and shared (immutably) by all
/// connections and event loops.
final class ProxyRuntime: Sendable {
    let config: GatewayConfig
    let routes: RouteTable
    let headerRules: HeaderRules
    /// One upstream pool per event loop (the HTTP/1.1 edge's), loop-confined.
    let upstreamPools: PerLoop<GatehouseUpstream.UpstreamPool>
    let accessLog: AccessLog
    let logger: Logger
    let scheme: String
    let authenticator: BearerAuthenticator?
    let tokenCaches: PerLoop<VerifiedTokenCache>
    /// The browser login and sessions; nil without a `session:` section.
    let browserLogin: BrowserLogin?
    let sessionCaches: PerLoop<OpenedSessionCache>
    /// One TLS client context per distinct `upstream_tls` of the routes' https upstreams (built at start).
    let upstreamTLS: [UpstreamTLS: NIOSSLContext]
    /// The routes as the request path uses them, in the order of `routes.routes` (a match's index).
    let routePlans: [RoutePlan]

    init(
        config: GatewayConfig, group: EventLoopGroup, accessLog: AccessLog, logger: Logger,
        authenticator: BearerAuthenticator?, browserLogin: BrowserLogin? = nil, scheme: String = "http",
        upstreamTLS: [UpstreamTLS: NIOSSLContext] = [:]
    ) {
        self.upstreamTLS = upstreamTLS
        self.browserLogin = browserLogin
        self.config = config
        self.routes = RouteTable(routes: config.routes)
        // Every identity header any route injects is managed everywhere: stripped from every client request.
        let allIdentityHeaders = config.identityHeaders + config.routes.flatMap(\.identityHeaders)
        self.headerRules = HeaderRules(
            identityHeaders: allIdentityHeaders, trustedProxies: config.server.trustedProxies)
        let connector = UpstreamConnector(
            tls: upstreamTLS, connectTimeout: .nanoseconds(config.server.upstreamConnectTimeout.nanoseconds),
            maxHeadBytes: 64 * 1024)
        let limits = GatehouseUpstream.UpstreamPool.Limits(
            maxConnections: config.server.upstreamMaxConnectionsPerLoop, maxIdle: config.server.upstreamMaxIdlePerLoop,
            idleTimeout: .seconds(30), queueTimeout: .nanoseconds(config.server.upstreamQueueTimeout.nanoseconds))
        self.upstreamPools = PerLoop(group: group) { loop in
            GatehouseUpstream.UpstreamPool(eventLoop: loop, limits: limits) { target, loop in
                connector.connect(target, on: loop)
            }
        }
        self.tokenCaches = PerLoop(group: group) { _ in VerifiedTokenCache() }
        self.sessionCaches = PerLoop(group: group) { _ in OpenedSessionCache() }
        self.accessLog = accessLog
        self.logger = logger
        self.scheme = scheme
        self.authenticator = authenticator
        self.routePlans = config.routes.map { RoutePlan($0, globalIdentityHeaders: config.identityHeaders) }
    }

    var connectTimeout: TimeAmount { .nanoseconds(config.server.upstreamConnectTimeout.nanoseconds) }
    var responseTimeout: TimeAmount { .nanoseconds(config.server.upstreamResponseTimeout.nanoseconds) }
}

extension TimeAmount {
    init(_ d: GatehouseCore.Duration) { self = .nanoseconds(d.nanoseconds) }
}

extension ProxyRuntime {
    /// TLS client contexts for every https upstream of the config: the system trust store or `ca_file`, an
    /// optional client certificate (mTLS), TLS 1.2+, or no verification at all with `insecure_skip_verify`
    /// (logged at start as a warning).
    static func makeUpstreamTLSContexts(_ config: GatewayConfig, logger: Logger) throws -> [UpstreamTLS: NIOSSLContext]
    {
        var out: [UpstreamTLS: NIOSSLContext] = [:]
        for route in config.routes {
            guard route.upstream.scheme == .https, let settings = route.upstream.tls, out[settings] == nil else {
                continue
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile = settings.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let cert = settings.clientCertificateFile, let key = settings.clientKeyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            if settings.insecureSkipVerify {
                tls.certificateVerification = .none
                logger.warning(
                    "TLS verification is OFF for an upstream (upstream_tls.insecure_skip_verify): anyone on the path can read and change this traffic; development only",
                    metadata: ["route": "\(route.id)", "upstream": "\(route.upstream)"])
            }
            out[settings] = try NIOSSLContext(configuration: tls)
        }
        return out
    }
}
