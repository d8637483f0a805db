import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// What the runner asks of the HTTP/1.1 edge: answers, 100-continue, and forwarding to an upstream.
extension HTTP1Connection: ExchangeEdge {
    func isCurrent(_ ctx: RequestContext) -> Bool { exchange?.ctx === ctx && context != nil }

    /// Writes a local answer. A request whose body was not read closes the connection after it (lingering):
    /// its framing cannot be trusted to find the next request, and nothing of it reached an upstream.
    func answer(_ ctx: RequestContext, _ answer: LocalAnswer) {
        guard let e = exchange, e.ctx === ctx, let context else { return }
        if e.responseStarted {
            abort(e)
            return
        }
        abandonUpstream(e)
        e.answered = true
        e.responseStarted = true
        e.responseComplete = true
        if case .unknown = e.body { setBody(e) }
        if let error = answer.error {
            ctx.log.error = error.reason
            switch error {
            case .invalidToken(let why), .invalidAuthRequest(let why), .forbidden(let why, _): ctx.log.detail = why
            default: break
            }
        }
        ctx.log.status = answer.response.status
        let close =
            answer.forceClose || answer.response.closeConnection || ctx.wantsClose || quiescing || !e.requestComplete
        e.closeAfter = close
        var out = context.channel.allocator.buffer(capacity: 256 + answer.response.body.utf8.count)
        LocalResponseWriter.write(
            answer.response,
            options: .init(
                versionMinor: ctx.versionMinor, requestID: ctx.requestID, cookies: answer.cookies, close: close,
                omitBody: ctx.isHEAD),
            into: &out)
        context.write(NIOAny(out), promise: nil)
        finish(e)
    }

    func sendContinue(_ ctx: RequestContext) {
        guard isCurrent(ctx), ctx.versionMinor == 1, let context else { return }
        var out = context.channel.allocator.buffer(capacity: 25)
        out.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(NIOAny(out), promise: nil)
    }

    func forward(_ ctx: RequestContext, to upstream: UpstreamTarget, head: ByteBuffer) {
        guard let e = exchange, e.ctx === ctx else { return }
        setBody(e)
        e.target = upstream
        e.upstreamHead = head
        if !e.requestComplete { armActivity(e) }  // a request with a body may stall: watch it
        lease(e)
    }

    /// The request body's framing, once sanitize has run.
    private func setBody(_ e: HTTP1Exchange) {
        switch e.ctx.framing {
        case .none, .untilClose: e.body = .complete
        case .length(let n): e.body = n > 0 ? .length(remaining: n) : .complete
        case .chunked: e.body = .chunked(ChunkedDecoder())
        }
    }

    // MARK: upstream connection

    func lease(_ e: HTTP1Exchange) {
        guard let target = e.target else { return }
        e.leasing = true
        if e.ctx.upgrade {
            // A fresh connection outside the pool: it becomes a tunnel or is closed after the refusal.
            guard let pool else { return leaseFailed(.upstreamConnectFailed("no upstream pool on this loop")) }
            pool.connectUnpooled(target) { [self] result in
                switch result {
                case .success(let connection):
                    guard self.exchange === e, e.leasing else {
                        connection.abandon()
                        return
                    }
                    self.leased(connection, reused: false)
                case .failure(let error):
                    guard self.exchange === e else { return }
                    self.leaseFailed(error)
                }
            }
            return
        }
        guard let pool else { return leaseFailed(.upstreamConnectFailed("no upstream pool on this loop")) }
        let ticket = pool.lease(target, for: self)
        if e.leasing { e.ticket = ticket }
    }

    /// Gives up the exchange's upstream side (its connection is never reused after this).
    func abandonUpstream(_ e: HTTP1Exchange) {
        if let ticket = e.ticket, e.leasing { pool?.cancel(ticket) }
        e.ticket = nil
        e.leasing = false
        e.responseTimer?.cancel()
        e.responseTimer = nil
        if let upstream = e.upstream {
            e.upstream = nil
            if !e.tunneled { upstream.abandon() }
        }
    }

    // MARK: timers

    /// `upstream_response` bounds the wait for the response head, counted from when the whole request was sent
    /// (so a long upload is never cut short by it).
    func startResponseTimer(_ e: HTTP1Exchange) {
        guard e.responseTimer == nil, !e.responseStarted, let context else { return }
        e.responseTimer = context.eventLoop.assumeIsolated().scheduleTask(in: runtime.responseTimeout) { [self] in
            e.responseTimer = nil
            guard self.exchange === e, !e.responseStarted else { return }
            self.abandonUpstream(e)
            self.answer(e.ctx, .error(.upstreamResponseTimeout, forceClose: !e.requestComplete))
        }
    }

    /// While the request body streams in, `idle` bounds the gap between two client reads (a stalled upload gets
    /// 408); while the response body streams out, `upstream_response` bounds the gap between upstream reads
    /// (a stalled upstream, or a client that stopped reading, closes both connections).
    func armActivity(_ e: HTTP1Exchange) {
        guard let context else { return }
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
        e.activityTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            e.activityTimer = nil
            guard self.exchange === e else { return }
            let now = NIODeadline.now()
            let uploadStalled = !e.requestComplete && e.lastClientActivity + bodyLimit <= now
            let streamStalled = e.responseStarted && !e.responseComplete && e.lastUpstreamActivity + streamLimit <= now
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

extension HTTP1Connection: UpstreamLessee {
    func leased(_ connection: UpstreamConnection, reused: Bool) {
        guard let e = exchange, e.leasing, let head = e.upstreamHead else {
            connection.abandon()
            return
        }
        e.leasing = false
        e.ticket = nil
        e.upstream = connection
        e.reused = reused
        e.ctx.log.upstream = e.target?.logDescription ?? "-"
        connection.begin(
            self, head: head, isHEAD: e.ctx.isHEAD, upgrade: e.ctx.upgrade,
            chunkMode: e.ctx.versionMinor == 1 ? .passthrough : .payload)
        if e.requestComplete {
            requestSent(e, lastChunk: false)
        } else {
            process()  // body bytes already read go now
            connection.flush()
        }
        resumeReads()
    }

    func leaseFailed(_ error: GatehouseError) {
        guard let e = exchange, e.leasing else { return }
        e.leasing = false
        e.ticket = nil
        answer(e.ctx, .error(error, forceClose: !e.requestComplete))
    }
}
