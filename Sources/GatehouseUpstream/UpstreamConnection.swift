import GatehouseCore
import GatehouseHTTP
import NIOCore

/// What an upstream connection reports to the exchange leasing it (the client side). Called on the event loop
/// both share.
public protocol UpstreamExchange: AnyObject {
    /// Upstream reads are held while the client cannot take more bytes.
    var clientIsWritable: Bool { get }
    /// The final response head (or the 101 of an upgrade), with how its body is delimited.
    func upstreamHead(_ head: ResponseHead, framing: BodyFraming)
    /// Body bytes: as they arrived for a length- or close-delimited body; for a chunked one, validated chunk
    /// framing (`.passthrough`) or the chunks' data (`.payload`), as the lease asked.
    func upstreamBody(_ bytes: ByteBuffer)
    /// The response is complete. `early`: it ended before the request body was sent in full (the rest will not
    /// be read: the client connection must close after the response).
    func upstreamEnd(early: Bool)
    func upstreamReadComplete()
    /// The upstream can take more request bytes.
    func upstreamWritable()
    /// The connection broke (closed, reset, TLS or framing error) before the response was complete.
    func upstreamFailed(_ failure: UpstreamFailure)
}

public enum UpstreamFailure: Error, Equatable, Sendable {
    case closed
    case tls
    /// The response could not be framed or parsed (502).
    case protocolError(String)
}

