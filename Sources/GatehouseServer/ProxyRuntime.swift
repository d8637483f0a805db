import GatehouseCore
import Logging
import NIOCore

/// Everything a client connection needs, built once from a config snapshot and shared (immutably) by all
/// connections and event loops.
final class ProxyRuntime: Sendable {
    let config: GatewayConfig
    let routes: RouteTable
    let headerRules: HeaderRules
    let pools: PoolRegistry
    let accessLog: AccessLog
    let logger: Logger
    let scheme: String

    init(config: GatewayConfig, pools: PoolRegistry, accessLog: AccessLog, logger: Logger, scheme: String = "http") {
        self.config = config
        self.routes = RouteTable(routes: config.routes)
        self.headerRules = HeaderRules(
            identityHeaders: config.identityHeaders, trustedProxies: config.server.trustedProxies)
        self.pools = pools
        self.accessLog = accessLog
        self.logger = logger
        self.scheme = scheme
    }

    var connectTimeout: TimeAmount { .nanoseconds(config.server.upstreamConnectTimeout.nanoseconds) }
    var responseTimeout: TimeAmount { .nanoseconds(config.server.upstreamResponseTimeout.nanoseconds) }
}

extension TimeAmount {
    init(_ d: GatehouseCore.Duration) { self = .nanoseconds(d.nanoseconds) }
}
