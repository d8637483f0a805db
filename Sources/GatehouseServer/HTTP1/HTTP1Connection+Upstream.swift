import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// What the upstream connection reports: the response, relayed to the client as bytes.
extension HTTP1Connection: UpstreamExchange {
    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamHead(_ head: ResponseHead, framing: BodyFraming) {
        guard let e = exchange, let context else { return }
        let ctx = e.ctx
        if ctx.upgrade {
            if head.status == 101 { return startTunnel(e, head: head) }
            e.closeAfter = true  // a refused upgrade: relayed, then both connections close
        }
        e.responseDeadline = nil
        e.responseStarted = true
        e.lastUpstreamActivity = .now()
        ctx.log.status = head.status
        var chunked = false
        switch framing {
        case .none, .length:
            e.output = .raw
        case .chunked where ctx.versionMinor == 1:
            e.output = .passthroughChunked
            chunked = true
        case .untilClose where ctx.versionMinor == 1:
            e.output = .chunkEncode
            chunked = true
        case .chunked, .untilClose:
            // An HTTP/1.0 client finds the end of a body of unknown length by the close.
            e.output = .raw
            e.closeAfter = true
        }
        // A small body of known length usually arrives in the same read: room for it, so that head and body
        // leave in one write (`hold`).
        var room = 0
        if case .length(let n) = framing, n <= Int64(Self.coalesceLimit) { room = Int(n) }
        var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 160 + room)
        let report = ClientResponseWriter.write(
            head,
            options: .init(
                versionMinor: ctx.versionMinor, requestID: ctx.requestID, cookies: ctx.auth.cookies,
                isOwnCookie: runner?.isOwnCookie, chunked: chunked,
                close: ctx.wantsClose || e.closeAfter || quiescing),
            into: &out)
        if report.droppedOwnCookie {
            runtime.logger.warning(
                "upstream tried to set a Gatehouse cookie; dropped", metadata: ["route": "\(ctx.log.routeID)"])
        }
        hold(context, out)
    }

    func upstreamBody(_ bytes: ByteBuffer) {
        guard let e = exchange, let context else { return }
        e.lastUpstreamActivity = .now()
        e.ctx.log.bytes += Int64(bytes.readableBytes)
        if case .chunkEncode = e.output {
            var out = context.channel.allocator.buffer(capacity: bytes.readableBytes + 16)
            ChunkEncoding.writeChunk(bytes, into: &out)
            send(context, out)
        } else {
            send(context, bytes)
        }
    }

    func upstreamEnd(early: Bool) {
        guard let e = exchange, let context else { return }
        e.upstream = nil  // the connection went back to the pool, or closed, by itself
        e.responseComplete = true
        switch e.output {
        case .raw: break
        case .passthroughChunked, .chunkEncode:
            var out = context.channel.allocator.buffer(capacity: 5)
            ChunkEncoding.writeLast(into: &out)
            send(context, out)
        }
        // The upstream answered before the body was sent in full: the rest is unread, the connection closes.
        if early || !e.requestComplete { e.closeAfter = true }
        finish(e)
    }

    func upstreamReadComplete() {
        guard let e = exchange, e.responseStarted, !e.responseComplete, let context else { return }
        // A response still streaming after this read batch gets its stall watchdog (most small responses
        // complete within one batch and never need a timer).
        if e.activityTimer == nil { armActivity(e) }
        flushWrites(context)
    }

    func upstreamWritable() { bodyMayFlow() }

    func upstreamFailed(_ failure: UpstreamFailure) { relayFailure(failure) }
}
