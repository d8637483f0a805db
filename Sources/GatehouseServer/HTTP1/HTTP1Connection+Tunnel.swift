import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// A WebSocket upgrade the upstream accepted (101): both connections become a byte tunnel.
extension HTTP1Connection {
    /// Answers the client's upgrade, then splices the connections once the current read is done (the upstream
    /// connection's parser is still on the stack now).
    func startTunnel(_ e: EdgeExchange, head: ResponseHead) {
        guard let context else { return }
        e.tunneled = true
        e.responseStarted = true
        e.responseComplete = true
        e.ctx.log.status = 101
        e.cancelTimers()
        var fields = HeaderRules.clientResponseHeaders(from: head.stringFields)
        fields.append(("Connection", "Upgrade"))
        fields.append(("Upgrade", "websocket"))
        fields.append(("X-Request-Id", e.ctx.requestID))
        var raw = context.channel.allocator.buffer(capacity: 256)
        raw.writeStaticString("HTTP/1.1 101 Switching Protocols\r\n")
        for (name, value) in fields { LocalResponseWriter.writeField(name, value, into: &raw) }
        raw.writeStaticString("\r\n")
        context.eventLoop.assumeIsolated().execute { [self] in
            guard self.exchange === e, let context = self.context else { return }
            do {
                try self.splice(e, response: raw, context: context)
            } catch {
                e.ctx.log.error = "tunnel_setup_failed"
                e.tunnelChannel?.close(promise: nil)
                e.upstream?.abandon()
                context.close(promise: nil)
            }
        }
    }

    private func splice(_ e: EdgeExchange, response: ByteBuffer, context: ChannelHandlerContext) throws {
        guard let upstream = e.upstream, let upstreamChannel = upstream.channel else {
            throw ChannelError.ioOnClosedChannel
        }
        e.tunnelChannel = upstreamChannel
        // Client side: a tunnel end goes in front of this handler, which stays only to log the exchange when
        // the connection closes.
        let client = context.pipeline.syncOperations
        try client.removeHandler(timeouts)
        let clientEnd = TunnelHandler()
        try client.addHandler(clientEnd, position: .before(self))
        emitHeld(context)
        context.writeAndFlush(NIOAny(response), promise: nil)
        // Upstream side: the upstream connection handler gives way to the other tunnel end, handing over bytes
        // the upstream sent right after its 101.
        let leftover = upstream.detachForTunnel()
        let upstreamEnd = TunnelHandler()
        clientEnd.partner = upstreamEnd
        upstreamEnd.partner = clientEnd
        let up = upstreamChannel.pipeline.syncOperations
        try up.removeHandler(upstream)
        try up.addHandler(upstreamEnd)
        e.upstream = nil
        // Bytes handed over arrive without a read-complete: flush them now, or a server that speaks first (a
        // greeting right after its 101) would wait forever for a client that waits for it.
        if let leftover, leftover.readableBytes > 0 {
            clientEnd.send(leftover)
            clientEnd.flushNow()
        }
        if inbound.readableBytes > 0 {
            upstreamEnd.send(inbound)
            upstreamEnd.flushNow()
            inbound = ByteBuffer()
        }
        let touch: (Int) -> Void = { [weak e] bytes in
            e?.lastTunnelActivity = .now()
            e?.ctx.log.bytes += Int64(bytes)
        }
        clientEnd.onActivity = touch
        upstreamEnd.onActivity = touch
        e.lastTunnelActivity = .now()
        armTunnelTimer(e)
        upstreamChannel.read()
        context.read()
    }

    /// Closes a tunnel that was idle for `idle`, or that outlived the identity that opened it (the token's `exp`,
    /// the session's end; at most 24 hours).
    private func armTunnelTimer(_ e: EdgeExchange) {
        guard let context else { return }
        let idle = TimeAmount(runtime.config.server.idleTimeout)
        var lifetimeEnd = NIODeadline.now() + .hours(24)
        if let expiry = e.ctx.identityExpiry {
            let remaining = max(0, expiry - epochSeconds())
            lifetimeEnd = min(lifetimeEnd, NIODeadline.now() + .seconds(min(remaining, 86_400)))
        }
        let deadline = min(e.lastTunnelActivity + idle, lifetimeEnd)
        e.tunnelTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard self.exchange === e, let context = self.context else { return }
            let now = NIODeadline.now()
            if now >= lifetimeEnd {
                e.ctx.log.error = "tunnel_identity_expired"
            } else if e.lastTunnelActivity + idle <= now {
                e.ctx.log.error = "tunnel_idle"
            } else {
                return self.armTunnelTimer(e)
            }
            e.tunnelChannel?.close(promise: nil)
            context.close(promise: nil)
        }
    }
}
