/// The one error family of the proxy. Each error carries where it came from and a stable short reason for logs
/// and metrics; `HTTPErrorResponse.make(for:)` is the only place that turns an error into an HTTP response.
public enum GatehouseError: Error, Sendable, Equatable {
    // client
    case badRequest(String)
    case expectationFailed
    /// The client stopped sending its request body.
    case requestTimeout
    case headerTooLarge
    /// More request header fields than `limits.max_header_count`.
    case tooManyHeaderFields(limit: Int)
    case bodyTooLarge(limit: Int64)
    case notFound
    case methodNotAllowed(allowed: [String])
    case encodedSlashNotAllowed
    /// A path a backend decoding twice would read as another one (`DoubleEncoding`).
    case doubleEncodingNotAllowed
    case authNotSupported(AuthMode)
    /// No credentials on a protected route (RFC 6750 §3.1: no error attribute).
    case noCredentials
    /// Credentials present but not acceptable (bad signature, expired, wrong audience, ...).
    case invalidToken(String)
    /// A malformed authentication request (two Authorization headers, token in the query string, ...).
    case invalidAuthRequest(String)
    /// Authenticated but not allowed by the route's rules.
    case forbidden(reason: String, insufficientScope: Bool)
    /// The provider's keys are not available yet (never fetched).
    case keysUnavailable
    /// No (valid) session on a session route: a navigation is sent to `loginURL`, anything else gets 401 JSON.
    case loginRequired(loginURL: String, navigation: Bool)
    /// The browser login failed; answered with the HTML error page.
    case loginFailed(LoginFailure)
    // upstream
    case upstreamConnectFailed(String)
    case upstreamConnectTimeout
    case upstreamResponseTimeout
    case upstreamProtocolError(String)
    case upstreamClosed
    /// Every connection to the upstream busy (`server.upstream.max_connections_per_loop`) for
    /// `server.upstream.queue_timeout`, or too many requests waiting.
    case upstreamBusy
    // internal
    case shuttingDown
    /// `server.limits.max_connections` (or `max_connections_per_client` when `perClient`) connections open.
    case tooManyConnections(perClient: Bool)

    public enum Source: String, Sendable {
        case client
        case upstream
        case identityProvider = "identity_provider"
        case config
        case `internal`
    }

    public var source: Source {
        switch self {
        case .badRequest, .expectationFailed, .requestTimeout, .headerTooLarge, .tooManyHeaderFields, .bodyTooLarge,
            .notFound,
            .methodNotAllowed, .encodedSlashNotAllowed, .doubleEncodingNotAllowed,
            .noCredentials, .invalidToken, .invalidAuthRequest, .forbidden, .loginRequired:
            return .client
        case .loginFailed(let failure): return failure.byProvider ? .identityProvider : .client
        case .keysUnavailable: return .identityProvider
        case .authNotSupported: return .config
        case .upstreamConnectFailed, .upstreamConnectTimeout, .upstreamResponseTimeout, .upstreamProtocolError,
            .upstreamClosed, .upstreamBusy:
            return .upstream
        case .shuttingDown: return .internal
        case .tooManyConnections: return .client
        }
    }

    /// Stable, low-cardinality reason for logs and metrics. Never contains request data.
    public var reason: String {
        switch self {
        case .badRequest: return "bad_request"
        case .expectationFailed: return "expectation_failed"
        case .requestTimeout: return "request_body_timeout"
        case .headerTooLarge: return "header_too_large"
        case .tooManyHeaderFields: return "too_many_header_fields"
        case .bodyTooLarge: return "body_too_large"
        case .notFound: return "no_route"
        case .methodNotAllowed: return "method_not_allowed"
        case .encodedSlashNotAllowed: return "encoded_slash"
        case .doubleEncodingNotAllowed: return "double_encoding"
        case .authNotSupported: return "auth_mode_unsupported"
        case .noCredentials: return "no_credentials"
        case .invalidToken: return "invalid_token"
        case .invalidAuthRequest: return "invalid_request"
        case .forbidden: return "forbidden"
        case .keysUnavailable: return "keys_unavailable"
        case .loginRequired: return "login_required"
        case .loginFailed(let failure): return failure.reason
        case .upstreamConnectFailed: return "upstream_connect_failed"
        case .upstreamConnectTimeout: return "upstream_connect_timeout"
        case .upstreamResponseTimeout: return "upstream_timeout"
        case .upstreamProtocolError: return "upstream_protocol_error"
        case .upstreamClosed: return "upstream_closed"
        case .upstreamBusy: return "upstream_busy"
        case .shuttingDown: return "shutting_down"
        case .tooManyConnections(let perClient):
            return perClient ? "too_many_connections_from_client" : "too_many_connections"
        }
    }
}

