import GatehouseCore
import Logging
import Synchronization

/// Fetches a provider's key set document. Implemented over the network elsewhere (discovery, JWKS URL,
/// file://); tests supply their own.
public protocol KeySource: Sendable {
    /// Returns the JWKS bytes and the max-age the server advertised, if any.
    func fetchKeySet(for provider: ProviderConfig) async throws -> (bytes: [UInt8], maxAge: Duration?)
}

/// The current key set of every provider, refreshed off the request path.
///
/// - At start-up every provider is fetched (with back-off until it succeeds); `allReady` turns true once each
///   has a key set.
/// - Then each is refreshed on its max-age (clamped to 1 minute ... 24 hours; 1 hour by default).
/// - A token with an unknown `kid` may trigger one extra refresh per provider per `unknownKidInterval`; all
///   callers arriving meanwhile share the one fetch in flight (single flight).
/// - A failed fetch, or one that yields no usable key, keeps the last good key set.
public final class KeyStore: Sendable {
    public static let unknownKidInterval: Duration = .seconds(30)
    public static let defaultRefresh: Duration = .seconds(3600)

    struct Entry {
        var keys: KeySet?
        var inFlight: Task<Bool, Never>?
        var lastForcedRefresh: ContinuousClock.Instant?
        var fetches = 0
        var nextRefresh: Swift.Duration = .seconds(3600)
    }

    public let providers: [ProviderConfig]
    let source: KeySource
    let logger: Logger
    private let state: Mutex<[String: Entry]>
    private let generationCounter = Atomic<UInt64>(0)
    /// The generation of each provider's current key set (0 = none yet), readable without the lock: the
    /// verified-token cache checks it on every request from every event loop, and a contended lock there costs
    /// futex calls.
    private let generations: [String: GenerationCell]

    final class GenerationCell: Sendable {
        let value = Atomic<UInt64>(0)
    }

    public init(providers: [ProviderConfig], source: KeySource, logger: Logger) {
        self.providers = providers
        self.source = source
        self.logger = logger
        var entries: [String: Entry] = [:]
        var cells: [String: GenerationCell] = [:]
        for p in providers where KeyStore.needsKeySet(p) {
            entries[p.id] = Entry()
            cells[p.id] = GenerationCell()
        }
        self.state = Mutex(entries)
        self.generations = cells
    }

    /// A provider that accepts only HS* algorithms verifies with its shared secret and has no key set to fetch.
    static func needsKeySet(_ provider: ProviderConfig) -> Bool {
        provider.algorithms.contains { !$0.isSymmetric }
    }

    public func keys(for providerID: String) -> KeySet? {
        state.withLock { $0[providerID]?.keys }
    }

    public func generation(for providerID: String) -> UInt64? {
        guard let value = generations[providerID]?.value.load(ordering: .acquiring), value != 0 else { return nil }
        return value
    }

    /// True when every provider has had one successful fetch.
    public var allReady: Bool {
        state.withLock { entries in entries.values.allSatisfy { $0.keys != nil } }
    }

    /// How many fetches were started per provider (for tests and metrics).
    public func fetchCount(for providerID: String) -> Int {
        state.withLock { $0[providerID]?.fetches ?? 0 }
    }

    /// Called when a token names an unknown `kid`. Returns true when a fetch ran (or was joined) and succeeded.
    public func refreshForUnknownKeyID(providerID: String) async -> Bool {
        let task: Task<Bool, Never>? = state.withLock { entries in
            guard var entry = entries[providerID] else { return nil }
            if let running = entry.inFlight { return running }
            let now = ContinuousClock.now
            if let last = entry.lastForcedRefresh, now - last < Self.swiftDuration(Self.unknownKidInterval) {
                return nil
            }
            entry.lastForcedRefresh = now
            let task = startFetch(providerID: providerID, entry: &entry)
            entries[providerID] = entry
            return task
        }
        guard let task else { return false }
        return await task.value
    }

    /// A scheduled (or start-up) refresh; joins a fetch already in flight.
    public func refresh(providerID: String) async -> Bool {
        let task: Task<Bool, Never>? = state.withLock { entries in
            guard var entry = entries[providerID] else { return nil }
            if let running = entry.inFlight { return running }
            let task = startFetch(providerID: providerID, entry: &entry)
            entries[providerID] = entry
            return task
        }
        guard let task else { return false }
        return await task.value
    }

    /// Must be called with the lock held; records the task as in flight.
    private func startFetch(providerID: String, entry: inout Entry) -> Task<Bool, Never> {
        entry.fetches += 1
        let task = Task { await self.fetch(providerID: providerID) }
        entry.inFlight = task
        return task
    }

    private func fetch(providerID: String) async -> Bool {
        guard let provider = providers.first(where: { $0.id == providerID }) else { return false }
        var ok = false
        var maxAge: Duration?
        var newKeys: KeySet?
        do {
            let (bytes, age) = try await source.fetchKeySet(for: provider)
            let generation = generationCounter.add(1, ordering: .relaxed).newValue
            let set = try JWKSParser.parse(bytes, generation: generation)
            for reason in set.skipped {
                logger.warning("key skipped", metadata: ["provider": "\(providerID)", "reason": "\(reason)"])
            }
            if set.keys.isEmpty {
                logger.error(
                    "key set has no usable key; keeping the previous one", metadata: ["provider": "\(providerID)"])
            } else {
                newKeys = set
                maxAge = age
                ok = true
            }
        } catch {
            logger.error(
                "key set fetch failed; keeping the previous one",
                metadata: ["provider": "\(providerID)", "error": "\(error)"])
        }
        state.withLock { entries in
            guard var entry = entries[providerID] else { return }
            entry.inFlight = nil
            if let newKeys {
                entry.keys = newKeys
                generations[providerID]?.value.store(newKeys.generation, ordering: .releasing)
                let seconds = min(
                    max(maxAge?.nanoseconds ?? Self.defaultRefresh.nanoseconds, 60_000_000_000), 86_400_000_000_000)
                entry.nextRefresh = .nanoseconds(seconds)
            }
            entries[providerID] = entry
        }
        if ok {
            logger.info(
                "key set loaded", metadata: ["provider": "\(providerID)", "keys": "\(newKeys?.keys.count ?? 0)"])
        }
        return ok
    }

    /// Runs until cancelled: the first fetch of every provider (retrying with back-off up to 30 s), then
    /// periodic refreshes.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for provider in providers where KeyStore.needsKeySet(provider) {
                group.addTask { await self.maintain(providerID: provider.id) }
            }
        }
    }

    private func maintain(providerID: String) async {
        var backoff: Swift.Duration = .milliseconds(250)
        // Keys loaded before `run` started (a warm start) wait for their normal refresh time.
        if let wait = state.withLock({ $0[providerID]?.keys != nil ? $0[providerID]?.nextRefresh : nil }) {
            do { try await Task.sleep(for: wait) } catch { return }
        }
        while !Task.isCancelled {
            let ok = await refresh(providerID: providerID)
            let wait: Swift.Duration
            if ok {
                backoff = .milliseconds(250)
                wait = state.withLock { $0[providerID]?.nextRefresh ?? .seconds(3600) }
            } else {
                wait = backoff
                backoff = min(backoff * 2, .seconds(30))
            }
            do {
                try await Task.sleep(for: wait)
            } catch {
                return
            }
        }
    }

    static func swiftDuration(_ d: GatehouseCore.Duration) -> Swift.Duration { .nanoseconds(d.nanoseconds) }
}
