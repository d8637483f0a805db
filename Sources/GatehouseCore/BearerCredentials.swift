/// Extracts a bearer token from a request (RFC 6750 §2.1). Only the `Authorization` header carries tokens:
/// a token in the query string is refused, two Authorization headers are refused, and the token must be one
/// b64token of at most `TokenLimits.maxTokenBytes` bytes.
public enum BearerCredentials {
    public static let maxTokenBytes = 16 * 1024

    /// nil = no credentials at all.
    public static func extract(
        headers: HeaderFields, query: String?
    ) throws(GatehouseError) -> String? {
        var value: String?
        for (name, v) in headers where name.utf8.count == 13 && HeaderRules.normalise(name) == "authorization" {
            guard value == nil else { throw .invalidAuthRequest("more than one Authorization header") }
            value = v
        }
        if let query, queryHasAccessToken(query) {
            throw .invalidAuthRequest("tokens are not accepted in the query string")
        }
        guard let value else { return nil }
        guard value.utf8.count <= maxTokenBytes + 16 else { throw .invalidToken("token too large") }
        // Byte-level parse of `Bearer <token>` (RFC 6750 §2.1): scheme case-insensitive, then spaces, then one
        // b64token, then nothing but optional whitespace.
        enum Parsed { case token(String), otherScheme, malformed, tooLarge }
        var copy = value
        let parsed: Parsed = copy.withUTF8 { buf in
            var i = 0
            while i < buf.count, buf[i] == 0x20 || buf[i] == 0x09 { i += 1 }
            let scheme: [UInt8] = Array("bearer".utf8)
            guard buf.count - i > scheme.count else { return .otherScheme }
            for (k, c) in scheme.enumerated() {
                let b = buf[i + k]
                if (b >= 0x41 && b <= 0x5A ? b + 32 : b) != c { return .otherScheme }
            }
            i += scheme.count
            guard buf[i] == 0x20 else { return .otherScheme }  // "Bearerx ..." is another scheme
            while i < buf.count, buf[i] == 0x20 { i += 1 }
            let start = i
            while i < buf.count, isB64TokenByte(buf[i]) { i += 1 }
            let end = i
            while i < buf.count, buf[i] == 0x20 || buf[i] == 0x09 { i += 1 }
            guard end > start, i == buf.count else { return .malformed }
            guard end - start <= maxTokenBytes else { return .tooLarge }
            return .token(String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self))
        }
        switch parsed {
        case .token(let token): return token
        // Another scheme (Basic, ...) is not a credential for a bearer route: 401 with the Bearer challenge.
        case .otherScheme: return nil
        case .malformed: throw .invalidToken("malformed bearer token")
        case .tooLarge: throw .invalidToken("token too large")
        }
    }

    static func isB64TokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    static func queryHasAccessToken(_ query: String) -> Bool {
        for pair in query.split(separator: "&") {
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if name.lowercased() == "access_token" || name.lowercased() == "access%5ftoken" { return true }
        }
        return false
    }
}

extension HeaderRules {
    /// The identity headers of a route: the global map with the route's entries added or overriding by
    /// normalised name.
    public static func effectiveIdentityHeaders(global: [IdentityHeader], route: [IdentityHeader]) -> [IdentityHeader] {
        var result = global
        for header in route {
            let n = normalise(header.name)
            if let i = result.firstIndex(where: { normalise($0.name) == n }) {
                result[i] = header
            } else {
                result.append(header)
            }
        }
        return result
    }

    /// Identity header values for the upstream: arrays joined with `,`. A header whose value would contain a
    /// control character (CR, LF, NUL, ...) is dropped and reported in `dropped`; an absent claim means no
    /// header (the client's copy was already stripped).
    public static func identityHeaderFields(
        _ headers: [IdentityHeader], identity: Identity
    ) -> (fields: [(String, String)], dropped: [String]) {
        var fields: [(String, String)] = []
        var dropped: [String] = []
        for header in headers {
            let values = identity.values(for: header.claim)
            guard !values.isEmpty else { continue }
            let joined = values.joined(separator: ",")
            if joined.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                dropped.append(header.name)
                continue
            }
            fields.append((header.name, joined))
        }
        return (fields, dropped)
    }
}
