import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore
import NIOHPACK
import NIOHTTP2

/// The HTTP/2 edge: one stream, HTTP/2 frame payloads in and out. Its HEADERS become a `RequestHead`
/// (`HTTP2Mapping`) for the same `RequestRunner` and phases as HTTP/1.1; a permitted request goes to a pooled
/// HTTP/1.1 upstream connection, and the response comes back as HEADERS and DATA frames. Flow control is the
/// backpressure: the stream reads (and so opens its window) only while the upstream takes the body.
final class HTTP2StreamEdge: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let runtime: ProxyRuntime
    let scheme: String
    let eventLoop: EventLoop
    var context: ChannelHandlerContext?
    var runner: RequestRunner?
    var peerText = "-"
    var exchange: EdgeExchange?
    var pool: GatehouseUpstream.UpstreamPool?
    let responseWatch = ResponseWatch()
    /// DATA received before the upstream could take it (reads stop meanwhile, so this stays small).
    private var pendingBody = CircularBuffer<ByteBuffer>(initialCapacity: 2)
    private var receivedBodyBytes: Int64 = 0
    /// The client ended its side of the stream.
    private var clientEnded = false
    private var started = false
    private var pendingRead = false
    /// A response head held back until its first DATA or its end (a body-less response is one HEADERS frame).
    private var heldHeaders: HPACKHeaders?
    private var ids = RequestIDGenerator()

    init(runtime: ProxyRuntime, scheme: String, eventLoop: EventLoop) {
        self.runtime = runtime
        self.scheme = scheme
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = runtime.upstreamPools.value(for: context.eventLoop)
        var peer = Peer(address: nil, text: "-", trusted: false, scheme: scheme)
        if let ip = context.channel.remoteAddress?.ipAddress {
            peer.text = ip
            peer.address = IPAddress(ip)
            peer.trusted = runtime.headerRules.isTrusted(peer.address)
        }
        peerText = peer.text
        runner = RequestRunner(runtime: runtime, peer: peer, edge: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: client -> proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if !started {
                started = true
                begin(headers.headers, endStream: headers.endStream)
            } else if headers.endStream {
                received(nil, endStream: true)  // trailers end the body; they are not forwarded
            }
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else { return }
            received(bytes, endStream: data.endStream)
        default:
            break
        }
    }

    private func begin(_ headers: HPACKHeaders, endStream: Bool) {
        clientEnded = endStream
        let head: RequestHead
        do {
            head = try HTTP2Mapping.requestHead(
                headers, endStream: endStream, maxFields: runtime.config.server.maxHeaderCount)
        } catch {
            let ctx = RequestContext(start: .now(), requestID: ids.next(), head: .placeholder, wantsClose: true)
            exchange = EdgeExchange(ctx: ctx)
            return answer(ctx, .error(error))
        }
        let offered = head.firstValue("x-request-id")
        let id = offered.flatMap { HeaderRules.acceptableRequestID($0) ? $0 : nil } ?? ids.next()
        let ctx = RequestContext(start: .now(), requestID: id, head: head, wantsClose: false)
        exchange = EdgeExchange(ctx: ctx)
        runner?.start(ctx)
    }

    private func received(_ bytes: ByteBuffer?, endStream: Bool) {
        if endStream { clientEnded = true }
        guard let e = exchange, !e.answered else { return }  // after a local answer the rest is discarded
        e.lastClientActivity = .now()
        if let bytes, bytes.readableBytes > 0 {
            guard e.ctx.hasBody else {
                // DATA on a request that declared none cannot be framed toward the upstream.
                return failMidRequest(e, .badRequest("request body on a method sent without one"))
            }
            receivedBodyBytes += Int64(bytes.readableBytes)
            if receivedBodyBytes > e.ctx.bodyLimit {
                return failMidRequest(e, .bodyTooLarge(limit: e.ctx.bodyLimit))
            }
            pendingBody.append(bytes)
        }
        pump()
    }

    /// Moves received DATA to the upstream while it can take it.
    private func pump() {
        guard let e = exchange, !e.answered, let upstream = e.upstream, !e.requestComplete else { return }
        var wrote = false
        while upstream.isWritable, let bytes = pendingBody.popFirst() {
            switch e.body {
            case .length(let remaining):
                let n = Int64(bytes.readableBytes)
                guard n <= remaining else { return failMidRequest(e, .badRequest("body longer than Content-Length")) }
                upstream.write(bytes)
                e.body = n == remaining ? .complete : .length(remaining: remaining - n)
                if n == remaining { return requestSent(e, lastChunk: false) }
            case .chunked:
                var out = ByteBufferAllocator().buffer(capacity: bytes.readableBytes + 16)
                ChunkEncoding.writeChunk(bytes, into: &out)
                upstream.write(out)
            case .unknown, .complete:
                return
            }
            wrote = true
        }
        if pendingBody.isEmpty, clientEnded, case .chunked = e.body {
            e.body = .complete
            return requestSent(e, lastChunk: true)
        }
        if wrote { upstream.flush() }
        resumeReads()
    }

    func read(context: ChannelHandlerContext) {
        if let e = exchange, !e.answered, !e.requestComplete, e.ctx.hasBody,
            !pendingBody.isEmpty || !(e.upstream?.isWritable ?? false)
        {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private func resumeReads() {
        guard pendingRead, let context else { return }
        pendingRead = false
        read(context: context)
    }

    func failMidRequest(_ e: EdgeExchange, _ error: GatehouseError) {
        abandonUpstream(e)
        if e.responseStarted {
            e.ctx.log.error = error.reason
            abort(e)
        } else {
            answer(e.ctx, .error(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        responseWatch.cancel()
        if let e = exchange {
            exchange = nil
            e.cancelTimers()
            abandonUpstream(e)
            if e.ctx.log.status == 0 { e.ctx.log.status = 499 }
            if e.ctx.log.error == nil { e.ctx.log.error = "client_closed" }
            log(e.ctx)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: finishing

    /// Ends the exchange: the access log, then the stream. A request still sending its body is reset once the
    /// response is out (RFC 9113 §8.1: the server need not read the rest).
    private func finish(_ e: EdgeExchange) {
        guard exchange === e, let context else { return }
        e.cancelTimers()
        exchange = nil
        log(e.ctx)
        context.flush()
    }

    /// The response's last frame; on a request still sending, the stream is reset once it is out.
    private func writeLast(_ payload: HTTP2Frame.FramePayload) {
        guard let context else { return }
        if clientEnded { return write(payload) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(payload), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func abort(_ e: EdgeExchange) {
        guard exchange === e, let context else { return }
        e.cancelTimers()
        abandonUpstream(e)
        exchange = nil
        log(e.ctx)
        context.close(promise: nil)
    }

    private func log(_ ctx: RequestContext) {
        guard runtime.accessLog.isEnabled else { return }
        runtime.accessLog.record(ctx.accessLogEntry(client: peerText))
    }

    private func write(_ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(payload), promise: nil)
    }
}

extension HTTP2StreamEdge: ExchangeEdge {
    func isCurrent(_ ctx: RequestContext) -> Bool { exchange?.ctx === ctx && context != nil }

    func answer(_ ctx: RequestContext, _ answer: LocalAnswer) {
        guard let e = exchange, e.ctx === ctx else { return }
        if e.responseStarted { return abort(e) }
        abandonUpstream(e)
        e.answered = true
        e.responseStarted = true
        e.responseComplete = true
        ctx.record(answer)
        let headers = HTTP2Mapping.answerHeaders(answer.response, requestID: ctx.requestID, cookies: answer.cookies)
        let body = answer.response.body
        if ctx.isHEAD || body.isEmpty {
            writeLast(.headers(.init(headers: headers, endStream: true)))
        } else {
            write(.headers(.init(headers: headers, endStream: false)))
            writeLast(.data(.init(data: .byteBuffer(ByteBuffer(string: body)), endStream: true)))
        }
        finish(e)
    }

    /// HTTP/2 clients do not wait for 100 Continue before sending DATA (RFC 9113 §8.5 leaves it to them).
    func sendContinue(_ ctx: RequestContext) {
        guard isCurrent(ctx) else { return }
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "100")
        context?.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
    }

    func forward(_ ctx: RequestContext, to upstream: UpstreamTarget, head: ByteBuffer) {
        startForwarding(ctx, to: upstream, head: head)
    }
}

extension HTTP2StreamEdge: ExchangeDriver {
    var chunkMode: ChunkedDecoder.Mode { .payload }

    func bodyMayFlow() { pump() }
}

extension HTTP2StreamEdge: UpstreamLessee {
    func leased(_ connection: UpstreamConnection, reused: Bool) { attach(connection, reused: reused) }
    func leaseFailed(_ error: GatehouseError) { failLease(error) }
}

extension HTTP2StreamEdge: UpstreamExchange {
    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamHead(_ head: ResponseHead, framing: BodyFraming) {
        guard let e = exchange else { return }
        e.responseDeadline = nil
        e.responseStarted = true
        e.lastUpstreamActivity = .now()
        e.ctx.log.status = head.status
        let (headers, report) = HTTP2Mapping.responseHeaders(
            head, requestID: e.ctx.requestID, cookies: e.ctx.auth.cookies, isOwnCookie: runner?.isOwnCookie)
        if report.droppedOwnCookie {
            runtime.logger.warning(
                "upstream tried to set a Gatehouse cookie; dropped", metadata: ["route": "\(e.ctx.log.routeID)"])
        }
        if framing == .none {
            heldHeaders = headers
        } else {
            write(.headers(.init(headers: headers, endStream: false)))
        }
    }

    func upstreamBody(_ bytes: ByteBuffer) {
        guard let e = exchange else { return }
        e.lastUpstreamActivity = .now()
        e.ctx.log.bytes += Int64(bytes.readableBytes)
        if let held = heldHeaders {
            heldHeaders = nil
            write(.headers(.init(headers: held, endStream: false)))
        }
        write(.data(.init(data: .byteBuffer(bytes), endStream: false)))
    }

    func upstreamEnd(early: Bool) {
        guard let e = exchange else { return }
        e.upstream = nil
        e.responseComplete = true
        if let held = heldHeaders {
            heldHeaders = nil
            writeLast(.headers(.init(headers: held, endStream: true)))
        } else {
            writeLast(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        }
        finish(e)
    }

    func upstreamReadComplete() {
        guard let e = exchange, e.responseStarted, !e.responseComplete, let context else { return }
        if e.activityTimer == nil { armActivity(e) }
        context.flush()
    }

    func upstreamWritable() { pump() }

    func upstreamFailed(_ failure: UpstreamFailure) { relayFailure(failure) }
}
