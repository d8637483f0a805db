import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small upstream for `gatehouse dev` and the tests. `GET`/`HEAD` without a body answer a JSON document of
/// what was received (method, target, headers in order). A request with a body gets it streamed back verbatim
/// (with backpressure). `GET /bytes/N` streams N bytes of `x`.
public enum EchoUpstream {
    public static func start(
        group: EventLoopGroup, host: String = "127.0.0.1", port: Int = 0, tls: NIOSSLContext? = nil,
        onConnection: (@Sendable () -> Void)? = nil
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                onConnection?()
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: port).get()
    }

    /// JSON string literal escaping for the echo document (the log handler's, one implementation).
    static func quote(_ s: String) -> String { StructuredLogHandler.jsonQuote(s) }
}

final class EchoHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var streaming = false
    private var pendingRead = false
    private var generateRemaining = 0
    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            keepAlive = h.isKeepAlive
            let hasBody =
                h.headers.contains(name: "content-length") && h.headers.first(name: "content-length") != "0"
                || h.headers.contains(name: "transfer-encoding")
            if hasBody {
                streaming = true
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/octet-stream")
                if let length = h.headers.first(name: "content-length") {
                    headers.add(name: "Content-Length", value: length)
                }
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .ok, headers: headers))),
                    promise: nil)
            }
        case .body(let buffer):
            if streaming { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        case .end:
            guard let h = head else { return }
            head = nil
            if streaming {
                streaming = false
                finish(context: context)
                return
            }
            let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
            if path.hasPrefix("/bytes/"), let n = Int(path.dropFirst(7)), n >= 0 {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/octet-stream")
                headers.add(name: "Content-Length", value: String(n))
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .ok, headers: headers))),
                    promise: nil)
                generateRemaining = n
                generate(context: context)
                if n == 0 { return }
                return
            }
            var json =
                "{\"method\":\(EchoUpstream.quote(h.method.rawValue)),\"uri\":\(EchoUpstream.quote(h.uri)),\"headers\":["
            json += h.headers.map { "[\(EchoUpstream.quote($0.name)),\(EchoUpstream.quote($0.value))]" }.joined(
                separator: ",")
            json += "]}\n"
            let body = context.channel.allocator.buffer(string: json)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .ok, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            finish(context: context)
        }
    }

    private var generating = false

    private func generate(context: ChannelHandlerContext) {
        // Re-entrancy guard: a flush can change writability and call back into this method.
        guard !generating else { return }
        generating = true
        defer { generating = false }
        while generateRemaining > 0 && context.channel.isWritable {
            let n = min(generateRemaining, 64 * 1024)
            generateRemaining -= n
            var buffer = context.channel.allocator.buffer(capacity: n)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: n)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if generateRemaining == 0 { finish(context: context) }
    }

    private func finish(context: ChannelHandlerContext) {
        let keepAlive = self.keepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable { context.read() } else { pendingRead = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if generateRemaining > 0 { generate(context: context) }
            if pendingRead {
                pendingRead = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }
}
