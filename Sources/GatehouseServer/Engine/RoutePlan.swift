import GatehouseCore

/// A route as the request path uses it: the config and what every request on it would otherwise derive again
/// (the merged identity headers, the upstream `Host` value, the log's upstream text). Built once per config;
/// a request holds a reference, so passing the route from phase to phase copies nothing.
final class RoutePlan: Sendable {
    let config: RouteConfig
    /// The global identity headers merged with the route's own.
    let identityHeaders: [IdentityHeader]
    /// `route.upstream.hostHeader`.
    let upstreamHost: String
    /// `host:port`, as the access log shows the upstream.
    let upstreamLog: String

    init(_ config: RouteConfig, globalIdentityHeaders: [IdentityHeader]) {
        self.config = config
        self.identityHeaders = HeaderRules.effectiveIdentityHeaders(
            global: globalIdentityHeaders, route: config.identityHeaders)
        self.upstreamHost = config.upstream.hostHeader
        self.upstreamLog = config.upstream.logDescription
    }

    var id: String { config.id }
}
