/// The life of one upstream connection, and the only place that decides whether it may carry another request:
/// never after an error, a close by either side, a response that ended before the request was sent in full (the
/// upstream did not read the rest, so the connection is out of step), `Connection: close` or an HTTP/1.0
/// response without keep-alive, a body delimited by the close, or an upgrade.
///
/// idle → exchanging (lease) → idle (clean end: `.release(reusable: true)`) | closed (anything else).
/// exchanging → upgraded (101 to an upgrade request) → closed.
public struct ConnectionStateMachine: Sendable, Equatable {
    public enum RequestProgress: Sendable, Equatable { case sending, sent }
    public enum ResponseProgress: Sendable, Equatable { case awaitingHead, body, complete }

    public enum State: Sendable, Equatable {
        case idle
        case exchanging(request: RequestProgress, response: ResponseProgress, keepAlive: Bool)
        case upgraded
        case closed
    }

    public enum Action: Sendable, Equatable {
        case none
        /// The exchange is over on this connection: back to the pool, or closed.
        case release(reusable: Bool)
        /// The response ended while the request was still being sent: stop sending, close this connection (and
        /// the client's, whose remaining body will never be read).
        case responseEndedEarly
        case close
    }

    public private(set) var state: State = .idle

    public init() {}

    public var isIdle: Bool { state == .idle }

    public mutating func leased() {
        if state == .idle { state = .exchanging(request: .sending, response: .awaitingHead, keepAlive: true) }
    }

    public mutating func requestSent() -> Action {
        guard case .exchanging(_, let response, let keepAlive) = state else { return .none }
        if response == .complete { return finish(keepAlive: keepAlive) }
        state = .exchanging(request: .sent, response: response, keepAlive: keepAlive)
        return .none
    }

    /// A final response head (1xx heads are not reported here). `keepAlive`: the response allows another
    /// request (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with keep-alive) and its body is not delimited
    /// by the close. `hasBody`: false for 204, 304, HEAD and empty bodies.
    public mutating func responseHead(keepAlive: Bool, hasBody: Bool) -> Action {
        guard case .exchanging(let request, .awaitingHead, let k) = state else { return .none }
        let alive = k && keepAlive
        if !hasBody { return responseComplete(request: request, keepAlive: alive) }
        state = .exchanging(request: request, response: .body, keepAlive: alive)
        return .none
    }

    public mutating func responseEnded() -> Action {
        guard case .exchanging(let request, .body, let keepAlive) = state else { return .none }
        return responseComplete(request: request, keepAlive: keepAlive)
    }

    /// 101 to an upgrade request: the connection becomes a tunnel and is never pooled again.
    public mutating func upgraded() {
        if case .exchanging = state { state = .upgraded }
    }

    /// An error, a close by the upstream, or the client gone mid-exchange.
    public mutating func failed() -> Action {
        switch state {
        case .closed: return .none
        default:
            state = .closed
            return .close
        }
    }

    private mutating func responseComplete(request: RequestProgress, keepAlive: Bool) -> Action {
        if request == .sent { return finish(keepAlive: keepAlive) }
        state = .closed
        return .responseEndedEarly
    }

    private mutating func finish(keepAlive: Bool) -> Action {
        if keepAlive {
            state = .idle
            return .release(reusable: true)
        }
        state = .closed
        return .release(reusable: false)
    }
}
