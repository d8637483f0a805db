// Over 500 lines (581) for now: the login's endpoints, session cookies and refresh share one state object; it is
// split by concern (endpoints / session codec / refresh) with the login and clients issue, which reworks it.
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
    private let consumed = NIOLockedValueBox<[String: Int64]>([:])

    enum RefreshOutcome: Sendable {
        case refreshed(SessionRecord, sealed: String)
        /// The provider refused the refresh (e.g. invalid_grant): the session is over.
        case ended
        /// The provider could not be reached: keep the session as it is until its hard expiry.
        case transient
    }

    enum SessionState {
        case none(hadCookie: Bool)
        case valid(SessionRecord)
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
        let record: SessionRecord
        if let cached = cache?.lookup(sealed) {
            record = cached
        } else {
            guard let plain = sealer.open(sealed, purpose: .session), let opened = SessionRecord.decode(plain),
                providersByID[opened.providerID] != nil
            else { return .none(hadCookie: true) }
            record = opened
            cache?.insert(sealed, record)
        }
        guard now < record.expiresAt, now >= record.createdAt - 300 else { return .none(hadCookie: true) }
        if session.refresh, record.refreshToken != nil, now >= record.accessTokenExpiresAt {
            return .refreshDue(record)
        }
        return .valid(record)
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

    /// `/oauth2/start?rd=URL[&provider=id]`
    func start(_ request: Request, now: Int64) async -> Answer {
        guard let params = FormEncoding.decode(Substring(request.query ?? "")) else {
            return failure(400, "login_bad_request", "The sign-in link is malformed.", cookies: [])
        }
        let rd = validatedReturn((try? FormEncoding.single("rd", in: params).get()) ?? nil, rawHost: request.rawHost)
        let fails = failureCount(request.cookies)
        let retry = (try? FormEncoding.single("retry", in: params).get()) == "1"
        if fails >= Self.loopThreshold && !retry {
            return failure(
                409, "login_loop", "Signing in did not complete.", hint: LoginFailure.loopHint, returnTo: rd,
                cookies: [])
        }
        var cookies: [String] = []
        if retry, fails > 0 { cookies.append(deleteCookie(names.failureCounter)) }
        let requested = (try? FormEncoding.single("provider", in: params).get()) ?? nil
        guard let providerID = requested ?? defaultProviderID, let provider = providersByID[providerID],
            let clientID = provider.clientID
        else {
            return failure(
                400, "login_bad_request", "No identity provider is configured for sign-in.", returnTo: rd,
                cookies: cookies)
        }
        let meta: OIDCClient.Metadata
        do {
            meta = try await oidc.metadata(for: provider)
        } catch {
            logger.warning(
                "login: provider discovery failed", metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return failure(
                502, "login_provider_unavailable", "The identity provider cannot be reached right now.",
                byProvider: true, returnTo: rd, cookies: cookies)
        }
        let tx = LoginTransaction(
            state: LoginRandom.token(), nonce: LoginRandom.token(), codeVerifier: LoginRandom.token(), returnURL: rd,
            providerID: provider.id, createdAt: now)
        guard let sealed = sealer.seal(tx.encoded(), purpose: .login) else {
            return failure(
                500, "login_internal", "Gatehouse could not start the sign-in.", returnTo: rd, cookies: cookies)
        }
        // Parallel logins (tabs) each get their own cookie; beyond the cap the oldest go, expired ones always.
        var live: [(name: String, createdAt: Int64)] = []
        for c in request.cookies where c.name.hasPrefix(names.transactionPrefix) {
            if live.count < 16, let plain = sealer.open(c.value, purpose: .login),
                let old = LoginTransaction.decode(plain), old.isLive(now: now)
            {
                live.append((c.name, old.createdAt))
            } else {
                cookies.append(deleteCookie(c.name))
            }
        }
        live.sort { $0.createdAt < $1.createdAt }
        for old in live.prefix(max(0, live.count - (SessionCookieNames.maxTransactions - 1))) {
            cookies.append(deleteCookie(old.name))
        }
        cookies.append(
            Cookies.setCookie(
                name: names.transactionPrefix + LoginRandom.transactionID(for: tx.state), value: sealed,
                maxAge: LoginTransaction.lifetime,
                secure: session.secure, sameSite: transactionSameSite, domain: session.domain))
        var query: [(String, String)] = [
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI(request)),
            ("scope", provider.scopes.joined(separator: " ")), ("state", tx.state), ("nonce", tx.nonce),
            ("code_challenge", LoginRandom.codeChallenge(for: tx.codeVerifier)), ("code_challenge_method", "S256"),
        ]
        for (k, v) in provider.extraAuthParams.sorted(by: { $0.key < $1.key }) { query.append((k, v)) }
        let separator = meta.authorizationEndpoint.contains("?") ? "&" : "?"
        return redirect(meta.authorizationEndpoint + separator + FormEncoding.encode(query), cookies: cookies)
    }

    /// `/oauth2/callback?code=...&state=...`
    func callback(_ request: Request, now: Int64) async -> Answer {
        let fails = failureCount(request.cookies)
        var cookies = [
            Cookies.setCookie(
                name: names.failureCounter, value: String(min(fails + 1, 99)), maxAge: 300, secure: session.secure,
                sameSite: transactionSameSite, domain: session.domain)
        ]
        let loopHint = fails + 1 >= Self.loopThreshold ? LoginFailure.loopHint : nil
        guard let params = FormEncoding.decode(Substring(request.query ?? "")) else {
            return failure(400, "login_bad_request", "The sign-in response is malformed.", cookies: cookies)
        }
        let state: String?
        let code: String?
        let error: String?
        let issuerParameter: String?
        do {
            state = try FormEncoding.single("state", in: params).get()
            code = try FormEncoding.single("code", in: params).get()
            error = try FormEncoding.single("error", in: params).get()
            issuerParameter = try FormEncoding.single("iss", in: params).get()
        } catch {
            return failure(
                400, "login_bad_request", "The sign-in response repeats the parameter \(error.name).", cookies: cookies)
        }
        // The transaction this callback belongs to (its cookie is removed whatever happens next).
        var tx: LoginTransaction?
        var txCookieFound = false
        if let state, !state.isEmpty, state.utf8.count <= 512 {
            let name = names.transactionPrefix + LoginRandom.transactionID(for: state)
            let matching = request.cookies.filter { $0.name == name }
            // Two cookies of one name: one was planted (cookie tossing from a sibling domain); trust neither.
            if matching.count == 1, let c = matching.first {
                txCookieFound = true
                cookies.append(deleteCookie(name))
                if let plain = sealer.open(c.value, purpose: .login), let t = LoginTransaction.decode(plain),
                    LoginRandom.constantTimeEqual(t.state, state), t.isLive(now: now)
                {
                    tx = t
                }
            }
        }
        let returnTo = tx?.returnURL ?? "/"
        if let error {
            let description = OIDCClient.sanitize(error)
            let status = error == "access_denied" ? 403 : 400
            return failure(
                status, "login_provider_error", "The identity provider did not sign you in (\(description)).",
                byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        guard let state, let code, !code.isEmpty else {
            return failure(
                400, "login_bad_request", "The sign-in response lacks its code or state.", returnTo: returnTo,
                cookies: cookies)
        }
        guard txCookieFound else {
            return failure(
                400, "login_state_unknown",
                "This sign-in was not started in this browser, or it took longer than 10 minutes.",
                hint: loopHint ?? LoginFailure.cookieHint, cookies: cookies)
        }
        guard let tx else {
            return failure(
                400, "login_state_mismatch", "The sign-in response does not match a sign-in in progress.",
                hint: loopHint, cookies: cookies)
        }
        guard let provider = providersByID[tx.providerID] else {
            return failure(
                400, "login_state_mismatch", "The sign-in names an unknown identity provider.", cookies: cookies)
        }
        // RFC 9207 / RFC 9700 §4.4: a response naming another issuer than the one this login went to is a
        // mix-up attempt.
        if let issuerParameter, issuerParameter != provider.issuer {
            return failure(
                400, "login_issuer_mismatch", "The sign-in response comes from another identity provider.",
                returnTo: returnTo, cookies: cookies)
        }
        // Consumed once: a replayed callback URL fails even with the old cookie.
        let fresh = consumed.withLockedValue { used -> Bool in
            if let until = used[state], until > now { return false }
            if used.count >= Self.maxConsumed { used = used.filter { $0.value > now } }
            // Full of live entries (a flood of minted logins): the transaction cookie is deleted and the code is
            // single-use at the provider, which still stops a replay.
            if used.count < Self.maxConsumed { used[state] = tx.createdAt + LoginTransaction.lifetime }
            return true
        }
        guard fresh else {
            return failure(
                400, "login_replayed", "This sign-in response was already used.", returnTo: returnTo, cookies: cookies)
        }
        let tokens: OIDCClient.TokenResponse
        do {
            tokens = try await oidc.exchangeCode(
                code, verifier: tx.codeVerifier, redirectURI: redirectURI(request), provider: provider)
        } catch OIDCClient.Failure.refused(let why) {
            logger.warning("login: code exchange refused", metadata: ["provider": "\(provider.id)", "error": "\(why)"])
            return failure(
                400, "login_code_refused", "The identity provider refused the sign-in code (\(why)).", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        } catch {
            logger.warning(
                "login: code exchange failed", metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return failure(
                502, "login_provider_unavailable", "The identity provider cannot be reached right now.",
                byProvider: true, returnTo: returnTo, cookies: cookies)
        }
        guard let idToken = tokens.idToken else {
            return failure(
                502, "login_id_token_invalid", "The identity provider sent no ID token.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        var claims: [String: JSONValue]
        switch await validateIDToken(idToken, accessToken: tokens.accessToken, nonce: tx.nonce, provider: provider) {
        case .valid(let c): claims = c
        case .unknownKeyID, .rejected:
            logger.warning("login: ID token did not validate", metadata: ["provider": "\(provider.id)"])
            return failure(
                502, "login_id_token_invalid", "The identity provider's ID token did not validate.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        if oidc.cachedMetadata(for: provider.id)?.userinfoEndpoint != nil {
            do {
                let info = try await oidc.userinfo(accessToken: tokens.accessToken, provider: provider)
                guard info["sub"] == claims["sub"] else {
                    return failure(
                        502, "login_userinfo_mismatch", "The identity provider's user info names another user.",
                        byProvider: true, returnTo: returnTo, cookies: cookies)
                }
                for (k, v) in info where claims[k] == nil { claims[k] = v }
            } catch {
                logger.warning(
                    "login: userinfo failed; using the ID token's claims",
                    metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            }
        }
        guard provider.claims.mappedUser(in: .object(claims)) != nil else {
            logger.warning("login: the provider named no user (claims.user)", metadata: ["provider": "\(provider.id)"])
            return failure(
                502, "login_no_subject", "The identity provider named no user for this sign-in.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        let atExpiry = now + max(Self.minimumTokenLifetime, tokens.expiresIn ?? 300)
        var record = SessionRecord(
            providerID: provider.id, sessionID: LoginRandom.token(bytes: 12),
            claims: SessionRecord.reduce(claims, keeping: neededClaims),
            createdAt: now, expiresAt: now + session.lifetime.nanoseconds / 1_000_000_000,
            accessTokenExpiresAt: atExpiry,
            accessToken: keepAccessToken ? tokens.accessToken : nil,
            refreshToken: session.refresh ? tokens.refreshToken : nil,
            idToken: oidc.cachedMetadata(for: provider.id)?.endSessionEndpoint != nil ? idToken : nil)
        var sealed = sealer.seal(record.encoded(), purpose: .session)
        if let s = sealed, names.split(s) == nil, record.idToken != nil {
            record.idToken = nil  // sign-out then goes without id_token_hint rather than failing the login
            sealed = sealer.seal(record.encoded(), purpose: .session)
        }
        guard let sealed,
            let sessionCookies = sessionCookies(sealed: sealed, record: record, request: request.cookies, now: now)
        else {
            return failure(
                500, "login_session_too_large", "The session is too large for cookies.", returnTo: returnTo,
                cookies: cookies)
        }
        let cookieBytes = request.cookies.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 3 }
        if cookieBytes + sealed.utf8.count > 8192 {
            logger.warning(
                "large Cookie header for this host", metadata: ["bytes": "\(cookieBytes + sealed.utf8.count)"])
        }
        cookies[0] = deleteCookie(names.failureCounter)
        logger.info(
            "login succeeded",
            metadata: [
                "provider": "\(provider.id)", "user": "\(record.identity(mapping: provider.claims).user ?? "-")",
                "session": "\(record.sessionID.prefix(8))",
            ])
        if session.sameSite == .strict {
            // This response ends a navigation that started on the provider's site, so a 302 onwards would still
            // be cross-site and the browser would leave the new Strict cookie off it (a login loop). A page of our
            // own that moves on starts a same-site navigation, which carries it.
            let escaped = LoginPage.escape(returnTo)
            let page = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=\(escaped)">
                <title>Signed in</title></head><body><p>Signed in. <a href="\(escaped)">Continue</a></p></body></html>

                """
            return Answer(
                result: .success(
                    HTTPErrorResponse(
                        status: 200, headers: [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")],
                        body: page,
                        closeConnection: false, contentType: "text/html; charset=utf-8")),
                cookies: cookies + sessionCookies)
        }
        return redirect(returnTo, cookies: cookies + sessionCookies)
    }

    /// `/oauth2/sign_out?rd=URL`: clears every Gatehouse cookie, then RP-initiated logout at the provider when
    /// it supports it, else the validated return URL.
    func signOut(_ request: Request, record: SessionRecord?) async -> Answer {
        let params = FormEncoding.decode(Substring(request.query ?? "")) ?? []
        let rdParam = (try? FormEncoding.single("rd", in: params).get()) ?? nil
        let rd = validatedReturn(rdParam ?? login.postLogoutRedirectURL, rawHost: request.rawHost)
        let cookies = clearingCookies(request: request.cookies, all: true)
        guard let record, let provider = providersByID[record.providerID], let clientID = provider.clientID,
            let meta = try? await oidc.metadata(for: provider), let endSession = meta.endSessionEndpoint
        else { return redirect(rd, cookies: cookies) }
        let absolute = rd.hasPrefix("/") ? "\(request.scheme)://\(request.rawHost ?? "localhost")\(rd)" : rd
        var query: [(String, String)] = [("client_id", clientID), ("post_logout_redirect_uri", absolute)]
        if let idToken = record.idToken { query.insert(("id_token_hint", idToken), at: 0) }
        let separator = endSession.contains("?") ? "&" : "?"
        return redirect(endSession + separator + FormEncoding.encode(query), cookies: cookies)
    }

    func validateIDToken(_ idToken: String, accessToken: String?, nonce: String?, provider: ProviderConfig) async
        -> IDTokenValidator.Outcome
    {
        let validator = IDTokenValidator()
        var outcome = validator.validate(
            idToken: idToken, accessToken: accessToken, nonce: nonce, provider: provider,
            keys: keyStore.keys(for: provider.id), now: Self.epochNow())
        if case .unknownKeyID = outcome, await keyStore.refreshForUnknownKeyID(providerID: provider.id) {
            outcome = validator.validate(
                idToken: idToken, accessToken: accessToken, nonce: nonce, provider: provider,
                keys: keyStore.keys(for: provider.id), now: Self.epochNow())
        }
        return outcome
    }

    /// The clock of session times (wall clock plus `clockOffset`).
    func now() -> Int64 { Self.epochNow() &+ clockOffset.load(ordering: .relaxed) }

    static func epochNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

/// Sessions already opened on this event loop, keyed by the exact sealed cookie text: a repeated cookie costs
/// a hash and a lookup instead of AES-GCM and JSON (about 25 us). Only text that opened (authenticated) is
/// ever inserted, so the cache cannot be fed a forged session; time checks still run on every request.
/// Confined to its loop (not Sendable); bounded.
final class OpenedSessionCache {
    let capacity: Int
    private var entries: [String: SessionRecord] = [:]

    init(capacity: Int = 10_000) { self.capacity = capacity }

    func lookup(_ sealed: String) -> SessionRecord? { entries[sealed] }

    func insert(_ sealed: String, _ record: SessionRecord) {
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[sealed] = record
    }
}
