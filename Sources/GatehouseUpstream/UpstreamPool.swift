import GatehouseCore
import NIOCore

/// Who waits for a connection from the pool.
public protocol UpstreamLessee: AnyObject {
    /// The connection is the lessee's until it reports the exchange's end (it then goes back by itself).
    /// `reused`: it carried an exchange before (it may have been closed by the upstream meanwhile).
    func leased(_ connection: UpstreamConnection, reused: Bool)
    func leaseFailed(_ error: GatehouseError)
}

/// The shell around `PoolStateMachine` for one event loop: it keeps the connections and waiters the machine
/// names, runs the timers, and connects through `connector`. Loop-confined: call it on `eventLoop` only.
public final class UpstreamPool {
    /// Opens a connection whose pipeline ends in an `UpstreamConnection`, on the given loop.
    public typealias Connector = (UpstreamTarget, EventLoop) -> EventLoopFuture<Channel>

    public struct Limits: Sendable {
        public var maxConnections: Int
        public var maxIdle: Int
        public var idleTimeout: TimeAmount
        public var queueTimeout: TimeAmount
        public init(maxConnections: Int, maxIdle: Int, idleTimeout: TimeAmount, queueTimeout: TimeAmount) {
            self.maxConnections = maxConnections
            self.maxIdle = maxIdle
            self.idleTimeout = idleTimeout
            self.queueTimeout = queueTimeout
        }
    }

    final class Target {
        var machine: PoolStateMachine
        var connections: [PoolStateMachine.ConnectionID: UpstreamConnection] = [:]
        /// When each idle connection was parked (idle expiry is a sweep, not a timer per release).
        var idleSince: [PoolStateMachine.ConnectionID: NIODeadline] = [:]
        var waiters: [PoolStateMachine.WaiterID: (lessee: UpstreamLessee, timer: Scheduled<Void>?)] = [:]
        /// Why the last attempt failed (the waiter it fails gets this error).
        var lastConnectError: GatehouseError = .upstreamConnectFailed("connect failed")
        init(machine: PoolStateMachine) { self.machine = machine }
    }

    /// A waiting lease, to cancel when its request goes away.
    public struct Ticket {
        let target: UpstreamTarget
        let waiter: PoolStateMachine.WaiterID
    }

    public let eventLoop: EventLoop
    public let limits: Limits
    private let connector: Connector
    private var targets: [UpstreamTarget: Target] = [:]
    /// The target looked up last: most requests on a loop go where the one before went, and comparing a target
    /// whose strings share storage costs less than hashing it.
    private var lastTarget: (key: UpstreamTarget, target: Target)?
    /// The one timer that expires idle connections, armed while any are idle.
    private var sweep: Scheduled<Void>?

    public init(eventLoop: EventLoop, limits: Limits, connector: @escaping Connector) {
        self.eventLoop = eventLoop
        self.limits = limits
        self.connector = connector
    }

    /// Asks for a connection: `lessee.leased` or `.leaseFailed` is called exactly once, possibly before this
    /// returns. The ticket cancels a wait.
    @discardableResult
    public func lease(_ target: UpstreamTarget, for lessee: UpstreamLessee) -> Ticket {
        let t = self.target(target)
        let (w, actions) = t.machine.leaseRequested()
        t.waiters[w] = (lessee, nil)
        run(actions, t, target)
        return Ticket(target: target, waiter: w)
    }

    public func cancel(_ ticket: Ticket) {
        guard let t = lookup(ticket.target), let entry = t.waiters.removeValue(forKey: ticket.waiter) else { return }
        entry.timer?.cancel()
        run(t.machine.waiterCancelled(ticket.waiter), t, ticket.target)
    }

    /// Closes the idle connections to `target` (one was found closed by the upstream: the rest likely are too).
    public func closeIdle(_ target: UpstreamTarget) {
        guard let t = lookup(target) else { return }
        for c in t.idleSince.keys {
            t.idleSince[c] = nil
            run(t.machine.idleTimedOut(c), t, target)
        }
    }

    public var idleCount: Int { targets.values.reduce(0) { $0 + $1.machine.idleCount } }
    public var connectionCount: Int { targets.values.reduce(0) { $0 + $1.machine.connectionCount } }

    public func shutdown() {
        for (key, t) in targets {
            for action in t.machine.shutdown() { run(action, t, key) }
        }
        sweep?.cancel()
        sweep = nil
    }

    /// A connection outside the pool (an upgrade, which becomes a tunnel or is closed): `done` is called once,
    /// on `eventLoop`.
    public func connectUnpooled(
        _ target: UpstreamTarget, _ done: @escaping (Result<UpstreamConnection, GatehouseError>) -> Void
    ) {
        connector(target, eventLoop).hop(to: eventLoop).assumeIsolated().whenComplete { result in
            switch result.flatMap(Self.handler) {
            case .success(let connection): done(.success(connection))
            case .failure(let error): done(.failure(Self.mapConnectError(error)))
            }
        }
    }

