import NIOCore

/// Guards a client connection while it has no request in flight. Sits in front of the HTTP decoder so it sees
/// raw bytes: with no bytes of a new request yet, the connection may stay idle for `idle`; once the first byte of
/// a request head arrives (or the connection is new), the whole head must arrive within `requestHeader`
/// (slowloris). The proxy handler tells it when a head was received and when the connection became idle.
final class ConnectionTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
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
    /// When the connection must be closed if it is still waiting; nil while an exchange runs. The timer is
    /// re-armed lazily (only when it would fire too late), so a keep-alive request costs no timer churn.
    private var deadline: NIODeadline?
    private var timerDeadline: NIODeadline?
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
        timer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(requestHeader)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        deadline = nil
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
        deadline = nil
    }

    /// The response finished and the connection waits for the next request.
    func becameIdle() {
        state = .awaitingHead(started: false)
        arm(idle)
    }

    private func arm(_ amount: TimeAmount) {
        let now = NIODeadline.now()
        let newDeadline = now + amount
        deadline = newDeadline
        // The timer ticks at most every `requestHeader`, so the next head's shorter deadline never needs a
        // reschedule: it only moves when it would fire too late.
        let tick = min(newDeadline, now + requestHeader)
        if let timerDeadline, timer != nil, timerDeadline <= tick { return }
        schedule(at: tick)
    }

    private func schedule(at when: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        timerDeadline = when
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            self.timer = nil
            self.timerDeadline = nil
            guard let deadline = self.deadline, let context = self.context else { return }
            let now = NIODeadline.now()
            if deadline > now {
                self.schedule(at: min(deadline, now + self.requestHeader))
            } else {
                context.close(promise: nil)
            }
        }
    }
}
