/// Extracts a bearer token from a request (RFC 6750 §2.1). Only the `Authorization` header carries tokens:
/// a token in the query string is refused, two Authorization headers are refused, and the token must be one
/// b64token of at most `maxTokenBytes` bytes (its alphabet checked by the authenticator, see `isWellFormed`).
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
        var copy = value
        let parsed: Result<String?, GatehouseError> = copy.withUTF8 { buf in
            do throws(GatehouseError) {
                return .success(try token(inValue: buf))
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }

    /// The token of one `Authorization` value (its bytes): nil for another scheme. The HTTP/1 edge calls this on
    /// the head's bytes, so the value is never copied into a String of its own.
    public static func token(inValue buf: UnsafeBufferPointer<UInt8>) throws(GatehouseError) -> String? {
        guard buf.count <= maxTokenBytes + 16 else { throw .invalidToken("token too large") }
        // Byte-level parse of `Bearer <token>` (RFC 6750 §2.1): scheme case-insensitive, then spaces, then one
        // b64token, then nothing but optional whitespace. No allocation besides the token itself.
        var i = 0
        while i < buf.count, buf[i] == 0x20 || buf[i] == 0x09 { i += 1 }
        // "bearer" followed by a space, compared case-insensitively (| 0x20 folds ASCII letters only; the
        // space is compared exactly).
        guard buf.count - i > 6,
            buf[i] | 0x20 == UInt8(ascii: "b"), buf[i + 1] | 0x20 == UInt8(ascii: "e"),
            buf[i + 2] | 0x20 == UInt8(ascii: "a"), buf[i + 3] | 0x20 == UInt8(ascii: "r"),
            buf[i + 4] | 0x20 == UInt8(ascii: "e"), buf[i + 5] | 0x20 == UInt8(ascii: "r"),
            buf[i + 6] == 0x20  // "Bearerx ..." is another scheme
        else {
            // Another scheme (Basic, ...) is not a credential for a bearer route: 401 with the Bearer challenge.
            return nil
        }
        i += 6
        while i < buf.count, buf[i] == 0x20 { i += 1 }
        let start = i
        // The token runs to the next space or tab. Its alphabet is checked by `isWellFormed` only when the
        // token is not a cached verified one: a token byte-identical to a verified token is well-formed.
        while i < buf.count, buf[i] != 0x20, buf[i] != 0x09 { i += 1 }
        let end = i
        while i < buf.count, buf[i] == 0x20 || buf[i] == 0x09 { i += 1 }
        guard end > start, i == buf.count else { throw .invalidToken("malformed bearer token") }
        guard end - start <= maxTokenBytes else { throw .invalidToken("token too large") }
        return String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self)
    }

    public static func isWellFormed(_ token: String) -> Bool {
        var token = token
        return token.withUTF8 { buf in
            guard !buf.isEmpty else { return false }
            for b in buf where !isB64TokenByte(b) { return false }
            return true
        }
    }

    /// b64token bytes (RFC 6750 §2.1): ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" / "=", as two 64-bit
    /// masks (one test per byte on the hot path instead of a chain of range comparisons).
    public static func isB64TokenByte(_ b: UInt8) -> Bool {
        let low: UInt64 = 0x23ff_e800_0000_0000  // + - . / 0-9 =
        let high: UInt64 = 0x47ff_fffe_87ff_fffe  // A-Z _ a-z ~
        if b < 64 { return low >> UInt64(b) & 1 == 1 }
        if b < 128 { return high >> UInt64(b - 64) & 1 == 1 }
        return false
    }

    /// True when a parameter of the query is named `access_token` (case-insensitively, `_` possibly written
    /// `%5F`). Scans the bytes in place: no split, no lowercased copies.
    public static func queryHasAccessToken(_ query: String) -> Bool {
        var start = query.utf8.startIndex
        let utf8 = query.utf8
        while start <= utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
            let nameEnd = utf8[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
            let name = utf8[start..<nameEnd]
            if RequestValidation.equalsLowercase(bytes: name, "access_token")
                || RequestValidation.equalsLowercase(bytes: name, "access%5ftoken")
            {
                return true
            }
            if end == utf8.endIndex { break }
            start = utf8.index(after: end)
        }
        return false
    }
}
