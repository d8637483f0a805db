/// Extracts a bearer token from a request (RFC 6750 §2.1). Only the `Authorization` header carries tokens:
/// a token in the query string is refused, two Authorization headers are refused, and the token must be one
/// b64token of at most `TokenLimits.maxTokenBytes` bytes.
public enum BearerCredentials {
    public static let maxTokenBytes = 16 * 1024

    /// nil = no credentials at all.
    public static func extract(
        headers: some Sequence<(name: String, value: String)>, query: String?
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
        let trimmed = value.trimmingSpaces()
        // Another scheme (Basic, ...) is not a credential for a bearer route: 401 with the Bearer challenge.
        guard let space = trimmed.firstIndex(of: " "),
            trimmed[..<space].lowercased() == "bearer"
        else { return nil }
        let token = trimmed[trimmed.index(after: space)...].trimmingSpaces()
        guard !token.isEmpty, token.utf8.allSatisfy(isB64TokenByte) else {
            throw .invalidToken("malformed bearer token")
        }
        guard token.utf8.count <= maxTokenBytes else { throw .invalidToken("token too large") }
        return String(token)
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
