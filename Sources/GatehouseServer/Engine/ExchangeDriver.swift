import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// What the HTTP/1.1 connection and the HTTP/2 stream share once the runner permitted a request: leasing an
/// upstream connection (or a fresh one for an upgrade), the one retry on a fresh connection, the response and
/// stall timers, and mapping an upstream failure to an answer. The edges differ only in how bytes reach the
/// client; the exchange's life is written once, here.
protocol ExchangeDriver: ExchangeEdge, UpstreamExchange, UpstreamLessee {
    var runtime: ProxyRuntime { get }
    var exchange: EdgeExchange? { get }
    var pool: GatehouseUpstream.UpstreamPool? { get }
    /// How a chunked upstream body is handed over: validated framing to relay, or the data alone.
    var chunkMode: ChunkedDecoder.Mode { get }
    /// Nothing more can be said in-band: log and close.
    func abort(_ e: EdgeExchange)
    /// The upstream is attached, or writable again: request body bytes waiting may go.
    func bodyMayFlow()
    var responseWatch: ResponseWatch { get }
}

/// The edge's one timer for `upstream_response` (see `startResponseTimer`).
final class ResponseWatch {
    var timer: Scheduled<Void>?

    func cancel() {
        timer?.cancel()
        timer = nil
    }
}

extension ExchangeDriver {
    func startForwarding(_ ctx: RequestContext, to upstream: UpstreamTarget, head: ByteBuffer) {
        guard let e = exchange, e.ctx === ctx else { return }
        setBody(e)
        e.target = upstream
        e.upstreamHead = head
        if !e.requestComplete { armActivity(e) }  // a request with a body may stall: watch it
        lease(e)
    }

    /// The request body's framing, once sanitize has run.
    func setBody(_ e: EdgeExchange) {
        switch e.ctx.framing {
        case .none, .untilClose: e.body = .complete
        case .length(let n): e.body = n > 0 ? .length(remaining: n) : .complete
        case .chunked: e.body = .chunked(ChunkedDecoder())
        }
    }

    func lease(_ e: EdgeExchange) {
        guard let target = e.target else { return }
        e.leasing = true
        guard let pool else { return failLease(.upstreamConnectFailed("no upstream pool on this loop")) }
        if e.ctx.upgrade {
            // A fresh connection outside the pool: it becomes a tunnel or is closed after the refusal.
            pool.connectUnpooled(target) { [self] result in
                switch result {
                case .success(let connection):
                    guard self.exchange === e, e.leasing else { return connection.abandon() }
                    self.attach(connection, reused: false)
                case .failure(let error):
                    guard self.exchange === e else { return }
                    self.failLease(error)
                }
            }
            return
        }
        let ticket = pool.lease(target, for: self)
        if e.leasing { e.ticket = ticket }
    }

    /// The leased connection carries the exchange: the head goes out, then the body as it is read.
    func attach(_ connection: UpstreamConnection, reused: Bool) {
        guard let e = exchange, e.leasing, let head = e.upstreamHead else { return connection.abandon() }
        e.leasing = false
        e.ticket = nil
        e.upstream = connection
        e.reused = reused
        connection.begin(self, head: head, isHEAD: e.ctx.isHEAD, upgrade: e.ctx.upgrade, chunkMode: chunkMode)
        if e.requestComplete {
            requestSent(e, lastChunk: false)
        } else {
            bodyMayFlow()
            connection.flush()
        }
    }

    func failLease(_ error: GatehouseError) {
        guard let e = exchange, e.leasing else { return }
        e.leasing = false
        e.ticket = nil
        answer(e.ctx, .error(error, forceClose: !e.requestComplete))
    }

    /// The request is sent in full: the wait for the response head starts.
    func requestSent(_ e: EdgeExchange, lastChunk: Bool) {
        startResponseTimer(e)
        e.upstream?.endRequest(lastChunk: lastChunk)
    }

