import GatehouseAuth
import GatehouseCore
import GatehouseHTTP
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// What to authenticate and how a missing credential is answered.
struct AuthRequest {
    var auth: AuthMode
    var providers: [String]?
    /// The target a login returns to.
    var requestTarget: String
    var method: String
    /// The request's query (a token there is refused).
    var query: String?
    /// Forward-auth and `/oauth2/userinfo`: a missing session is 401, never a login redirect.
    var forwardAuth: Bool
}

struct AuthFailure: Error {
    var error: GatehouseError
    var cookies: [String] = []
}

/// What authentication decided without waiting, or what it must wait for (the runner waits, then asks again).
enum AuthStep {
    case decided(Result<AuthResult, AuthFailure>)
    /// A token with an unknown `kid`: the provider's key set is refreshed (single flight), then the token is
    /// checked once more.
    case refreshKeys(providerID: String)
    /// A session whose access token expired: refreshed (single flight) before the request goes on.
    case refreshSession(BrowserLogin, SessionRecord, cookies: [(name: String, value: String)])
}

/// Authenticate: a bearer JWT (jwt and session routes), else the session cookie (session routes). A cached
/// token, a signature check or a valid session cookie decide at once; only a key or session refresh waits.
enum AuthenticatePhase {
    static func step(
        _ request: AuthRequest, head: RequestHead, runtime: ProxyRuntime, loop: EventLoop, afterRefresh: Bool
    ) -> AuthStep {
        if request.auth == .none { return .decided(.success(AuthResult())) }
        let token: String?
        do {
            token = try bearerToken(in: head, query: request.query)
        } catch {
            return .decided(.failure(AuthFailure(error: error)))
        }
        guard let token else {
            guard request.auth == .session, let login = runtime.browserLogin else {
                return .decided(.failure(AuthFailure(error: .noCredentials)))
            }
            return sessionStep(request, head: head, login: login, runtime: runtime, loop: loop)
        }
        guard let authenticator = runtime.authenticator, let cache = runtime.tokenCaches.value(for: loop) else {
            return .decided(.failure(AuthFailure(error: .keysUnavailable)))
        }
        switch authenticator.authenticate(token: token, allowed: request.providers, cache: cache, now: epochSeconds()) {
        case .verified(let verified, _):
            return .decided(.success(AuthResult(identity: verified, bearerToken: token)))
        case .rejected(let why):
            return .decided(.failure(AuthFailure(error: .invalidToken(why))))
        case .keysUnavailable:
            return .decided(.failure(AuthFailure(error: .keysUnavailable)))
        case .unknownKeyID(let providerID):
            if afterRefresh { return .decided(.failure(AuthFailure(error: .invalidToken("unknown key id")))) }
            return .refreshKeys(providerID: providerID)
        }
    }

    /// `BearerCredentials.extract` over the head's bytes: the one `Authorization` value is parsed where it
    /// lies (no field list, no copy of the value).
    static func bearerToken(in head: RequestHead, query: String?) throws(GatehouseError) -> String? {
        var found: HTTPField?
        let fields = head.fields
        for f in fields where f.nameLength == 13 {
            let isAuthorization = head.withBytes { raw in
                HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]), "authorization")
            }
            guard isAuthorization else { continue }
            guard found == nil else { throw .invalidAuthRequest("more than one Authorization header") }
            found = f
        }
        if let query, BearerCredentials.queryHasAccessToken(query) {
            throw .invalidAuthRequest("tokens are not accepted in the query string")
        }
        guard let field = found else { return nil }
        let parsed: Result<String?, GatehouseError> = head.withBytes { raw in
            let value = UnsafeRawBufferPointer(rebasing: raw[field.valueRange]).assumingMemoryBound(to: UInt8.self)
            do throws(GatehouseError) {
                return .success(try BearerCredentials.token(inValue: value))
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }

    /// `Cookies.parse` over the head's bytes (no String of each `Cookie` header).
    static func requestCookies(_ head: RequestHead) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        head.withBytes { raw in
            for f in head.fields where f.nameLength == 6 {
                guard HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]), "cookie") else {
                    continue
                }
                let value = UnsafeRawBufferPointer(rebasing: raw[f.valueRange]).assumingMemoryBound(to: UInt8.self)
                if Cookies.parse(value: value, into: &pairs) { return }
            }
        }
        return pairs
    }

    /// The outcome of a session refresh, as an authentication result.
    static func refreshed(
        _ outcome: BrowserLogin.RefreshOutcome, record: SessionRecord, request: AuthRequest, head: RequestHead,
        login: BrowserLogin, cookies: [(name: String, value: String)]
    ) -> Result<AuthResult, AuthFailure> {
        switch outcome {
        case .refreshed(let updated, let sealed):
            let setCookies =
                login.sessionCookies(sealed: sealed, record: updated, request: cookies, now: login.now()) ?? []
            return .success(
                AuthResult(
                    identity: updated.identity(mapping: login.mapping(for: updated.providerID)), cookies: setCookies,
                    sessionAccessToken: updated.accessToken))
        case .transient:
            return .success(
                AuthResult(
                    identity: record.identity(mapping: login.mapping(for: record.providerID)),
                    sessionAccessToken: record.accessToken))
        case .ended:
            return .failure(
                AuthFailure(
                    error: loginRequired(request, head: head, login: login),
                    cookies: login.clearingCookies(request: cookies)))
        }
    }

    /// No session: a navigation goes to the login, anything else gets 401 (forward-auth always 401).
    static func loginRequired(_ request: AuthRequest, head: RequestHead, login: BrowserLogin) -> GatehouseError {
        if request.forwardAuth { return .noCredentials }
        return .loginRequired(
            loginURL: login.loginURL(returnTo: request.requestTarget, providers: request.providers),
            navigation: RequestKind.isNavigation(method: request.method, headers: head.stringFields))
    }

    private static func sessionStep(
        _ request: AuthRequest, head: RequestHead, login: BrowserLogin, runtime: ProxyRuntime, loop: EventLoop
    ) -> AuthStep {
        let cookies = requestCookies(head)
        let now = login.now()
        var state = login.sessionState(cookies: cookies, now: now, cache: runtime.sessionCaches.value(for: loop))
        switch state {
        case .valid(let opened):
            if let providers = request.providers, !providers.contains(opened.record.providerID) {
                state = .none(hadCookie: false)
            }
        case .refreshDue(let record):
            // A session from a provider this route does not accept is no session here (a login with the
            // route's provider replaces it).
            if let providers = request.providers, !providers.contains(record.providerID) {
                state = .none(hadCookie: false)
            }
        case .none: break
        }
        switch state {
        case .valid(let opened):
            return .decided(
                .success(AuthResult(identity: opened.identity, sessionAccessToken: opened.record.accessToken)))
        case .none(let hadCookie):
            let error = loginRequired(request, head: head, login: login)
            return .decided(
                .failure(AuthFailure(error: error, cookies: hadCookie ? login.clearingCookies(request: cookies) : [])))
        case .refreshDue(let record):
            return .refreshSession(login, record, cookies: cookies)
        }
    }
}

func epochSeconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}
