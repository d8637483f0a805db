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
        ctx.record(answer)
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
        send(context, out)
        finish(e)
    }

    func sendContinue(_ ctx: RequestContext) {
        guard isCurrent(ctx), ctx.versionMinor == 1, let context else { return }
        var out = context.channel.allocator.buffer(capacity: 25)
        out.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        emitHeld(context)
        context.writeAndFlush(NIOAny(out), promise: nil)
    }

    func forward(_ ctx: RequestContext, to upstream: UpstreamTarget, head: ByteBuffer) {
        startForwarding(ctx, to: upstream, head: head)
    }
}

extension HTTP1Connection: ExchangeDriver {
    var chunkMode: ChunkedDecoder.Mode { (exchange?.ctx.versionMinor ?? 1) == 1 ? .passthrough : .payload }

    func bodyMayFlow() {
        process()
        resumeReads()
    }
}

extension HTTP1Connection: UpstreamLessee {
    func leased(_ connection: UpstreamConnection, reused: Bool) { attach(connection, reused: reused) }
    func leaseFailed(_ error: GatehouseError) { failLease(error) }
}
