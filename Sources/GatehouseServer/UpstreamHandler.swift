import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the client-side handler currently using it.
protocol UpstreamDelegate: AnyObject {
    var clientIsWritable: Bool { get }
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed()
    func upstreamFailed(_ error: Error)
}

/// The last handler of an upstream connection's pipeline. It relays response parts to its delegate (the
/// `ProxyHandler` of the client connection leasing it) and applies backpressure: it only lets the upstream
/// channel read while the client channel is writable.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Set while leased. Both handlers live on the same event loop; the delegate clears it on release.
    weak var delegate: UpstreamDelegate?
    /// Called when the connection closes while idle in the pool.
    var onIdleClose: (() -> Void)?
    private var pendingRead = false
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let delegate else {
            // Bytes from an idle upstream: it is not speaking HTTP as we expect. Never reuse it.
            context.close(promise: nil)
            return
        }
        delegate.upstreamRead(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, !delegate.clientIsWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    /// Writes a request part from the upstream handler's position (no trip through the pipeline's tail).
    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The client became writable again: resume reading the upstream.
    func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamClosed()
        } else {
            onIdleClose?()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamFailed(error)
        }
        context.close(promise: nil)
    }
}
