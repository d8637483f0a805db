import NIOCore

/// One end of a byte tunnel between the client and the upstream connection after a WebSocket upgrade. Both
/// ends live on the same event loop. Bytes read on one side are written to the other; a side reads only while
/// the other side is writable (backpressure both ways); when either side closes, so does the other.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Called on every read (for the idle timeout) with the number of bytes.
    var onActivity: ((Int) -> Void)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        onActivity?(buffer.readableBytes)
        // Flushed at once: bytes the HTTP decoder hands over when it is removed arrive without a read-complete,
        // and WebSocket messages are latency-sensitive anyway.
        partner?.send(buffer)
        partner?.flushNow()
    }

    func send(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func flushNow() {
        context?.flush()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, !partner.isWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.closeChannel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func closeChannel() {
        context?.close(promise: nil)
    }
}
