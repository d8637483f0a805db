import NIOCore

/// Guards a client connection while it has no request in flight. Sits in front of the HTTP decoder so it sees
/// raw bytes: with no bytes of a new request yet, the connection may stay idle for `idle`; once the first byte of
/// a request head arrives (or the connection is new), the whole head must arrive within `requestHeader`
/// (slowloris). The proxy handler tells it when a head was received and when the connection became idle.
final class ConnectionTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        case awaitingHead(started: Bool)
        case busy
    }

    let requestHeader: TimeAmount
    let idle: TimeAmount
    private var state: State = .awaitingHead(started: true)
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(requestHeader: TimeAmount, idle: TimeAmount) {
        self.requestHeader = requestHeader
        self.idle = idle
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(requestHeader) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(requestHeader)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .awaitingHead(started: false) = state {
            state = .awaitingHead(started: true)
            arm(requestHeader)
        }
        context.fireChannelRead(data)
    }

    /// A complete request head was parsed: no connection timer while the exchange runs (the upstream timers
    /// bound it instead).
    func headReceived() {
        state = .busy
        timer?.cancel()
        timer = nil
    }

    /// The response finished and the connection waits for the next request.
    func becameIdle() {
        state = .awaitingHead(started: false)
        arm(idle)
    }

    private func arm(_ amount: TimeAmount) {
        timer?.cancel()
        guard let context else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: amount) {
            channel.close(promise: nil)
        }
    }
}
