import GatehouseCore
import GatehouseUpstream
import NIOCore
import NIOPosix
import NIOSSL

/// Opens upstream connections for the pools: TCP (no Nagle), TLS toward an https upstream (SNI and certificate
/// check against `server_name`, else the URL's host; an IP literal is checked against the certificate's IP
/// addresses and sent without SNI), then the `UpstreamConnection` handler.
struct UpstreamConnector: Sendable {
    let tls: [UpstreamTLS: NIOSSLContext]
    let connectTimeout: TimeAmount
    let maxHeadBytes: Int

    func connect(_ target: UpstreamTarget, on loop: EventLoop) -> EventLoopFuture<Channel> {
        var tlsContext: NIOSSLContext?
        var serverName: String?
        if target.scheme == .https {
            guard let settings = target.tls, let context = tls[settings] else {
                return loop.makeFailedFuture(UpstreamConnectorError.noTLSContext)
            }
            tlsContext = context
            serverName = settings.serverName ?? (IPAddress(target.host) == nil ? target.host : nil)
        }
        let maxHeadBytes = self.maxHeadBytes
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [tlsContext, serverName] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(maxHeadBytes: maxHeadBytes))
                }
            }
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: target.host, port: target.port)
    }
}

enum UpstreamConnectorError: Error, CustomStringConvertible {
    case noTLSContext
    var description: String { "no TLS context for this upstream" }
}
