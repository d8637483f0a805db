import Crypto
import GatehouseCore

/// Verified tokens, keyed by the SHA-256 of the token text, so a repeated token costs a hash and a lookup
/// instead of a signature check. An entry is valid until the token's `exp` and only while the provider's key
/// set is the one that verified it (a refresh, which may drop the key, invalidates it). One cache per event
/// loop, so it needs no lock: not Sendable, confined to its loop.
///
/// Bounded by two generations of at most `capacity / 2` entries each: new entries go into the current one; when
/// it is full it becomes the previous one and the old previous one is dropped whole. A hit in the previous
/// generation moves the entry forward, so tokens in use survive and the rest age out: every operation is O(1),
/// with no scan of the cache (the earlier filter-then-drop-a-tenth eviction cost more per request than the
/// signature check itself once the cache was full, in the cache-miss benchmark).
public final class VerifiedTokenCache {
    struct Key: Hashable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
    }

    struct Entry {
        let identity: Identity
        let generation: UInt64
    }

    public let capacity: Int
    private let generationSize: Int
    private var current: [Key: Entry] = [:]
    private var previous: [Key: Entry] = [:]

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
        self.generationSize = max(1, capacity / 2)
    }

    public var count: Int { current.count + previous.count }

    static func key(_ token: String) -> Key {
        var token = token
        let digest = token.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return digest.withUnsafeBytes { raw in
            Key(
                a: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                b: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                c: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                d: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    /// The cached identity, if the entry exists, has not expired and its key set is still current.
    func lookup(_ key: Key, now: Int64, currentGeneration: (String) -> UInt64?) -> Identity? {
        if let entry = current[key] {
            guard valid(entry, now: now, currentGeneration: currentGeneration) else {
                current[key] = nil
                return nil
            }
            return entry.identity
        }
        guard let entry = previous.removeValue(forKey: key) else { return nil }
        guard valid(entry, now: now, currentGeneration: currentGeneration) else { return nil }
        store(key, entry)  // in use: carried into the current generation
        return entry.identity
    }

    private func valid(_ entry: Entry, now: Int64, currentGeneration: (String) -> UInt64?) -> Bool {
        let generation = entry.generation == 0 ? 0 : currentGeneration(entry.identity.providerID)
        return now <= entry.identity.expiresAt && entry.generation == generation
    }

    func insert(_ key: Key, identity: Identity, generation: UInt64, now: Int64) {
        store(key, Entry(identity: identity, generation: generation))
    }

    private func store(_ key: Key, _ entry: Entry) {
        if current.count >= generationSize, current[key] == nil {
            previous = current
            current = Dictionary(minimumCapacity: generationSize)
        }
        current[key] = entry
    }
}

/// Authenticates bearer tokens: the per-loop cache first, then full verification with the providers'
/// current keys. Pure apart from the cache it is handed.
public struct BearerAuthenticator: Sendable {
    public let store: KeyStore
    let verifier = TokenVerifier()
    let providersByID: [String: ProviderConfig]

    public init(store: KeyStore) {
        self.store = store
        var byID: [String: ProviderConfig] = [:]
        for p in store.providers { byID[p.id] = p }
        self.providersByID = byID
    }

    /// `allowed` lists the provider ids a route accepts (nil = all).
    public func authenticate(
        token: String, allowed: [String]?, cache: VerifiedTokenCache, now: Int64
    ) -> TokenVerifier.Outcome {
        let key = VerifiedTokenCache.key(token)
        if let identity = cache.lookup(key, now: now, currentGeneration: { store.generation(for: $0) }),
            allowed?.contains(identity.providerID) ?? true
        {
            return .verified(identity, keyGeneration: 0)
        }
        // Not a cached token: its syntax is checked before anything else looks at it.
        guard BearerCredentials.isWellFormed(token) else { return .rejected("malformed bearer token") }
        let ids = allowed ?? store.providers.map(\.id)
        let providers = ids.compactMap { id in
            providersByID[id].map { TokenVerifier.ProviderKeys(config: $0, keys: store.keys(for: id)) }
        }
        let outcome = verifier.verify(token: token, providers: providers, now: now)
        if case .verified(let identity, let generation) = outcome {
            cache.insert(key, identity: identity, generation: generation, now: now)
        }
        return outcome
    }
}
