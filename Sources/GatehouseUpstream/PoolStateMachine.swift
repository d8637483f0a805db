import NIOCore

/// The decisions of one upstream's connection pool on one event loop, as a plain value: events in, actions out,
/// no I/O, no clock (the shell runs the timers and reports them as events).
///
/// Connections are `connecting`, `leased` or `idle`; together at most `maxConnections`. Requests that find no
/// idle connection wait in FIFO order, each with a deadline the shell enforces; while fewer connection attempts
/// are running than requests are waiting (and the limit allows), one more is started. A connection that comes up
/// or is released in good shape goes to the oldest waiting request, else it is parked idle (at most `maxIdle`,
/// the rest closed). A failed attempt fails the oldest waiting request (the upstream is unreachable: waiting
/// longer would not help it), and the others keep their chances.
///
/// Transitions per connection: connecting → leased | idle | (failed, gone); leased → leased (handed on) | idle |
/// (closed); idle → leased | (closed, timed out). A waiter ends exactly once: leased, or failed.
public struct PoolStateMachine: Sendable {
    public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
        public let raw: Int
        public var description: String { "c\(raw)" }
    }

    public struct WaiterID: Hashable, Sendable, CustomStringConvertible {
        public let raw: Int
        public var description: String { "w\(raw)" }
    }

    public enum Failure: Error, Sendable, Equatable {
        /// No connection within the waiting deadline (every connection busy): 503.
        case queueTimeout
        /// Too many requests waiting already: 503 at once.
        case queueFull
        /// The connection attempt made for the request failed: 502.
        case connectFailed
        case shuttingDown
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Hand connection to the waiter (the shell cancels the waiter's deadline).
        case lease(ConnectionID, to: WaiterID)
        /// Start a connection attempt.
        case connect(ConnectionID)
        /// The waiter waits: arm its deadline.
        case wait(WaiterID)
        case fail(WaiterID, Failure)
        /// The connection is idle now: arm its idle timer.
        case park(ConnectionID)
        case close(ConnectionID)
    }

    /// At most two things happen per event (for example: fail a waiter and start an attempt for the next).
    public struct Actions: Sendable, Equatable {
        public var first: Action
        public var second: Action
        public init(_ first: Action, _ second: Action = .none) {
            self.first = first
            self.second = second
        }
    }

    enum State: Sendable, Equatable {
        case connecting
        case leased
        case idle
    }

    public let maxConnections: Int
    public let maxIdle: Int
    public let maxWaiters: Int
    private var connections: [ConnectionID: State] = [:]
    /// Idle connections, most recently released last (reused first: fewer cold connections).
    private var idle: [ConnectionID] = []
    private var waiters = CircularBuffer<WaiterID>(initialCapacity: 4)
    private var connecting = 0
    private var nextConnection = 0
    private var nextWaiter = 0
    public private(set) var isShuttingDown = false

    public init(maxConnections: Int, maxIdle: Int, maxWaiters: Int = 1024) {
        self.maxConnections = max(1, maxConnections)
        self.maxIdle = max(0, min(maxIdle, maxConnections))
        self.maxWaiters = max(0, maxWaiters)
    }

    public var connectionCount: Int { connections.count }
    public var idleCount: Int { idle.count }
    public var waiterCount: Int { waiters.count }
    public var connectingCount: Int { connecting }

    // MARK: events

    /// A request wants a connection; it is known by the returned waiter id from now on.
    public mutating func leaseRequested() -> (WaiterID, Actions) {
        let w = WaiterID(raw: nextWaiter)
        nextWaiter += 1
        if isShuttingDown { return (w, Actions(.fail(w, .shuttingDown))) }
        if let c = idle.popLast() {
            connections[c] = .leased
            return (w, Actions(.lease(c, to: w)))
        }
        guard waiters.count < maxWaiters else { return (w, Actions(.fail(w, .queueFull))) }
        waiters.append(w)
        return (w, Actions(.wait(w), startAttemptIfNeeded()))
    }

    public mutating func connectionEstablished(_ c: ConnectionID) -> Actions {
        guard connections[c] == .connecting else { return Actions(.close(c)) }
        connecting -= 1
        return Actions(handOver(c))
    }

    public mutating func connectionFailed(_ c: ConnectionID) -> Actions {
        guard connections[c] == .connecting else { return Actions(.none) }
        connecting -= 1
        connections[c] = nil
        guard let w = waiters.popFirst() else { return Actions(.none) }
        return Actions(.fail(w, .connectFailed), startAttemptIfNeeded())
    }

    /// The lessee is done with the connection; `reusable` only after a clean exchange.
    public mutating func released(_ c: ConnectionID, reusable: Bool) -> Actions {
        guard connections[c] == .leased else { return Actions(.close(c)) }
        guard reusable, !isShuttingDown else {
            connections[c] = nil
            return Actions(.close(c), startAttemptIfNeeded())
        }
        return Actions(handOver(c))
    }

    /// The connection closed by itself (the upstream closed an idle one, or a leased one broke).
    public mutating func closed(_ c: ConnectionID) -> Actions {
        switch connections[c] {
        case .idle?:
            connections[c] = nil
            if let i = idle.firstIndex(of: c) { idle.remove(at: i) }
            return Actions(.none)
        case .leased?:
            // The lessee still holds it and will release it (as not reusable); it no longer counts.
            connections[c] = nil
            return Actions(.none, startAttemptIfNeeded())
        case .connecting?, nil:
            return Actions(.none)
        }
    }

    public mutating func idleTimedOut(_ c: ConnectionID) -> Actions {
        guard connections[c] == .idle else { return Actions(.none) }
        connections[c] = nil
        if let i = idle.firstIndex(of: c) { idle.remove(at: i) }
        return Actions(.close(c))
    }

    public mutating func waiterTimedOut(_ w: WaiterID) -> Actions {
        guard remove(waiter: w) else { return Actions(.none) }
        return Actions(.fail(w, .queueTimeout))
    }

    /// The request went away before it got a connection (its client closed).
    public mutating func waiterCancelled(_ w: WaiterID) -> Actions {
        _ = remove(waiter: w)
        return Actions(.none)
    }

    /// Every waiter fails and every idle connection closes; leased ones close when released.
    public mutating func shutdown() -> [Action] {
        isShuttingDown = true
        var out: [Action] = []
        while let w = waiters.popFirst() { out.append(.fail(w, .shuttingDown)) }
        for c in idle {
            connections[c] = nil
            out.append(.close(c))
        }
        idle.removeAll()
        return out
    }

    // MARK: helpers

    private mutating func handOver(_ c: ConnectionID) -> Action {
        if isShuttingDown {
            connections[c] = nil
            return .close(c)
        }
        if let w = waiters.popFirst() {
            connections[c] = .leased
            return .lease(c, to: w)
        }
        guard idle.count < maxIdle else {
            connections[c] = nil
            return .close(c)
        }
        connections[c] = .idle
        idle.append(c)
        return .park(c)
    }

    /// One more attempt while fewer are running than requests wait, within the limit.
    private mutating func startAttemptIfNeeded() -> Action {
        guard !isShuttingDown, waiters.count > connecting, connections.count < maxConnections else { return .none }
        let c = ConnectionID(raw: nextConnection)
        nextConnection += 1
        connections[c] = .connecting
        connecting += 1
        return .connect(c)
    }

    private mutating func remove(waiter w: WaiterID) -> Bool {
        guard let i = waiters.firstIndex(of: w) else { return false }
        waiters.remove(at: i)
        return true
    }
}
