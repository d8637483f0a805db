import GatehouseAuth
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The browser login (OIDC authorization code + PKCE) and cookie sessions: the `/oauth2/start`, `/callback`
/// and `/sign_out` endpoints, opening and sealing session cookies, and refresh with a single flight per
/// session. Shared by every connection and event loop; the pure rules live in GatehouseCore.
final class BrowserLogin: Sendable {
    /// How long a finished refresh is reused by late requests that still carry the old cookie.
    static let refreshGrace: Int64 = 60
    /// Failed callbacks in a row (per browser, within 5 minutes) after which `/start` stops redirecting.
    static let loopThreshold = 3
    /// Bound of the replay set of consumed login states.
    static let maxConsumed = 50_000
    /// A token said to expire sooner than this is refreshed no more often than this.
    static let minimumTokenLifetime: Int64 = 30

    let session: SessionConfig
    let login: LoginConfig
    let names: SessionCookieNames
    let sealer: CookieSealer
    let keyStore: KeyStore
    let oidc: OIDCClient
    let logger: Logger
    let scheme: String
    let providersByID: [String: ProviderConfig]
    /// The provider `/oauth2/start` uses when none is named: the first one with a client id.
    let defaultProviderID: String?
    /// Top-level claims the routes need (identity headers, allow rules, claim mapping).
    let neededClaims: Set<String>
    /// Keep the access token in the session (some session route passes it upstream).
    let keepAccessToken: Bool
    private let flights: NIOLockedValueBox<SingleFlight<String, EventLoopPromise<RefreshOutcome>, RefreshOutcome>>
    /// Seconds added to the wall clock for session times: 0 in production; tests move it to expire access
    /// tokens without waiting.
    let clockOffset = Atomic<Int64>(0)
    /// States of finished callbacks (until the transaction would have expired): a replayed callback fails.
    let consumed = NIOLockedValueBox<[String: Int64]>([:])

    enum RefreshOutcome: Sendable {
        case refreshed(SessionRecord, sealed: String)
        /// The provider refused the refresh (e.g. invalid_grant): the session is over.
        case ended
        /// The provider could not be reached: keep the session as it is until its hard expiry.
        case transient
    }

    enum SessionState {
        case none(hadCookie: Bool)
        case valid(OpenedSession)
        case refreshDue(SessionRecord)
    }

    init(
        config: GatewayConfig, session: SessionConfig, keyStore: KeyStore, oidc: OIDCClient, logger: Logger,
        scheme: String
    ) {
        self.session = session
        self.login = config.login
        self.names = SessionCookieNames(base: session.cookieName)
        self.sealer = CookieSealer(secrets: session.secrets)
        self.keyStore = keyStore
        self.oidc = oidc
        self.logger = logger
        self.scheme = scheme
        var byID: [String: ProviderConfig] = [:]
        for p in config.providers { byID[p.id] = p }
        self.providersByID = byID
        self.defaultProviderID = config.providers.first { $0.clientID != nil }?.id
        var needed: Set<String> = ["scope", "scp"]
        for p in config.providers {
            needed.formUnion([p.claims.user, p.claims.email, p.claims.groups, p.claims.preferredUsername])
        }
        for header in config.identityHeaders + config.routes.flatMap(\.identityHeaders) { needed.insert(header.claim) }
        for route in config.routes { needed.formUnion(route.allow.claims.keys) }
        self.neededClaims = needed
        self.keepAccessToken = config.routes.contains { $0.auth == .session && $0.passAccessToken }
        self.flights = NIOLockedValueBox(SingleFlight(grace: Self.refreshGrace))
    }

    func mapping(for providerID: String) -> ClaimMapping {
        providersByID[providerID]?.claims ?? ClaimMapping()
    }

    // MARK: sessions on requests (the hot path: no I/O)