/// A small error response: status, extra headers and a short plain-text body that states the cause.
public struct HTTPErrorResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: String
    /// Whether the client connection must be closed after this response (framing is no longer trustworthy).
    public var closeConnection: Bool
    public var contentType: String

    public init(
        status: Int, headers: [(String, String)], body: String, closeConnection: Bool,
        contentType: String = "text/plain; charset=utf-8"
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
        self.contentType = contentType
    }

    public static func == (a: HTTPErrorResponse, b: HTTPErrorResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.closeConnection == b.closeConnection
            && a.headers.map { $0.0 + ":" + $0.1 } == b.headers.map { $0.0 + ":" + $0.1 }
    }

    /// `Bearer realm="gatehouse", error="...", error_description="..."` (RFC 6750 §3). The description is one
    /// of Gatehouse's own constant phrases; quotes and backslashes are dropped defensively all the same.
    static func bearerChallenge(error: String, description: String) -> String {
        let safe = String(
            description.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" })
        return "Bearer realm=\"gatehouse\", error=\"\(error)\", error_description=\"\(safe)\""
    }

    /// The single mapping from the error family to HTTP.
    public static func make(for error: GatehouseError) -> HTTPErrorResponse {
        switch error {
        case .badRequest(let why):
            return HTTPErrorResponse(status: 400, headers: [], body: "bad request: \(why)\n", closeConnection: true)
        case .requestTimeout:
            return HTTPErrorResponse(
                status: 408, headers: [], body: "request body not received in time\n", closeConnection: true)
        case .expectationFailed:
            return HTTPErrorResponse(
                status: 417, headers: [], body: "only Expect: 100-continue is supported\n", closeConnection: true)
        case .headerTooLarge:
            return HTTPErrorResponse(
                status: 431, headers: [], body: "request header fields too large\n", closeConnection: true)
        case .tooManyHeaderFields(let limit):
            return HTTPErrorResponse(
                status: 431, headers: [], body: "more than \(limit) request header fields\n", closeConnection: true)
        case .bodyTooLarge(let limit):
            return HTTPErrorResponse(
                status: 413, headers: [], body: "request body larger than \(limit) bytes\n", closeConnection: true)
        case .notFound:
            return HTTPErrorResponse(
                status: 404, headers: [], body: "no route for this request\n", closeConnection: false)
        case .methodNotAllowed(let allowed):
            return HTTPErrorResponse(
                status: 405, headers: [("Allow", allowed.joined(separator: ", "))], body: "method not allowed\n",
                closeConnection: false)
        case .encodedSlashNotAllowed:
            return HTTPErrorResponse(
                status: 400, headers: [], body: "bad request: encoded slash in path\n", closeConnection: false)
        case .doubleEncodingNotAllowed:
            return HTTPErrorResponse(
                status: 400, headers: [], body: "bad request: double-encoded character in path\n",
                closeConnection: false)
        case .authNotSupported(let mode):
            return HTTPErrorResponse(
                status: 500, headers: [], body: "auth mode \(mode.rawValue) is not available in this build\n",
                closeConnection: false)
        case .noCredentials:
            return HTTPErrorResponse(
                status: 401, headers: [("WWW-Authenticate", "Bearer realm=\"gatehouse\"")],
                body: "authentication required\n", closeConnection: false)
        case .invalidToken(let why):
            return HTTPErrorResponse(
                status: 401,
                headers: [("WWW-Authenticate", bearerChallenge(error: "invalid_token", description: why))],
                body: "invalid token: \(why)\n", closeConnection: false)
        case .invalidAuthRequest(let why):
            return HTTPErrorResponse(
                status: 400,
                headers: [("WWW-Authenticate", bearerChallenge(error: "invalid_request", description: why))],
                body: "bad request: \(why)\n", closeConnection: false)
        case .forbidden(let why, let insufficientScope):
            let headers =
                insufficientScope
                ? [("WWW-Authenticate", bearerChallenge(error: "insufficient_scope", description: why))] : []
            return HTTPErrorResponse(status: 403, headers: headers, body: "forbidden: \(why)\n", closeConnection: false)
        case .loginRequired(let url, let navigation):
            if navigation {
                return HTTPErrorResponse(
                    status: 302, headers: [("Location", url), ("Cache-Control", "no-store")],
                    body: "sign-in required: \(url)\n", closeConnection: false)
            }
            return HTTPErrorResponse(
                status: 401,
                headers: [("WWW-Authenticate", "Bearer realm=\"gatehouse\""), ("Cache-Control", "no-store")],
                body: "{\"error\":\"login_required\",\"login_url\":\(JSONText.quote(url))}\n", closeConnection: false,
                contentType: "application/json")
        case .loginFailed(let failure):
            return HTTPErrorResponse(
                status: failure.status, headers: [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")],
                body: LoginPage.html(for: failure),
                closeConnection: false, contentType: "text/html; charset=utf-8")
        case .keysUnavailable:
            return HTTPErrorResponse(
                status: 503, headers: [("Retry-After", "5")], body: "identity provider keys not available yet\n",
                closeConnection: false)
        case .upstreamConnectFailed, .upstreamConnectTimeout:
            return HTTPErrorResponse(status: 502, headers: [], body: "upstream unavailable\n", closeConnection: false)
        case .upstreamProtocolError, .upstreamClosed:
            return HTTPErrorResponse(
                status: 502, headers: [], body: "bad response from upstream\n", closeConnection: false)
        case .upstreamResponseTimeout:
            return HTTPErrorResponse(status: 504, headers: [], body: "upstream timed out\n", closeConnection: false)
        case .upstreamBusy:
            return HTTPErrorResponse(
                status: 503, headers: [("Retry-After", "1")], body: "upstream busy\n", closeConnection: false)
        case .shuttingDown:
            return HTTPErrorResponse(status: 503, headers: [], body: "shutting down\n", closeConnection: true)
        case .tooManyConnections(let perClient):
            return HTTPErrorResponse(
                status: 503, headers: [("Retry-After", "1")],
                body: perClient ? "too many connections from this address\n" : "too many connections\n",
                closeConnection: true)
        }
    }
}
