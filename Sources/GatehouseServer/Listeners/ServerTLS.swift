import Foundation
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS
import Synchronization

/// The TLS context of the HTTPS listeners, reloadable without dropping connections: each new connection takes
/// the current context; connections already open keep theirs. A reload that fails (unreadable file, a key that
/// does not match the certificate) keeps the old context and logs why.
final class ServerTLS: Sendable {
    let config: TLSListenerConfig
    let logger: Logger
    private let current: NIOLockedValueBox<(context: NIOSSLContext, stamp: [String])>

    init(config: TLSListenerConfig, logger: Logger) throws(GatehouseStartupError) {
        self.config = config
        self.logger = logger
        do {
            current = NIOLockedValueBox((try Self.makeContext(config), Self.stamp(config)))
        } catch {
            throw GatehouseStartupError(message: "server.tls: \(error)")
        }
    }

    var context: NIOSSLContext { current.withLockedValue { $0.context } }

    static func makeContext(_ config: TLSListenerConfig) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(config.certificateFile)
        } catch {
            throw ReloadError(
                description:
                    "certificate_file \(config.certificateFile): not a readable PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else {
            throw ReloadError(description: "certificate_file \(config.certificateFile): holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: config.privateKeyFile, format: .pem)
        } catch {
            throw ReloadError(
                description: "private_key_file \(config.privateKeyFile): not a readable PEM private key (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = config.minVersion == .v1_3 ? .tlsv13 : .tlsv12
        tls.applicationProtocols = config.alpn
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ReloadError(
                description:
                    "\(config.certificateFile) with \(config.privateKeyFile): the key does not fit the certificate, or the pair is unusable (\(error))"
            )
        }
    }

    struct ReloadError: Error, CustomStringConvertible { let description: String }

    /// Size and modification time of both files: a change means "reload".
    static func stamp(_ config: TLSListenerConfig) -> [String] {
        [config.certificateFile, config.privateKeyFile].map { path in
            // Through symlinks: Kubernetes swaps a `..data` link when it rotates a Secret.
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            let attributes = try? FileManager.default.attributesOfItem(atPath: resolved)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(resolved):\(attributes?[.size] as? Int ?? -1):\(modified)"
        }
    }

    /// Re-reads the certificate and key. Returns true when the new pair is in use.
    @discardableResult
    func reload(reason: String) -> Bool {
        let stamp = Self.stamp(config)
        do {
            let context = try Self.makeContext(config)
            current.withLockedValue { $0 = (context, stamp) }
            logger.info("TLS certificate reloaded", metadata: ["reason": "\(reason)"])
            return true
        } catch {
            current.withLockedValue { $0.stamp = stamp }  // do not retry the same broken files every tick
            logger.error(
                "TLS certificate reload failed; keeping the previous certificate",
                metadata: ["reason": "\(reason)", "error": "\(error)"])
            return false
        }
    }

    /// Reloads when the files changed since the last (attempted) load.
    func reloadIfChanged() {
        let stamp = Self.stamp(config)
        if current.withLockedValue({ $0.stamp }) != stamp { reload(reason: "files changed") }
    }
}

/// Closes a TLS connection whose handshake does not finish in time (a slowloris at the TLS layer; the HTTP
/// timeouts start only once a protocol was negotiated).
final class TLSHandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            timer?.cancel()
            timer = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }
}

/// Counts a connection's open HTTP/2 streams (NIOHTTP2 reports them to this delegate on the event loop).
final class HTTP2StreamCounter: NIOHTTP2StreamDelegate {
    let open = Atomic<Int>(0)
    func streamCreated(_ id: HTTP2StreamID, channel: Channel) { open.add(1, ordering: .relaxed) }
    func streamClosed(_ id: HTTP2StreamID, channel: Channel) { open.subtract(1, ordering: .relaxed) }
}

/// Closes an HTTP/2 connection that carried no frames for the idle timeout while no stream is open (a request
/// waiting for a slow upstream is bounded by the upstream timeouts instead).
final class HTTP2IdleCloseHandler: ChannelInboundHandler {
    typealias InboundIn = Any
    let streams: HTTP2StreamCounter

    init(streams: HTTP2StreamCounter) { self.streams = streams }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if streams.open.load(ordering: .relaxed) <= 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

extension GatehouseServer {
    /// HTTP/2 on a connection (after ALPN h2, or h2c prior knowledge): every stream gets an `HTTP2StreamEdge`, which
    /// maps its frames to the engine's request head and runs the same phases as HTTP/1.1, so routing,
    /// authentication, policy, header rules, limits and logging are the same code. NIOHTTP2's flood defences are on: rapid
    /// reset and glitch counting, CONTINUATION limits, control-frame rate limits, header-list size.
    static func configureHTTP2(_ channel: Channel, runtime: ProxyRuntime, scheme: String) throws {
        let server = runtime.config.server
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: server.http2.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: server.maxHeaderBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
        ]
        connection.maximumConnectionGlitches = 200
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = 1 << 20
        let sync = channel.pipeline.syncOperations
        let streams = HTTP2StreamCounter()
        try sync.addHandler(IdleStateHandler(allTimeout: TimeAmount(server.idleTimeout)))
        try sync.addHandler(HTTP2IdleCloseHandler(streams: streams))
        _ = try sync.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: stream, streamDelegate: streams
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                // A stream's head arrives with the stream itself and the connection has its own idle timer: no
                // per-stream timeout handler, and no HTTP/1 codec (the edge maps frames to the engine's heads).
                try streamChannel.pipeline.syncOperations.addHandler(
                    HTTP2StreamEdge(runtime: runtime, scheme: scheme, eventLoop: streamChannel.eventLoop))
            }
        }
    }

    /// An HTTPS connection: TLS, a handshake deadline, then HTTP/2 or HTTP/1.1 by ALPN.
    static func configureTLSPipeline(_ channel: Channel, runtime: ProxyRuntime, tls: ServerTLS) -> EventLoopFuture<Void>
    {
        do {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLServerHandler(context: tls.context))
            try sync.addHandler(
                TLSHandshakeTimeoutHandler(timeout: TimeAmount(runtime.config.server.requestHeaderTimeout)))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.configureHTTP2SecureUpgrade(
            h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture { try configureHTTP2(channel, runtime: runtime, scheme: "https") }
            },
            http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureClientPipeline(channel, runtime: runtime, scheme: "https")
                }
            })
    }
}

/// On a plain listener with `http2.cleartext`: looks at the first bytes of a connection and sets up HTTP/2
/// (h2c with prior knowledge: the client starts with the HTTP/2 preface) or HTTP/1.1, then steps aside and
/// hands over the bytes it held.
final class CleartextProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    let runtime: ProxyRuntime
    private var held: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(runtime: ProxyRuntime) { self.runtime = runtime }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: TimeAmount(runtime.config.server.requestHeaderTimeout)) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var h = held {
            h.writeBuffer(&buffer)
            held = h
        } else {
            held = buffer
        }
        guard let bytes = held?.readableBytesView else { return }
        let n = min(bytes.count, Self.preface.count)
        let isPreface = bytes.prefix(n).elementsEqual(Self.preface.prefix(n))
        if isPreface && n < Self.preface.count { return }  // not enough bytes to tell yet
        timer?.cancel()
        do {
            if isPreface {
                try GatehouseServer.configureHTTP2(context.channel, runtime: runtime, scheme: "http")
            } else {
                try GatehouseServer.configureClientPipeline(context.channel, runtime: runtime)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if let h = held { context.fireChannelRead(wrapInboundOut(h)) }
        held = nil
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
