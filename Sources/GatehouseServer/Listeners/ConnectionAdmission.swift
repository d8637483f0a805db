import NIOCore

/// Whether a new client connection may open, against `limits.max_connections` (all listeners) and
/// `limits.max_connections_per_client` (per TCP peer address; forwarded headers play no part, since a
/// connection is admitted before any byte is read). Pure: the server keeps one under its connection lock.
struct ConnectionAdmission: Sendable {
    enum Decision: Sendable, Equatable {
        case admit
        /// `max_connections` open already.
        case refuseTotal
        /// `max_connections_per_client` open already from this address.
        case refusePerClient
    }

    let maxTotal: Int
    /// 0: no per-address limit.
    let maxPerClient: Int
    private(set) var total = 0
    private(set) var perClient: [String: Int] = [:]
    /// Refusals since start, by reason (metric-ready).
    private(set) var refusedTotal = 0
    private(set) var refusedPerClient = 0

    init(maxTotal: Int, maxPerClient: Int) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    /// Admits and counts the connection, or refuses it (nothing counted but the refusal). `client` is the
    /// peer's address without its port; nil (a Unix socket) counts only toward the total.
    mutating func admit(_ client: String?) -> Decision {
        guard total < maxTotal else {
            refusedTotal += 1
            return .refuseTotal
        }
        if let client, maxPerClient > 0 {
            let open = perClient[client, default: 0]
            guard open < maxPerClient else {
                refusedPerClient += 1
                return .refusePerClient
            }
            perClient[client] = open + 1
        }
        total += 1
        return .admit
    }

    /// An admitted connection closed.
    mutating func release(_ client: String?) {
        total = max(0, total - 1)
        guard let client, maxPerClient > 0, let open = perClient[client] else { return }
        if open <= 1 {
            perClient.removeValue(forKey: client)
        } else {
            perClient[client] = open - 1
        }
    }

    /// The key of a peer: its IP address (IPv4-mapped IPv6 as IPv4, so one client is one key).
    static func clientKey(_ address: SocketAddress?) -> String? {
        guard let ip = address?.ipAddress else { return nil }
        if ip.hasPrefix("::ffff:"), ip.contains(".") { return String(ip.dropFirst(7)) }
        return ip
    }
}

extension GatehouseServer {
    /// Answers a connection over the limits and closes it. Cleartext: a 503 through the one error mapping, then a
    /// lingering close (so the answer is not lost to a reset when the client already sent its request; bounded by
    /// `LingeringCloseHandler`'s limits). TLS: closed at once, since answering would first cost the very
    /// handshake the limit exists to spare.
    static func refuse(_ channel: Channel, perClient: Bool, tls: Bool) -> EventLoopFuture<Void> {
        if tls { return channel.close() }
        return channel.eventLoop.makeCompletedFuture {
            let lingering = LingeringCloseHandler()
            try channel.pipeline.syncOperations.addHandler(lingering)
            lingering.startDiscarding()
            var out = channel.allocator.buffer(capacity: 256)
            var ids = RequestIDGenerator()
            let options = LocalResponseWriter.Options(
                versionMinor: 1, requestID: ids.next(), cookies: [], close: true, omitBody: false)
            LocalResponseWriter.write(
                .make(for: .tooManyConnections(perClient: perClient)), options: options, into: &out)
            channel.writeAndFlush(out).assumeIsolated().whenComplete { _ in lingering.answerFlushed() }
        }
    }

    /// Client connections refused since start, by limit (metric-ready).
    public var connectionRefusals: (total: Int, perClient: Int) {
        state.withLockedValue { ($0.admission.refusedTotal, $0.admission.refusedPerClient) }
    }

    /// Accepts that failed since start, on every listener (file descriptors exhausted, ...; metric-ready).
    public var acceptErrors: Int { acceptErrorCount.withLockedValue { $0 } }
}
