import NIOCore

/// Closes a client connection the way nginx's `lingering_close` does, so that an error answer reaches a client
/// that is still sending: a socket closed with unread bytes in its receive buffer sends a TCP reset, and the
/// reset makes the client's kernel throw away the answer it had not read yet (the client sees ECONNRESET
/// instead of 431 or 413).
///
/// Sits in front of the HTTP decoder. Once told to linger, it discards every byte that arrives (nothing reaches
/// the decoder again); after the answer has been flushed it shuts the write side down (the client reads the
/// answer and then EOF), keeps reading and discarding, and closes when the client closes, after
/// `maxSilence` without a byte, after `maxTime` in all, or after `maxBytes` discarded, whichever comes first.
final class LingeringCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxTime: TimeAmount = .seconds(5)
    static let maxSilence: TimeAmount = .seconds(2)
    static let maxBytes = 1 << 20

    private enum State {
        case passing
        /// Discarding input; `shutDown` once the write side is closed.
        case lingering(discarded: Int, lastByte: NIODeadline, shutDown: Bool)
        case closed
    }

    private var state: State = .passing
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var started: NIODeadline = .now()

    var isLingering: Bool {
        if case .passing = state { return false }
        return true
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// From now on every inbound byte is discarded. Call when the connection will close after the answer being
    /// written (before it is flushed: bytes arriving meanwhile must not reach the decoder).
    func startDiscarding() {
        guard case .passing = state else { return }
        started = .now()
        state = .lingering(discarded: 0, lastByte: started, shutDown: false)
        arm()
    }

    /// The answer is flushed: close the write side and keep draining. Falls back to a plain close where the
    /// channel cannot half-close.
    func answerFlushed() {
        guard let context else { return }
        if case .passing = state { startDiscarding() }
        guard case .lingering(let discarded, let lastByte, false) = state else { return }
        state = .lingering(discarded: discarded, lastByte: lastByte, shutDown: true)
        context.close(mode: .output).assumeIsolated().whenFailure { [self] _ in self.closeNow() }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .passing:
            context.fireChannelRead(data)
        case .lingering(let discarded, _, let shutDown):
            let total = discarded + unwrapInboundIn(data).readableBytes
            state = .lingering(discarded: total, lastByte: .now(), shutDown: shutDown)
            if total > Self.maxBytes { closeNow() }
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .passing: context.fireChannelReadComplete()
        // Keep the bytes coming, whatever the handlers behind this one think about reading.
        case .lingering(_, _, true): context.read()
        case .lingering, .closed: break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard case .passing = state else {
            closeNow()  // e.g. ECONNRESET while draining: nothing more to say
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if case .lingering = state { state = .closed }
        context.fireChannelInactive()
    }

    private func arm() {
        guard let context else { return }
        timer?.cancel()
        guard case .lingering(_, let lastByte, _) = state else { return }
        let deadline = min(started + Self.maxTime, lastByte + Self.maxSilence)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timer = nil
            guard case .lingering(_, let lastByte, _) = self.state else { return }
            let now = NIODeadline.now()
            if now >= self.started + Self.maxTime || now >= lastByte + Self.maxSilence {
                self.closeNow()
            } else {
                self.arm()
            }
        }
    }

    private func closeNow() {
        timer?.cancel()
        timer = nil
        guard let context else { return }
        if case .closed = state { return }
        state = .closed
        context.close(promise: nil)
    }
}
