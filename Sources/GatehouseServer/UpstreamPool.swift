import GatehouseCore
import NIOCore
import NIOPosix

/// Idle keep-alive connections to upstreams, one pool per event loop so that a client connection and the
/// upstream connection it uses always share a loop (no thread hop on the hot path). Loop-confined: every method
/// must be called on `eventLoop`.
final class UpstreamPool {
    let eventLoop: EventLoop
    let maxIdlePerTarget: Int
    let idleTimeout: TimeAmount
    private var idle: [UpstreamTarget: [IdleEntry]] = [:]

    private struct IdleEntry {
        var channel: Channel
        var timer: Scheduled<Void>
    }

    init(eventLoop: EventLoop, maxIdlePerTarget: Int, idleTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.maxIdlePerTarget = maxIdlePerTarget
        self.idleTimeout = idleTimeout
    }

    /// Takes the most recently used idle connection that is still open, if any.
    func lease(_ target: UpstreamTarget) -> Channel? {
        eventLoop.preconditionInEventLoop()
        // Mutate the stored array in place (no copy-on-write of the whole list per lease).
        while let entry = idle[target]?.popLast() {
            entry.timer.cancel()
            if entry.channel.isActive { return entry.channel }
        }
        return nil
    }

    /// Returns a connection that finished a clean exchange. Closes it when the pool for this target is full.
    func release(_ channel: Channel, target: UpstreamTarget) {
        eventLoop.preconditionInEventLoop()
        guard channel.isActive, idle[target, default: []].count < maxIdlePerTarget else {
            channel.close(promise: nil)
            return
        }
        let timer = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
            self?.remove(channel, target: target)
            channel.close(promise: nil)
        }
        idle[target, default: []].append(IdleEntry(channel: channel, timer: timer))
    }

    /// Forgets a connection that closed while idle.
    func remove(_ channel: Channel, target: UpstreamTarget) {
        guard var list = idle[target] else { return }
        if let index = list.firstIndex(where: { $0.channel === channel }) {
            list[index].timer.cancel()
            list.remove(at: index)
            idle[target] = list
        }
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    func closeAll() {
        for (_, list) in idle {
            for entry in list {
                entry.timer.cancel()
                entry.channel.close(promise: nil)
            }
        }
        idle = [:]
    }
}

/// One `UpstreamPool` per event loop of the group.
typealias PoolRegistry = PerLoop<UpstreamPool>

extension PerLoop where Value == UpstreamPool {
    convenience init(group: EventLoopGroup, maxIdlePerTarget: Int, idleTimeout: TimeAmount) {
        self.init(group: group) { loop in
            UpstreamPool(eventLoop: loop, maxIdlePerTarget: maxIdlePerTarget, idleTimeout: idleTimeout)
        }
    }

    func pool(for loop: EventLoop) -> UpstreamPool? { value(for: loop) }

    /// Closes every idle upstream connection, on each pool's own loop.
    func closeAll() async { await forEach { $0.closeAll() } }
}
