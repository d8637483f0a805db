/// JSON text output (the parser is `JSONValue.parse`).
public enum JSONText {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"  // safe to embed anywhere, even in HTML
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JSONValue {
    /// Compact JSON text (object keys sorted, so equal values serialise equally).
    public var serialized: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
            return "\(n)"
        case .string(let s): return JSONText.quote(s)
        case .array(let items): return "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case .object(let members):
            return "{"
                + members.keys.sorted().map { JSONText.quote($0) + ":" + (members[$0] ?? .null).serialized }
                .joined(separator: ",") + "}"
        }
    }
}

/// `application/x-www-form-urlencoded` (query strings, token requests).
public enum FormEncoding {
    /// Decodes `a=1&b=2`; `+` is a space; malformed escapes make the whole query invalid (nil).
    public static func decode(_ query: Substring) -> [(name: String, value: String)]? {
        var out: [(name: String, value: String)] = []
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let eq = part.firstIndex(of: "=")
            guard let name = unescape(eq.map { part[..<$0] } ?? part),
                let value = unescape(eq.map { part[part.index(after: $0)...] } ?? "")
            else { return nil }
            out.append((name, value))
            if out.count > 100 { return nil }
        }
        return out
    }

    /// The single value of `name`: nil when absent; `.failure` when repeated (a classic parameter-pollution
    /// trick on `state` and `code`).
    public static func single(_ name: String, in pairs: [(name: String, value: String)]) -> Result<
        String?, RepeatedParameter
    > {
        let values = pairs.filter { $0.name == name }
        if values.count > 1 { return .failure(RepeatedParameter(name: name)) }
        return .success(values.first?.value)
    }

    public struct RepeatedParameter: Error, Equatable { public let name: String }

    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func escape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if CanonicalTarget.isUnreserved(b) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func unescape(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            switch b {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let h = it.next(), let l = it.next(), let hv = CanonicalTarget.hexValue(h),
                    let lv = CanonicalTarget.hexValue(l)
                else { return nil }
                bytes.append(hv << 4 | lv)
            default: bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// Whether an unauthenticated request on a session route is a top-level browser navigation (redirect it to
/// the login) or a script/API call (401 with the login URL: a `fetch` cannot follow a cross-origin 302 to a
/// login page, which is what SPAs behind oauth2-proxy keep tripping over).
public enum RequestKind {
    public static func isNavigation(method: String, headers: HeaderFields) -> Bool {
        guard method == "GET" || method == "HEAD" else { return false }
        var mode: String?
        var accept: String?
        var requestedWith = false
        for (name, value) in headers {
            switch name.lowercased() {
            case "sec-fetch-mode": mode = value.lowercased()
            case "accept": accept = (accept.map { $0 + "," } ?? "") + value.lowercased()
            case "x-requested-with": requestedWith = true
            default: break
            }
        }
        if let mode { return mode == "navigate" }
        if requestedWith { return false }
        return accept?.contains("text/html") ?? false
    }
}

/// Why a browser login failed, for the error page and the log.
public struct LoginFailure: Sendable, Equatable {
    public var status: Int
    /// Stable log reason (`login_state_mismatch`, `login_provider_error`, ...).
    public var reason: String
    public var message: String
    /// Shown when the failure looks like a cookie problem or a loop.
    public var hint: String?
    /// Where "Try again" points (a validated `/oauth2/start?...` URL).
    public var retryURL: String
    public var byProvider: Bool

    public init(
        status: Int, reason: String, message: String, hint: String? = nil, retryURL: String, byProvider: Bool = false
    ) {
        self.status = status
        self.reason = reason
        self.message = message
        self.hint = hint
        self.retryURL = retryURL
        self.byProvider = byProvider
    }

    public static let cookieHint =
        "Your browser did not send back the cookie Gatehouse set when the sign-in started. This usually means the cookie settings do not fit this site: a Secure cookie on a plain http:// address, SameSite=strict, or a cookie Domain that does not cover this host. Ask the administrator to check session.secure, session.same_site and session.domain."
    public static let loopHint =
        "Signing in failed several times in a row in this browser, so Gatehouse stopped redirecting to avoid a login loop. "
        + cookieHint
}

/// The small HTML page for login failures. Everything reflected is escaped.
public enum LoginPage {
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case _ where c.value < 0x20 || c.value == 0x7F: out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    public static func html(for failure: LoginFailure) -> String {
        var body = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Sign-in failed</title>
            <style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}</style>
            </head><body><main>
            <h1>Sign-in failed</h1>
            <p role="alert">\(escape(failure.message))</p>

            """
        if let hint = failure.hint { body += "<p>\(escape(hint))</p>\n" }
        body += "<p><a href=\"\(escape(failure.retryURL))\">Try signing in again</a></p>\n"
        body += "</main></body></html>\n"
        return body
    }
}