    func sessionState(cookies: [(name: String, value: String)], now: Int64, cache: OpenedSessionCache? = nil)
        -> SessionState
    {
        guard let sealed = names.join(cookies) else {
            return .none(
                hadCookie: cookies.contains {
                    names.isOwn(Substring($0.name)) && !$0.name.hasPrefix(names.transactionPrefix)
                })
        }
        let opened: OpenedSession
        if let cached = cache?.lookup(sealed) {
            opened = cached
        } else {
            guard let plain = sealer.open(sealed, purpose: .session), let record = SessionRecord.decode(plain),
                providersByID[record.providerID] != nil
            else { return .none(hadCookie: true) }
            opened = OpenedSession(record: record, identity: record.identity(mapping: mapping(for: record.providerID)))
            cache?.insert(sealed, opened)
        }
        let record = opened.record
        guard now < record.expiresAt, now >= record.createdAt - 300 else { return .none(hadCookie: true) }
        if session.refresh, record.refreshToken != nil, now >= record.accessTokenExpiresAt {
            return .refreshDue(record)
        }
        return .valid(opened)
    }

    /// Refreshes a session whose access token expired: one grant per session however many requests wait
    /// (they share the result), and late requests with the old cookie reuse it for `refreshGrace` seconds.
    func refresh(_ record: SessionRecord, on loop: EventLoop, now: Int64) -> EventLoopFuture<RefreshOutcome> {
        let key = record.sessionID + ":" + String(record.accessTokenExpiresAt)
        let promise = loop.makePromise(of: RefreshOutcome.self)
        let action = flights.withLockedValue { $0.request(key, waiter: promise, now: now) }
        switch action {
        case .reuse(let outcome):
            promise.succeed(outcome)
        case .wait:
            break
        case .run:
            let leader = loop.makePromise(of: RefreshOutcome.self)
            leader.completeWithTask { await self.performRefresh(record) }
            leader.futureResult.whenComplete { result in
                let outcome: RefreshOutcome
                switch result {
                case .success(let o): outcome = o
                case .failure: outcome = .transient
                }
                let waiters = self.flights.withLockedValue { $0.finish(key, result: outcome, now: self.now()) }
                promise.succeed(outcome)
                for waiter in waiters { waiter.succeed(outcome) }
            }
        }
        return promise.futureResult
    }

