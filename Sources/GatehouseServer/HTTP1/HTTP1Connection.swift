import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// The HTTP/1.1 edge: one client connection, bytes in and bytes out, no HTTP codec in the pipeline. It parses
/// request heads (`RequestHeadParser`), hands each to the `RequestRunner` (the phases), and carries out what the
/// runner decides: a local answer, or the exchange with a pooled upstream connection, streamed both ways with
/// backpressure on this event loop.
///
/// One request is in flight at a time. Bytes that arrive after it (a pipelined request) stay in `inbound`, and
/// reads stop until it has been answered; a client that does not pipeline is never throttled (reading goes on
/// while the response is awaited, so a keep-alive request costs no epoll_ctl calls). A request body is taken
/// from `inbound` only while the upstream connection can take it: nothing buffers a whole body.
///
/// The pipeline in front: `LingeringCloseHandler` (closes after an answer without resetting the connection),
/// `ConnectionTimeoutHandler` (slowloris and keep-alive idle).
final class HTTP1Connection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let runtime: ProxyRuntime
    let timeouts: ConnectionTimeoutHandler
    let scheme: String
    let eventLoop: EventLoop
    var context: ChannelHandlerContext?
    var linger: LingeringCloseHandler?
    var runner: RequestRunner?
    var peer = Peer(address: nil, text: "-", trusted: false, scheme: "http")
    /// Bytes read and not yet consumed: a partial head, a body waiting for its upstream, a pipelined request.
    var inbound = ByteBuffer()
    var parser: RequestHeadParser
    var exchange: EdgeExchange?
    var pendingRead = false
    /// Something was written to the client since the last flush (see `send`).
    var unflushed = false
    /// A response head not yet handed to the channel (see `hold`).
    var held: ByteBuffer?
    /// The connection carries no further request (an answer that closes it, a shutdown).
    var closing = false
    private var processing = false
    var ids = RequestIDGenerator()
    var pool: GatehouseUpstream.UpstreamPool?
    let responseWatch = ResponseWatch()

    init(runtime: ProxyRuntime, timeouts: ConnectionTimeoutHandler, scheme: String, eventLoop: EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.timeouts = timeouts
        self.scheme = scheme
        self.parser = RequestHeadParser(
            maxBytes: runtime.config.server.maxHeaderBytes, maxFields: runtime.config.server.maxHeaderCount)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        linger = try? context.pipeline.syncOperations.handler(type: LingeringCloseHandler.self)
        pool = runtime.upstreamPools.value(for: context.eventLoop)
        var peer = Peer(address: nil, text: "-", trusted: false, scheme: scheme)
        if let ip = context.channel.remoteAddress?.ipAddress {
            peer.text = ip
            peer.address = IPAddress(ip)
            peer.trusted = runtime.headerRules.isTrusted(peer.address)
        }
        self.peer = peer
        runner = RequestRunner(runtime: runtime, peer: peer, edge: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if closing {
            return  // an answer that ends the connection was sent; the lingering close discards the rest
        }
        if inbound.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound.writeBuffer(&bytes)
        }
        if let e = exchange, !e.requestComplete { e.lastClientActivity = .now() }
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstream?.flush()
        flushWrites(context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if holdsReads {
            pendingRead = true
        } else {
            context.read()
        }
    }

    /// Reads stop while bytes already wait in `inbound` (a pipelined request, a body its upstream cannot take
    /// yet) or a body's upstream is not ready to take more.
    private var holdsReads: Bool {
        guard let e = exchange else { return false }
        if e.tunneled { return false }
        if inbound.readableBytes > 0 { return true }
        if !e.requestComplete, !e.answered {
            guard let upstream = e.upstream, upstream.isWritable else { return true }
        }
        return false
    }

    func resumeReads() {
        guard pendingRead, !holdsReads, let context else { return }
        pendingRead = false
        context.read()
    }

    /// Consumes what `inbound` holds: heads become requests, body bytes go to their upstream. Not re-entered: a
    /// request answered at once is followed by the next from this loop.
    func process() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while context != nil, !closing {
            if let e = exchange {
                pumpBody(e)
                if exchange === e { break }  // still in flight: what follows waits
                continue
            }
            guard inbound.readableBytes > 0 else { break }
            switch parser.parse(&inbound) {
            case .needMore:
                return
            case .failure(let failure):
                malformed(failure)
                return
            case .head(let head):
                parser = RequestHeadParser(maxBytes: parser.maxBytes, maxFields: parser.maxFields)
                timeouts.headReceived()
                begin(head)
            }
        }
        resumeReads()
    }

    private func begin(_ head: RequestHead) {
        let offered = head.firstValue("x-request-id")
        let requestID = offered.flatMap { HeaderRules.acceptableRequestID($0) ? $0 : nil } ?? ids.next()
        let ctx = RequestContext(start: .now(), requestID: requestID, head: head, wantsClose: false)
        let e = EdgeExchange(ctx: ctx)
        exchange = e
        if closing {
            return answer(ctx, .error(.shuttingDown, forceClose: true))
        }
        runner?.start(ctx)
    }

    /// A head that cannot be parsed: answered without a route, and the connection closes.
    private func malformed(_ failure: RequestHeadParser.Failure) {
        let error: GatehouseError
        switch failure {
        case .tooLarge: error = .headerTooLarge
        case .tooManyFields: error = .tooManyHeaderFields(limit: parser.maxFields)
        case .malformed(let why): error = .badRequest("malformed HTTP request (\(why))")
        case .unsupportedVersion: error = .badRequest("malformed HTTP request (unsupported HTTP version)")
        }
        let ctx = RequestContext(start: .now(), requestID: ids.next(), head: .placeholder, wantsClose: true)
        exchange = EdgeExchange(ctx: ctx)
        answer(ctx, .error(error, forceClose: true))
    }

    /// Moves request body bytes from `inbound` to the upstream while it can take them.
    private func pumpBody(_ e: EdgeExchange) {
        guard !e.answered, let upstream = e.upstream, !e.tunneled else { return }
        var wrote = false
        defer { if wrote { upstream.flush() } }
        while exchange === e, upstream.isWritable, inbound.readableBytes > 0 {
            switch e.body {
            case .unknown, .complete:
                return
            case .length(let remaining):
                let n = Int(min(remaining, Int64(inbound.readableBytes)))
                guard let slice = inbound.readSlice(length: n) else { return }
                upstream.write(slice)
                wrote = true
                let left = remaining - Int64(n)
                if left == 0 {
                    e.body = .complete
                    wrote = false
                    requestSent(e, lastChunk: false)
                } else {
                    e.body = .length(remaining: left)
                }
            case .chunked(var decoder):
                let out = decoder.next(&inbound, mode: .passthrough)
                e.body = .chunked(decoder)
                switch out {
                case .bytes(let b):
                    if decoder.payloadBytes > e.ctx.bodyLimit {
                        return failMidRequest(e, .bodyTooLarge(limit: e.ctx.bodyLimit))
                    }
                    upstream.write(b)
                    wrote = true
                case .needMore:
                    return
                case .end:
                    e.body = .complete
                    wrote = false
                    requestSent(e, lastChunk: true)
                case .failure(let why):
                    return failMidRequest(e, .badRequest("malformed chunked request body (\(why))"))
                }
            }
        }
    }

    /// The request cannot go on (its body broke a limit or its framing): answered if nothing was sent yet,
    /// else the connection closes.
    func failMidRequest(_ e: EdgeExchange, _ error: GatehouseError) {
        abandonUpstream(e)
        if e.responseStarted {
            e.ctx.log.error = error.reason
            abort(e)
        } else {
            answer(e.ctx, .error(error, forceClose: true))
        }
    }

    // MARK: connection events

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        responseWatch.cancel()
        if let e = exchange {
            exchange = nil
            e.cancelTimers()
            abandonUpstream(e)
            if e.ctx.log.status == 0 { e.ctx.log.status = 499 }
            if !e.tunneled, e.ctx.log.error == nil { e.ctx.log.error = "client_closed" }  // a tunnel ends by closing
            log(e.ctx)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: an idle connection closes now; a busy one after its response, which says
            // `Connection: close`. A pipelined request not yet started is not served (the client may retry it).
            if exchange == nil {
                closing = true
                context.close(promise: nil)
            } else {
                quiescing = true
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Shutting down: the response in flight is the last on this connection.
    var quiescing = false

    // MARK: finishing

    /// Ends the exchange: the access log (exactly once), then either the next request or the close.
    func finish(_ e: EdgeExchange) {
        guard exchange === e, let context else { return }
        e.cancelTimers()
        exchange = nil
        log(e.ctx)
        if e.closeAfter || e.ctx.wantsClose || quiescing {
            closeAfterAnswer(context)
        } else {
            timeouts.becameIdle()
            flushWrites(context)
            process()
        }
    }

    /// Closes once the answer is out, without turning unread input into a reset that destroys the answer at the
    /// client: the lingering close drains it first.
    func closeAfterAnswer(_ context: ChannelHandlerContext) {
        emitHeld(context)
        closing = true
        inbound = ByteBuffer()
        guard let linger else {
            context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil)
            }
            return
        }
        linger.startDiscarding()
        context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolated().whenComplete { _ in linger.answerFlushed() }
    }

    /// Nothing more can be said in-band (a stall or a failure mid-response): log and close at once.
    func abort(_ e: EdgeExchange) {
        guard exchange === e, let context else { return }
        e.cancelTimers()
        abandonUpstream(e)
        exchange = nil
        closing = true
        log(e.ctx)
        context.close(promise: nil)
    }

    /// Bytes held back from the channel at most (a response head and the start of its body).
    static let coalesceLimit = 4096

    /// Writes to the client; `flushWrites` sends them. Every write of this edge goes through here (or `hold`), so
    /// a flush with nothing written can be skipped: that trip through the pipeline and the channel's flush checks
    /// came twice per request (at the client's read-complete and the upstream's). Small writes after a held head
    /// join it.
    func send(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        unflushed = true
        if var h = held {
            held = nil
            if h.readableBytes + bytes.readableBytes <= Self.coalesceLimit {
                h.writeImmutableBuffer(bytes)
                held = h
                return
            }
            context.write(NIOAny(h), promise: nil)
        }
        context.write(NIOAny(bytes), promise: nil)
    }

    /// Keeps a response head until the next write or flush, so that a body arriving in the same read goes out
    /// with it: one buffer, one trip through the pipeline.
    func hold(_ context: ChannelHandlerContext, _ head: ByteBuffer) {
        emitHeld(context)
        unflushed = true
        held = head
    }

    /// Hands the held bytes to the channel (before any write that does not go through `send`).
    func emitHeld(_ context: ChannelHandlerContext) {
        guard let h = held else { return }
        held = nil
        context.write(NIOAny(h), promise: nil)
    }

    func flushWrites(_ context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        emitHeld(context)
        context.flush()
    }

    func log(_ ctx: RequestContext) {
        guard runtime.accessLog.isEnabled else { return }
        runtime.accessLog.record(ctx.accessLogEntry(client: peer.text))
    }
}

extension RequestHead {
    /// The head of a request that could not be parsed (its context carries only an id and the error).
    static let placeholder = RequestHead(
        bytes: ByteBuffer(), methodRange: 0..<0, targetRange: 0..<0, versionMajor: 1, versionMinor: 1, fields: [])
}