/// The last handler of an upstream connection's pipeline (bytes in, bytes out): it writes the request the
/// client side built, parses the response head, delimits the body, and relays both with backpressure. Whether
/// the connection may carry another request is decided by its `ConnectionStateMachine` alone.
public final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    enum Response {
        case head(ResponseHeadParser)
        case length(Int64)
        case chunked(ChunkedDecoder)
        case untilClose
        /// Complete, or upgraded: further bytes belong to the tunnel (or are a protocol violation).
        case done
    }

    public private(set) var context: ChannelHandlerContext?
    public private(set) weak var exchange: UpstreamExchange?
    /// Set by the pool: where a finished exchange hands the connection back.
    var onRelease: ((UpstreamConnection, Bool) -> Void)?
    var onClosed: ((UpstreamConnection) -> Void)?
    public private(set) var machine = ConnectionStateMachine()
    private var response: Response = .done
    private var inbound: ByteBuffer?
    private var requestWasHEAD = false
    private var upgrade = false
    private var chunkMode: ChunkedDecoder.Mode = .passthrough
    /// Something was written since the last flush.
    private var unflushed = false
    private var pendingRead = false
    private let maxHeadBytes: Int
    /// How many exchanges this connection carried (the first is on a fresh connection).
    public private(set) var exchanges = 0

    public init(maxHeadBytes: Int = 64 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    public var isActive: Bool { context?.channel.isActive ?? false }
    public var isWritable: Bool { context?.channel.isWritable ?? false }
    public var channel: Channel? { context?.channel }

    /// Starts an exchange: writes the request head (flushed with the first `flush`).
    public func begin(
        _ exchange: UpstreamExchange, head: ByteBuffer, isHEAD: Bool, upgrade: Bool, chunkMode: ChunkedDecoder.Mode
    ) {
        self.exchange = exchange
        self.requestWasHEAD = isHEAD
        self.upgrade = upgrade
        self.chunkMode = chunkMode
        exchanges += 1
        machine.leased()
        response = .head(ResponseHeadParser(maxBytes: maxHeadBytes, maxFields: 1000))
        unflushed = true
        context?.write(NIOAny(head), promise: nil)
        // A response may already wait (bytes that arrived while idle close the connection, so none do).
    }

    public func write(_ bytes: ByteBuffer) {
        unflushed = true
        context?.write(NIOAny(bytes), promise: nil)
    }

    /// Sends what was written; a flush with nothing written since the last is skipped (the client edge asks at
    /// every read-complete).
    public func flush() {
        guard unflushed else { return }
        unflushed = false
        context?.flush()
    }

    /// The request is sent in full (`lastChunk`: write the chunked body's last chunk first).
    public func endRequest(lastChunk: Bool) {
        if lastChunk {
            var b = context?.channel.allocator.buffer(capacity: 5) ?? ByteBuffer()
            ChunkEncoding.writeLast(into: &b)
            write(b)
        }
        flush()
        apply(machine.requestSent())
    }

    /// The client side gives up on this exchange (its client went away, a timeout, an error): never reused.
    public func abandon() {
        exchange = nil
        _ = machine.failed()
        context?.close(promise: nil)
    }

    /// Detaches the exchange after a 101 (the tunnel takes over the channel); returns unread bytes.
    public func detachForTunnel() -> ByteBuffer? {
        exchange = nil
        defer { inbound = nil }
        return inbound
    }

    /// The client became writable again.
    public func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    public func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.clientIsWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard exchange != nil else {
            // Bytes from an idle connection: it does not speak HTTP as expected. Never reuse it.
            _ = machine.failed()
            context.close(promise: nil)
            return
        }
        if inbound == nil || inbound?.readableBytes == 0 {
            inbound = bytes
        } else {
            var b = bytes
            inbound?.writeBuffer(&b)
        }
        process()
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            if case .untilClose = response {
                // The close is the end of this body; the connection is done either way.
                response = .done
                self.exchange = nil
                _ = machine.failed()
                exchange.upstreamEnd(early: false)
            } else {
                self.exchange = nil
                _ = machine.failed()
                exchange.upstreamFailed(.closed)
            }
        }
        _ = machine.failed()
        onClosed?(self)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(String(describing: type(of: error)).contains("SSL") ? .tls : .closed)
    }

    private func fail(_ failure: UpstreamFailure) {
        let exchange = self.exchange
        self.exchange = nil
        _ = machine.failed()
        context?.close(promise: nil)
        exchange?.upstreamFailed(failure)
    }

    /// One step of reading the response, decided before any callback runs (a callback may start the next
    /// exchange on this connection, so the unread bytes are stored back first).
    private enum Step {
        case needMore
        case interim
        case head(ResponseHead, BodyFraming, ConnectionStateMachine.Action)
        case upgraded(ResponseHead)
        case body(ByteBuffer, end: Bool)
        case end
        case failure(UpstreamFailure)
    }

    private func process() {
        while let exchange, var buffer = inbound, buffer.readableBytes > 0 {
            let step = self.step(&buffer)
            inbound = buffer.readableBytes > 0 ? buffer : nil
            switch step {
            case .needMore:
                return
            case .interim:
                continue
            case .upgraded(let head):
                exchange.upstreamHead(head, framing: .none)
                return
            case .head(let head, let framing, let action):
                exchange.upstreamHead(head, framing: framing)
                if framing == .none { apply(action) }
            case .body(let bytes, let end):
                exchange.upstreamBody(bytes)
                if end { apply(machine.responseEnded()) }
            case .end:
                apply(machine.responseEnded())
            case .failure(let failure):
                fail(failure)
                return
            }
        }
    }

    private func step(_ buffer: inout ByteBuffer) -> Step {
        switch response {
        case .head(var parser):
            let result = parser.parse(&buffer)
            response = .head(parser)
            switch result {
            case .needMore:
                return .needMore
            case .failure(let f):
                return .failure(.protocolError(f == .tooLarge ? "response head too large" : "malformed response head"))
            case .head(let head):
                if head.status < 200 {
                    if head.status == 101, upgrade {
                        response = .done
                        machine.upgraded()
                        return .upgraded(head)
                    }
                    // Interim responses are not relayed (Gatehouse answers 100-continue itself).
                    response = .head(ResponseHeadParser(maxBytes: maxHeadBytes, maxFields: 1000))
                    return .interim
                }
                let framing: ResponseHead.Framing
                do {
                    framing = try head.framing(requestWasHEAD: requestWasHEAD)
                } catch {
                    return .failure(.protocolError("ambiguous response framing"))
                }
                // A refused upgrade is relayed, and the connection is not reused.
                let keepAlive = framing.keepAlive && !upgrade
                switch framing.body {
                case .none: response = .done
                case .length(let n): response = .length(n)
                case .chunked: response = .chunked(ChunkedDecoder())
                case .untilClose: response = .untilClose
                }
                let action = machine.responseHead(keepAlive: keepAlive, hasBody: framing.body != .none)
                return .head(head, framing.body, action)
            }
        case .length(let remaining):
            let n = Int(min(remaining, Int64(buffer.readableBytes)))
            guard let slice = buffer.readSlice(length: n) else { return .needMore }
            let left = remaining - Int64(n)
            response = left == 0 ? .done : .length(left)
            return .body(slice, end: left == 0)
        case .chunked(var decoder):
            let out = decoder.next(&buffer, mode: chunkMode)
            response = .chunked(decoder)
            switch out {
            case .bytes(let b): return .body(b, end: false)
            case .needMore: return .needMore
            case .end:
                response = .done
                return .end
            case .failure:
                return .failure(.protocolError("malformed chunked response body"))
            }
        case .untilClose:
            let all = buffer
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .body(all, end: false)
        case .done:
            // Kept for the tunnel after a 101; otherwise bytes after a complete response: not HTTP as expected.
            if machine.state == .upgraded { return .needMore }
            return .failure(.protocolError("bytes after the response"))
        }
    }

    /// Carries out the state machine's verdict on this connection.
    private func apply(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .none:
            return
        case .release(let reusable):
            let exchange = self.exchange
            self.exchange = nil
            // Anything read past the response on a reusable connection would be out of step: not reused.
            let clean = reusable && inbound == nil
            if !clean { context?.close(promise: nil) }
            // Back to the pool first: the exchange's end may start the next request, which can then reuse it.
            onRelease?(self, clean)
            exchange?.upstreamEnd(early: false)
        case .responseEndedEarly:
            let exchange = self.exchange
            self.exchange = nil
            context?.close(promise: nil)
            onRelease?(self, false)
            exchange?.upstreamEnd(early: true)
        case .close:
            let exchange = self.exchange
            self.exchange = nil
            context?.close(promise: nil)
            exchange?.upstreamFailed(.closed)
        }
    }
}