    private func performRefresh(_ record: SessionRecord) async -> RefreshOutcome {
        guard let provider = providersByID[record.providerID], let refreshToken = record.refreshToken else {
            return .ended
        }
        do {
            let tokens = try await oidc.refresh(refreshToken, provider: provider)
            let now = self.now()
            var updated = record
            updated.refreshToken = tokens.refreshToken ?? refreshToken
            updated.accessTokenExpiresAt = now + max(Self.minimumTokenLifetime, tokens.expiresIn ?? 300)
            if keepAccessToken { updated.accessToken = tokens.accessToken }
            // The claims are rebuilt as at login: the new ID token's (if any) plus userinfo, so group changes at
            // the provider apply and userinfo-only claims survive. When neither can be had, the claims stay.
            // The new tokens are kept whatever happens here: a rotated refresh token must not be lost.
            var claims: [String: JSONValue]?
            if let idToken = tokens.idToken {
                switch await validateIDToken(idToken, accessToken: tokens.accessToken, nonce: nil, provider: provider) {
                case .valid(let c):
                    guard c["sub"] == record.claims["sub"] else {
                        logger.warning(
                            "session refresh: the new ID token names another subject",
                            metadata: ["provider": "\(provider.id)"])
                        return .ended
                    }
                    claims = c
                    if record.idToken != nil { updated.idToken = idToken }
                case .unknownKeyID, .rejected:
                    logger.warning(
                        "session refresh: the new ID token did not validate; keeping the claims",
                        metadata: ["provider": "\(provider.id)"])
                }
            }
            if oidc.cachedMetadata(for: provider.id)?.userinfoEndpoint != nil,
                let info = try? await oidc.userinfo(accessToken: tokens.accessToken, provider: provider)
            {
                guard info["sub"] == record.claims["sub"] else {
                    logger.warning(
                        "session refresh: userinfo names another subject", metadata: ["provider": "\(provider.id)"])
                    return .ended
                }
                var merged = claims ?? [:]
                for (k, v) in info where merged[k] == nil { merged[k] = v }
                if claims == nil {
                    // No new ID token: keep the stored claims userinfo does not speak about.
                    for (k, v) in record.claims where merged[k] == nil { merged[k] = v }
                }
                claims = merged
            }
            if let claims {
                guard provider.claims.mappedUser(in: .object(claims)) != nil else {
                    logger.warning(
                        "session refresh: the provider no longer names the user; session ended",
                        metadata: ["provider": "\(provider.id)"])
                    return .ended
                }
                updated.claims = SessionRecord.reduce(claims, keeping: neededClaims)
            }
            var sealed = sealer.seal(updated.encoded(), purpose: .session)
            if let s = sealed, names.split(s) == nil, updated.idToken != nil {
                updated.idToken = nil  // too large for the cookies: sign-out goes without id_token_hint
                sealed = sealer.seal(updated.encoded(), purpose: .session)
            }
            guard let sealed, names.split(sealed) != nil else {
                logger.warning(
                    "session refresh: the session no longer fits in cookies; session ended",
                    metadata: ["provider": "\(provider.id)"])
                return .ended
            }
            logger.info(
                "session refreshed",
                metadata: ["provider": "\(provider.id)", "session": "\(record.sessionID.prefix(8))"])
            return .refreshed(updated, sealed: sealed)
        } catch OIDCClient.Failure.refused(let error) {
            logger.info(
                "session refresh refused; session ended", metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return .ended
        } catch {
            logger.warning(
                "session refresh failed; keeping the session",
                metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return .transient
        }
    }

    // MARK: cookies

    /// Set-Cookie values that store `sealed` as the session, clearing chunk cookies it no longer uses.
    func sessionCookies(
        sealed: String, record: SessionRecord, request cookies: [(name: String, value: String)], now: Int64
    ) -> [String]? {
        guard let parts = names.split(sealed) else { return nil }
        let maxAge = max(0, record.expiresAt - now)
        var out = parts.map {
            Cookies.setCookie(
                name: $0.name, value: $0.value, maxAge: maxAge, secure: session.secure, sameSite: session.sameSite,
                domain: session.domain)
        }
        out += names.staleChunks(in: cookies, keep: parts.count).map(deleteCookie)
        return out
    }

    func deleteCookie(_ name: String) -> String {
        Cookies.setCookie(
            name: name, value: "", maxAge: 0, secure: session.secure, sameSite: session.sameSite, domain: session.domain
        )
    }

    /// Deletes every session cookie (and, with `all`, every Gatehouse cookie) the request carries.
    func clearingCookies(request cookies: [(name: String, value: String)], all: Bool = false) -> [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for c in cookies where names.isOwn(Substring(c.name)) && !seen.contains(c.name) {
            if !all && (c.name.hasPrefix(names.transactionPrefix) || c.name == names.failureCounter) { continue }
            seen.insert(c.name)
            out.append(deleteCookie(c.name))
        }
        return out
    }

    var transactionSameSite: SessionConfig.SameSite { session.sameSite == .none ? .none : .lax }

    // MARK: endpoints

    enum Endpoint: String {
        case start, callback
        case signOut = "sign_out"
        case auth, userinfo
    }

    func endpoint(for path: String) -> Endpoint? {
        guard path.hasPrefix(login.pathPrefix), path.utf8.count > login.pathPrefix.utf8.count + 1 else { return nil }
        let rest = path.dropFirst(login.pathPrefix.count)
        guard rest.hasPrefix("/") else { return nil }
        return Endpoint(rawValue: String(rest.dropFirst()))
    }

    /// The URL that starts a login and comes back to `target` (path and query as requested).
    func loginURL(returnTo target: String, providers: [String]?) -> String {
        var url = login.pathPrefix + "/start?rd=" + FormEncoding.escape(target)
        if let providers, let id = providers.first(where: { providersByID[$0]?.clientID != nil }),
            id != defaultProviderID
        {
            url += "&provider=" + FormEncoding.escape(id)
        }
        return url
    }

    struct Request: Sendable {
        var query: String?
        var rawHost: String?
        var cookies: [(name: String, value: String)]
        /// `https` when a trusted proxy in front says so (X-Forwarded-Proto), else the listener's scheme.
        var scheme: String = "http"
    }

    struct Answer: Sendable {
        var result: Result<HTTPErrorResponse, GatehouseError>
        var cookies: [String]
    }

    func redirect(_ location: String, cookies: [String]) -> Answer {
        Answer(
            result: .success(
                HTTPErrorResponse(
                    status: 302,
                    headers: [
                        ("Location", location), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
                    ],
                    body: "", closeConnection: false)),
            cookies: cookies)
    }

    func failure(
        _ status: Int, _ reason: String, _ message: String, hint: String? = nil, byProvider: Bool = false,
        returnTo: String = "/",
        cookies: [String]
    ) -> Answer {
        let retry = login.pathPrefix + "/start?retry=1&rd=" + FormEncoding.escape(returnTo)
        return Answer(
            result: .failure(
                .loginFailed(
                    LoginFailure(
                        status: status, reason: reason, message: message, hint: hint, retryURL: retry,
                        byProvider: byProvider))),
            cookies: cookies)
    }

    func validatedReturn(_ raw: String?, rawHost: String?) -> String {
        let target = ReturnURL.validate(raw, requestHost: rawHost, allowedHosts: login.allowedRedirectHosts)
        // Never come back to a login endpoint (compared canonically: /./oauth2/start, /%6Fauth2/start): that is
        // how redirect loops start.
        let pathAndQuery = target.hasPrefix("/") ? target : (AbsoluteURL(target)?.pathAndQuery ?? "/")
        guard let canonical = try? CanonicalTarget.parse(pathAndQuery) else { return "/" }
        if canonical.path == login.pathPrefix || canonical.path.hasPrefix(login.pathPrefix + "/") { return "/" }
        return target
    }

    /// The browser's failed-callback count, clamped to 0...99 (it is client input).
    func failureCount(_ cookies: [(name: String, value: String)]) -> Int {
        let text = cookies.first { $0.name == names.failureCounter }?.value ?? "0"
        guard text.utf8.count <= 2, let n = Int(text) else { return 0 }
        return min(max(n, 0), 99)
    }

    func redirectURI(_ request: Request) -> String {
        if let configured = login.redirectURL { return configured }
        return "\(request.scheme)://\(request.rawHost ?? "localhost")\(login.pathPrefix)/callback"
    }

    /// The clock of session times (wall clock plus `clockOffset`).
    func now() -> Int64 { Self.epochNow() &+ clockOffset.load(ordering: .relaxed) }

    static func epochNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

/// A session cookie opened: the record, and the identity the routes see (built once with the provider's claim
/// mapping, not per request).
struct OpenedSession {
    let record: SessionRecord
    let identity: Identity
}

/// Sessions already opened on this event loop, keyed by the exact sealed cookie text: a repeated cookie costs
/// a hash and a lookup instead of AES-GCM and JSON (about 25 us). Only text that opened (authenticated) is
/// ever inserted, so the cache cannot be fed a forged session; time checks still run on every request.
/// Confined to its loop (not Sendable); bounded.
final class OpenedSessionCache {
    let capacity: Int
    private var entries: [String: OpenedSession] = [:]

    init(capacity: Int = 10_000) { self.capacity = capacity }

    func lookup(_ sealed: String) -> OpenedSession? { entries[sealed] }

    func insert(_ sealed: String, _ record: OpenedSession) {
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[sealed] = record
    }
}
