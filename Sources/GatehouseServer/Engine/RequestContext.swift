import GatehouseCore
import GatehouseHTTP
import NIOCore

/// The client connection a request arrived on, as the phases need it (computed once per connection).
struct Peer {
    var address: IPAddress?
    /// The address as text for logs and X-Forwarded-For ("-" when unknown).
    var text: String
    /// Inside `server.trusted_proxies`: its forwarding headers are believed.
    var trusted: Bool
    /// `http` or `https`: how the client reached the listener.
    var scheme: String
}

/// Everything known about one request as it moves through the phases: what the client sent (the head as
/// byte ranges, its canonical view), what the phases decided (route, identity, permit, cookies to set), and the
/// access-log fields. One per request; the connection edge owns it until `finish`.
final class RequestContext {
    let start: NIODeadline
    var requestID: String
    let head: RequestHead
    let method: String
    let isHEAD: Bool
    /// 0 or 1 for HTTP/1.x; the HTTP/2 edge answers in frames.
    let versionMinor: Int
    /// Set by sanitize.
    var outcome: RequestValidation.Outcome?
    var permit: Permit?
    var auth = AuthResult()
    /// The request body as the client frames it (set by sanitize).
    var framing: BodyFraming = .none
    var bodyLimit: Int64 = .max
    var wantsClose: Bool
    /// A WebSocket upgrade on a `websocket: true` route.
    var upgrade = false
    /// When the identity that opened the exchange expires (token `exp`, session end): a tunnel closes then.
    var identityExpiry: Int64?
    var log = LogFields()
    /// Whether the runner is done with the request (answered, or handed to the upstream).
    var decided = false

    struct LogFields {
        var path = "-"
        var routeID = "-"
        var upstream = "-"
        var status = 0
        var bytes: Int64 = 0
        var error: String?
        /// A constant phrase saying why a request was denied (never request data).
        var detail: String?
        var user: String?
    }

    init(start: NIODeadline, requestID: String, head: RequestHead, wantsClose: Bool) {
        self.start = start
        self.requestID = requestID
        self.head = head
        let method = head.method
        self.method = method
        self.isHEAD = method == "HEAD"
        self.versionMinor = head.versionMinor
        self.wantsClose = wantsClose
    }

    var hasBody: Bool { framing != .none }

    /// A local answer's status, error reason and (for the errors that carry one) constant detail, for the log.
    func record(_ answer: LocalAnswer) {
        log.status = answer.response.status
        guard let error = answer.error else { return }
        log.error = error.reason
        switch error {
        case .invalidToken(let why), .invalidAuthRequest(let why), .forbidden(let why, _): log.detail = why
        default: break
        }
    }

    /// The request's access-log line, written once when the exchange ends.
    func accessLogEntry(client: String) -> AccessLogEntry {
        AccessLogEntry(
            requestID: requestID, client: client, method: method.isEmpty ? "-" : method, path: log.path,
            route: log.routeID, status: log.status, bytes: log.bytes, upstream: log.upstream,
            durationMicros: (NIODeadline.now() - start).nanoseconds / 1000, error: log.error, detail: log.detail,
            user: log.user)
    }
}

/// What authentication established: the identity (nil on `auth: none`), Set-Cookie values for the response
/// (a refreshed session) and the session's access token (for `pass_access_token`).
struct AuthResult {
    var identity: Identity?
    var cookies: [String] = []
    var sessionAccessToken: String?
    var bearerToken: String?
}

/// A response Gatehouse writes itself: an error through the one mapping, a redirect, an endpoint's answer.
struct LocalAnswer {
    var response: HTTPErrorResponse
    var cookies: [String]
    /// The error it answers (its reason and detail go to the access log).
    var error: GatehouseError?
    /// Close the connection after it even if the request could be read to its end.
    var forceClose: Bool

    static func error(_ error: GatehouseError, cookies: [String] = [], forceClose: Bool = false) -> LocalAnswer {
        LocalAnswer(response: .make(for: error), cookies: cookies, error: error, forceClose: forceClose)
    }

    static func response(_ response: HTTPErrorResponse, cookies: [String] = []) -> LocalAnswer {
        LocalAnswer(response: response, cookies: cookies, error: nil, forceClose: false)
    }
}

/// A phase's verdict: go on with a value, or answer the request now.
enum Verdict<Value> {
    case proceed(Value)
    case respond(LocalAnswer)
}

extension RequestHead {
    /// The fields named `lower`, as strings (for the pure rules that take `HeaderFields`).
    func stringFields(named lower: StaticString) -> HeaderFields {
        withBytes { raw in
            var out: HeaderFields = []
            for f in fields where Int(f.nameLength) == lower.utf8CodeUnitCount {
                if HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]), lower) {
                    out.append((name: string(f.nameRange), value: string(f.valueRange)))
                }
            }
            return out
        }
    }
}