    /// The connection handler of a channel on this loop.
    static func handler(_ channel: Channel) -> Result<UpstreamConnection, Error> {
        Result {
            do {
                return try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
    }

    static func mapConnectError(_ error: Error) -> GatehouseError {
        if case ChannelError.connectTimeout = error { return .upstreamConnectTimeout }
        return .upstreamConnectFailed("\(error)")
    }

    private func lookup(_ key: UpstreamTarget) -> Target? {
        if let last = lastTarget, last.key == key { return last.target }
        guard let t = targets[key] else { return nil }
        lastTarget = (key, t)
        return t
    }

    private func target(_ key: UpstreamTarget) -> Target {
        if let t = lookup(key) { return t }
        let t = Target(
            machine: PoolStateMachine(maxConnections: limits.maxConnections, maxIdle: limits.maxIdle))
        targets[key] = t
        return t
    }

    private func run(_ actions: PoolStateMachine.Actions, _ t: Target, _ key: UpstreamTarget) {
        run(actions.first, t, key)
        run(actions.second, t, key)
    }

    private func run(_ action: PoolStateMachine.Action, _ t: Target, _ key: UpstreamTarget) {
        switch action {
        case .none:
            return
        case .lease(let c, let w):
            t.idleSince[c] = nil
            guard let entry = t.waiters.removeValue(forKey: w), let connection = t.connections[c] else { return }
            entry.timer?.cancel()
            guard connection.isActive else {
                // Closed while idle, its close not yet reported: count it gone and ask again for this waiter.
                run(t.machine.closed(c), t, key)
                let (w2, next) = t.machine.leaseRequested()
                t.waiters[w2] = (entry.lessee, nil)
                run(next, t, key)
                return
            }
            entry.lessee.leased(connection, reused: connection.exchanges > 0)
        case .connect(let c):
            connect(c, t, key)
        case .wait(let w):
            let timer = eventLoop.assumeIsolated().scheduleTask(in: limits.queueTimeout) { [weak self, weak t] in
                guard let self, let t else { return }
                self.run(t.machine.waiterTimedOut(w), t, key)
            }
            t.waiters[w]?.timer = timer
        case .fail(let w, let failure):
            guard let entry = t.waiters.removeValue(forKey: w) else { return }
            entry.timer?.cancel()
            let error: GatehouseError
            switch failure {
            case .connectFailed: error = t.lastConnectError
            case .queueTimeout, .queueFull: error = .upstreamBusy
            case .shuttingDown: error = .shuttingDown
            }
            entry.lessee.leaseFailed(error)
        case .park(let c):
            t.idleSince[c] = .now()
            if sweep == nil { armSweep(at: .now() + limits.idleTimeout) }
        case .close(let c):
            t.idleSince[c] = nil
            if let connection = t.connections.removeValue(forKey: c) {
                connection.onClosed = nil
                connection.onRelease = nil
                connection.channel?.close(promise: nil)
            }
        }
    }

    /// Expires connections idle for `idleTimeout`, then waits for the next one due (while any are idle).
    private func armSweep(at deadline: NIODeadline) {
        sweep = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.sweep = nil
            let now = NIODeadline.now()
            var next: NIODeadline?
            for (key, t) in self.targets {
                for (c, since) in t.idleSince {
                    let due = since + self.limits.idleTimeout
                    if due <= now {
                        t.idleSince[c] = nil
                        self.run(t.machine.idleTimedOut(c), t, key)
                    } else {
                        next = next.map { min($0, due) } ?? due
                    }
                }
            }
            if let next, self.sweep == nil { self.armSweep(at: next) }
        }
    }

    private func connect(_ c: PoolStateMachine.ConnectionID, _ t: Target, _ key: UpstreamTarget) {
        connector(key, eventLoop).hop(to: eventLoop).assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            switch result.flatMap(Self.handler) {
            case .success(let connection):
                t.connections[c] = connection
                connection.onRelease = { [weak self, weak t] _, reusable in
                    guard let self, let t else { return }
                    self.run(t.machine.released(c, reusable: reusable), t, key)
                }
                connection.onClosed = { [weak self, weak t] _ in
                    guard let self, let t else { return }
                    t.idleSince[c] = nil
                    t.connections[c] = nil
                    self.run(t.machine.closed(c), t, key)
                }
                self.run(t.machine.connectionEstablished(c), t, key)
            case .failure(let error):
                t.lastConnectError = Self.mapConnectError(error)
                self.run(t.machine.connectionFailed(c), t, key)
            }
        }
    }
}
