import GatehouseCore
import GatehouseHTTP
import GatehouseUpstream
import NIOCore

/// The I/O state of one request in flight on an edge (an HTTP/1.1 connection, an HTTP/2 stream): how much of its body is still to be
/// read, the upstream connection carrying it, how the response is framed toward the client, and its timers.
/// What the phases decided lives in `ctx`.
final class EdgeExchange {
    enum RequestBody {
        /// Not known yet (sanitize has not run).
        case unknown
        case length(remaining: Int64)
        case chunked(ChunkedDecoder)
        case complete
    }

    /// How the upstream's body reaches the client.
    enum Output {
        /// As it arrives (length-delimited, no body, or close-delimited toward a connection that closes after).
        case raw
        /// A chunked upstream body relayed as validated chunk framing; the last chunk is written at the end.
        case passthroughChunked
        /// A close-delimited upstream body re-framed as chunks for an HTTP/1.1 client.
        case chunkEncode
    }

    let ctx: RequestContext
    var body: RequestBody = .unknown
    var target: UpstreamTarget?
    /// The upstream request head (kept for the one retry on a fresh connection).
    var upstreamHead: ByteBuffer?
    var upstream: UpstreamConnection?
    var ticket: GatehouseUpstream.UpstreamPool.Ticket?
    /// Waiting for the pool (or a fresh connection for an upgrade).
    var leasing = false
    var reused = false
    var retried = false
    /// Gatehouse answered the request itself.
    var answered = false
    var responseStarted = false
    var responseComplete = false
    var output: Output = .raw
    /// The client connection closes after this response.
    var closeAfter = false
    var tunneled = false
    /// The upstream channel of a tunnel (its handler gave way to a tunnel end).
    var tunnelChannel: Channel?
    /// When the wait for the response head ends (`upstream_response`); checked by the edge's response watch.
    var responseDeadline: NIODeadline?
    /// Bounds a stalled body in either direction, re-armed lazily (progress costs a timestamp, not a timer).
    var activityTimer: Scheduled<Void>?
    var tunnelTimer: Scheduled<Void>?
    var lastClientActivity: NIODeadline
    var lastUpstreamActivity: NIODeadline
    var lastTunnelActivity: NIODeadline

    init(ctx: RequestContext) {
        self.ctx = ctx
        lastClientActivity = ctx.start
        lastUpstreamActivity = ctx.start
        lastTunnelActivity = ctx.start
    }

    var requestComplete: Bool {
        if case .complete = body { return true }
        return false
    }

    func cancelTimers() {
        responseDeadline = nil
        activityTimer?.cancel()
        activityTimer = nil
        tunnelTimer?.cancel()
        tunnelTimer = nil
    }
}

/// Request ids need to be unique, not secret: a SplitMix64 stream per connection, seeded once from the system
/// generator, avoids two getrandom(2) calls per request.
struct RequestIDGenerator {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    private mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 32 lowercase hex digits.
    mutating func next() -> String {
        let a = nextWord()
        let b = nextWord()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            let hex = UnsafeBufferPointer(start: digits.utf8Start, count: 16)
            for i in 0..<16 {
                buffer[i] = hex[Int(truncatingIfNeeded: a >> UInt64(60 - 4 * i)) & 0xF]
                buffer[16 + i] = hex[Int(truncatingIfNeeded: b >> UInt64(60 - 4 * i)) & 0xF]
            }
            return 32
        }
    }
}