    /// Gives up the exchange's upstream side (its connection is never reused after this).
    func abandonUpstream(_ e: EdgeExchange) {
        if let ticket = e.ticket, e.leasing { pool?.cancel(ticket) }
        e.ticket = nil
        e.leasing = false
        e.responseDeadline = nil
        if let upstream = e.upstream {
            e.upstream = nil
            if !e.tunneled { upstream.abandon() }
        }
    }

    /// The upstream connection broke before the response was complete.
    func relayFailure(_ failure: UpstreamFailure) {
        guard let e = exchange else { return }
        e.upstream = nil
        if e.responseStarted {
            // Truncated response: the client cannot be told in-band; the close shows the truncation.
            e.ctx.log.error = "upstream_closed_mid_response"
            return abort(e)
        }
        // A pooled connection the upstream closed as it was reused: once more on a fresh one, when nothing of a
        // body could have been consumed.
        if failure == .closed, e.reused, !e.retried, !e.ctx.hasBody, let target = e.target {
            e.retried = true
            e.reused = false
            e.responseDeadline = nil
            pool?.closeIdle(target)
            return lease(e)
        }
        let error: GatehouseError
        switch failure {
        case .closed:
            error = .upstreamClosed
        case .tls:
            e.ctx.log.detail = "upstream TLS handshake failed"
            error = .upstreamClosed
        case .protocolError(let why):
            error = .upstreamProtocolError(why)
        }
        answer(e.ctx, .error(error, forceClose: !e.requestComplete))
    }

    // MARK: timers

    /// `upstream_response` bounds the wait for the response head, counted from when the whole request was sent
    /// (so a long upload is never cut short by it). One watch per edge checks the deadline of whatever request
    /// is in flight when it fires, and re-arms for a later one: a keep-alive connection schedules a timer once
    /// per `upstream_response`, not once per request.
    func startResponseTimer(_ e: EdgeExchange) {
        guard !e.responseStarted else { return }
        let deadline = NIODeadline.now() + runtime.responseTimeout
        e.responseDeadline = deadline
        if responseWatch.timer == nil { armResponseWatch(at: deadline) }
    }

    private func armResponseWatch(at deadline: NIODeadline) {
        responseWatch.timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.responseWatch.timer = nil
            guard let e = self.exchange, let due = e.responseDeadline, !e.responseStarted else { return }
            if due > .now() { return self.armResponseWatch(at: due) }
            self.abandonUpstream(e)
            self.answer(e.ctx, .error(.upstreamResponseTimeout, forceClose: !e.requestComplete))
        }
    }

    /// While the request body streams in, `idle` bounds the gap between two client reads (a stalled upload gets
    /// 408); while the response body streams out, `upstream_response` bounds the gap between upstream reads
    /// (a stalled upstream, or a client that stopped reading, closes both connections).
    func armActivity(_ e: EdgeExchange) {
        e.activityTimer?.cancel()
        let bodyLimit = TimeAmount(runtime.config.server.idleTimeout)
        let streamLimit = runtime.responseTimeout
        var deadline: NIODeadline?
        if !e.requestComplete { deadline = e.lastClientActivity + bodyLimit }
        if e.responseStarted, !e.responseComplete {
            let d = e.lastUpstreamActivity + streamLimit
            deadline = deadline.map { min($0, d) } ?? d
        }
        guard let deadline else { return }
        e.activityTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            e.activityTimer = nil
            guard self.exchange === e else { return }
            let now = NIODeadline.now()
            let uploadStalled = !e.requestComplete && e.lastClientActivity + bodyLimit <= now
            let streamStalled =
                e.responseStarted && !e.responseComplete && e.lastUpstreamActivity + streamLimit <= now
            guard uploadStalled || streamStalled else {
                return self.armActivity(e)  // there was progress: wait for the new deadline
            }
            if e.responseStarted {
                e.ctx.log.error = uploadStalled ? "request_body_timeout" : "stream_stalled"
                self.abort(e)
            } else {
                self.abandonUpstream(e)
                self.answer(e.ctx, .error(.requestTimeout, forceClose: true))
            }
        }
    }
}
