/// The state machine behind "one refresh per session, however many requests arrive together" (pure; the
/// caller holds the lock and supplies the clock).
///
/// The first request for a key runs the work; requests that arrive while it runs wait for its result; for a
/// grace period after it finished, late requests (still carrying the old cookie) reuse the result instead of
/// running the work again. Entries are bounded: finished entries past their grace are dropped first.
public struct SingleFlight<Key: Hashable, Waiter, Result> {
    public enum Action {
        /// Run the work, then call `finish`.
        case run
        /// Another request runs it; the waiter was recorded and is returned by `finish`.
        case wait
        /// Finished within the grace period: use this result.
        case reuse(Result)
    }

    enum Entry {
        case running([Waiter])
        case done(Result, until: Int64)
    }

    var entries: [Key: Entry] = [:]
    public let grace: Int64
    public let capacity: Int

    public init(grace: Int64, capacity: Int = 10_000) {
        self.grace = grace
        self.capacity = capacity
    }

    public var count: Int { entries.count }

    public mutating func request(_ key: Key, waiter: Waiter, now: Int64) -> Action {
        switch entries[key] {
        case .running(var waiters)?:
            waiters.append(waiter)
            entries[key] = .running(waiters)
            return .wait
        case .done(let result, let until)? where now < until:
            return .reuse(result)
        default:
            if entries.count >= capacity { prune(now: now) }
            entries[key] = .running([])
            return .run
        }
    }

    /// Records the result and returns the waiters to wake with it.
    public mutating func finish(_ key: Key, result: Result, now: Int64) -> [Waiter] {
        guard case .running(let waiters)? = entries[key] else {
            entries[key] = .done(result, until: now + grace)
            return []
        }
        entries[key] = .done(result, until: now + grace)
        return waiters
    }

    /// Drops finished entries past their grace period.
    public mutating func prune(now: Int64) {
        entries = entries.filter { _, entry in
            if case .done(_, let until) = entry { return now < until }
            return true
        }
    }
}

extension SingleFlight: Sendable where Key: Sendable, Waiter: Sendable, Result: Sendable {}
extension SingleFlight.Entry: Sendable where Key: Sendable, Waiter: Sendable, Result: Sendable {}
