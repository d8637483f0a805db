import GatehouseUpstream
import Testing

/// The pool state machine against a model: random event sequences (seeded, bounded), every action applied to a
/// simple model of connections and waiters, and the invariants checked after each event.
@Suite struct PoolStateMachineTests {
    typealias C = PoolStateMachine.ConnectionID
    typealias W = PoolStateMachine.WaiterID

    @Test func leaseFromIdleIsImmediate() {
        var m = PoolStateMachine(maxConnections: 2, maxIdle: 2)
        let (w0, a0) = m.leaseRequested()
        guard case .wait(w0) = a0.first, case .connect(let c) = a0.second else {
            Issue.record("expected wait + connect, got \(a0)")
            return
        }
        #expect(m.connectionEstablished(c).first == .lease(c, to: w0))
        #expect(m.released(c, reusable: true).first == .park(c))
        let (w1, a1) = m.leaseRequested()
        #expect(a1.first == .lease(c, to: w1))
        #expect(m.connectionCount == 1)
    }

    @Test func limitQueuesAndHandsOverInOrder() {
        var m = PoolStateMachine(maxConnections: 1, maxIdle: 1)
        let (w0, a0) = m.leaseRequested()
        guard case .connect(let c) = a0.second else {
            Issue.record("no connect")
            return
        }
        let (w1, a1) = m.leaseRequested()
        #expect(a1 == PoolStateMachine.Actions(.wait(w1)))  // at the limit: no attempt
        #expect(m.connectionEstablished(c).first == .lease(c, to: w0))
        #expect(m.released(c, reusable: true).first == .lease(c, to: w1))
        #expect(m.waiterTimedOut(w1).first == .none)  // already served
    }

    @Test func unreusableReleaseClosesAndReconnectsForWaiter() {
        var m = PoolStateMachine(maxConnections: 1, maxIdle: 1)
        let (_, a0) = m.leaseRequested()
        guard case .connect(let c) = a0.second else { return }
        _ = m.connectionEstablished(c)
        let (w1, _) = m.leaseRequested()
        let a = m.released(c, reusable: false)
        #expect(a.first == .close(c))
        guard case .connect(let c2) = a.second else {
            Issue.record("expected a new attempt for the waiter, got \(a)")
            return
        }
        #expect(m.connectionEstablished(c2).first == .lease(c2, to: w1))
    }

    @Test func failedAttemptFailsOldestWaiterOnly() {
        var m = PoolStateMachine(maxConnections: 1, maxIdle: 1)
        let (w0, a0) = m.leaseRequested()
        guard case .connect(let c) = a0.second else { return }
        let (w1, _) = m.leaseRequested()
        let a = m.connectionFailed(c)
        #expect(a.first == .fail(w0, .connectFailed))
        guard case .connect = a.second else {
            Issue.record("the next waiter gets its own attempt, got \(a)")
            return
        }
        #expect(m.waiterTimedOut(w1).first == .fail(w1, .queueTimeout))
    }

    @Test func queueFullFailsAtOnce() {
        var m = PoolStateMachine(maxConnections: 1, maxIdle: 0, maxWaiters: 1)
        _ = m.leaseRequested()
        let (w, a) = m.leaseRequested()
        #expect(a.first == .fail(w, .queueFull))
    }

    @Test func shutdownFailsWaitersAndClosesIdle() {
        var m = PoolStateMachine(maxConnections: 2, maxIdle: 2)
        let (w0, a0) = m.leaseRequested()
        guard case .connect(let c) = a0.second else { return }
        _ = m.connectionEstablished(c)
        _ = m.released(c, reusable: true)
        #expect(w0.raw == 0)
        let (w2, a2) = m.leaseRequested()
        #expect(a2.first == .lease(c, to: w2))
        let (w3, _) = m.leaseRequested()
        let actions = m.shutdown()
        #expect(actions.contains(.fail(w3, .shuttingDown)))
        #expect(m.released(c, reusable: true).first == .close(c))
        let (w4, a4) = m.leaseRequested()
        #expect(a4.first == .fail(w4, .shuttingDown))
    }

    /// The model: what the shell would know after applying every action.
    struct Model {
        var connecting: Set<C> = []
        var leased: [C: W] = [:]
        var idle: Set<C> = []
        var waiting: Set<W> = []
        var ended: [W: Int] = [:]

        mutating func apply(_ a: PoolStateMachine.Action) {
            switch a {
            case .none: break
            case .lease(let c, let w):
                #expect(waiting.remove(w) != nil, "leased to a waiter that was not waiting")
                connecting.remove(c)
                idle.remove(c)
                leased[c] = w
                ended[w, default: 0] += 1
            case .connect(let c): connecting.insert(c)
            case .wait(let w): waiting.insert(w)
            case .fail(let w, _):
                waiting.remove(w)
                ended[w, default: 0] += 1
            case .park(let c):
                connecting.remove(c)
                leased[c] = nil
                idle.insert(c)
            case .close(let c):
                connecting.remove(c)
                leased[c] = nil
                idle.remove(c)
            }
        }
    }

    @Test(arguments: [1, 2, 3, 5, 8])
    func randomSequencesKeepInvariants(maxConnections: Int) {
        var rng = SplitMix(seed: UInt64(maxConnections) &* 7919)
        for _ in 0..<200 {
            var m = PoolStateMachine(
                maxConnections: maxConnections, maxIdle: max(1, maxConnections - 1), maxWaiters: 16)
            var model = Model()
            for _ in 0..<200 {
                var actions: [PoolStateMachine.Action] = []
                switch rng.next() % 8 {
                case 0, 1:
                    let (w, a) = m.leaseRequested()
                    if case .lease = a.first { model.waiting.insert(w) }
                    if case .fail = a.first { model.waiting.insert(w) }
                    actions = [a.first, a.second]
                case 2:
                    if let c = model.connecting.randomElement(using: &rng) {
                        let a = m.connectionEstablished(c)
                        model.connecting.remove(c)
                        actions = [a.first, a.second]
                    }
                case 3:
                    if let c = model.connecting.randomElement(using: &rng) {
                        let a = m.connectionFailed(c)
                        model.connecting.remove(c)
                        actions = [a.first, a.second]
                    }
                case 4:
                    if let c = model.leased.keys.randomElement(using: &rng) {
                        let reusable = rng.next() % 3 != 0
                        let a = m.released(c, reusable: reusable)
                        model.leased[c] = nil
                        actions = [a.first, a.second]
                    }
                case 5:
                    if let w = model.waiting.randomElement(using: &rng) {
                        let a = m.waiterTimedOut(w)
                        actions = [a.first, a.second]
                    }
                case 6:
                    if let c = model.idle.randomElement(using: &rng) {
                        let a = m.closed(c)
                        model.idle.remove(c)
                        actions = [a.first, a.second]
                    }
                default:
                    if let c = model.idle.randomElement(using: &rng) {
                        let a = m.idleTimedOut(c)
                        actions = [a.first, a.second]
                    }
                }
                for a in actions { model.apply(a) }
                // Invariants.
                #expect(m.connectionCount <= maxConnections)
                #expect(m.connectionCount == model.connecting.count + model.leased.count + model.idle.count)
                #expect(m.idleCount == model.idle.count)
                #expect(m.waiterCount == model.waiting.count)
                #expect(model.ended.values.allSatisfy { $0 == 1 }, "a waiter ended twice")
                // Never an idle connection while someone waits.
                #expect(model.idle.isEmpty || model.waiting.isEmpty)
            }
        }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
