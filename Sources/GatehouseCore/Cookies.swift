/// Request `Cookie` parsing and `Set-Cookie` building (RFC 6265), for Gatehouse's own cookies.
public enum Cookies {
    /// At most this many cookies are looked at per request: a hostile header with thousands of pairs costs a
    /// bounded amount of work.
    public static let maxPairs = 200

    /// Every `name=value` pair of every `Cookie` header, in order. Quoted values lose their quotes; pairs
    /// without `=` are skipped. Works on UTF-8 bytes (a Cookie header is ASCII; Character-level string
    /// operations showed up in profiles of session routes).
    public static func parse(_ headers: HeaderFields) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in headers where isCookieHeader(name) {
            for part in value.utf8.split(separator: UInt8(ascii: ";")) {
                if pairs.count >= maxPairs { return pairs }
                guard let eq = part.firstIndex(of: UInt8(ascii: "=")) else { continue }
                let n = trim(part[part.startIndex..<eq])
                var v = trim(part[part.index(after: eq)...])
                if v.count >= 2, v.first == UInt8(ascii: "\""), v.last == UInt8(ascii: "\"") {
                    v = v.dropFirst().dropLast()
                }
                guard !n.isEmpty else { continue }
                pairs.append((String(Substring(n)), String(Substring(v))))
            }
        }
        return pairs
    }

    @inline(__always)
    static func isCookieHeader(_ name: String) -> Bool {
        name.utf8.count == 6 && name.utf8.elementsEqual("cookie".utf8) { a, b in a | 0x20 == b }
    }

    static func trim(_ s: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var lo = s.startIndex
        var hi = s.endIndex
        while lo < hi, s[lo] == 0x20 || s[lo] == 0x09 { lo = s.index(after: lo) }
        while hi > lo, s[s.index(before: hi)] == 0x20 || s[s.index(before: hi)] == 0x09 { hi = s.index(before: hi) }
        return s[lo..<hi]
    }

    /// The request's header fields with every cookie for which `isOwn` holds removed from `Cookie` headers
    /// (a `Cookie` header left empty is dropped). Other cookies are passed on byte for byte.
    public static func removing(_ isOwn: (Substring) -> Bool, from headers: HeaderFields) -> HeaderFields {
        var out: HeaderFields = []
        out.reserveCapacity(headers.count)
        for field in headers {
            guard isCookieHeader(field.name) else {
                out.append(field)
                continue
            }
            var kept: [Substring] = []
            var changed = false
            for part in field.value.utf8.split(separator: UInt8(ascii: ";")) {
                let trimmed = trim(part)
                let nameEnd = trimmed.firstIndex(of: UInt8(ascii: "=")) ?? trimmed.endIndex
                if isOwn(Substring(trim(trimmed[trimmed.startIndex..<nameEnd]))) {
                    changed = true
                } else {
                    kept.append(Substring(trimmed))
                }
            }
            if !changed {
                out.append(field)
            } else if !kept.isEmpty {
                out.append((name: field.name, value: kept.joined(separator: "; ")))
            }
        }
        return out
    }

    /// The `Set-Cookie` values of an upstream response that name a cookie for which `isOwn` holds: an upstream
    /// may not set, overwrite or delete Gatehouse's cookies.
    public static func ownSetCookies(_ values: [String], isOwn: (Substring) -> Bool) -> [String] {
        values.filter { line in isOwn(Substring(line.prefix { $0 != "=" && $0 != ";" }).trimmingSpaces()) }
    }

    /// A `Set-Cookie` value. `maxAge` nil = a browser-session cookie; 0 = delete.
    public static func setCookie(
        name: String, value: String, maxAge: Int64?, secure: Bool, httpOnly: Bool = true,
        sameSite: SessionConfig.SameSite, domain: String?, path: String = "/"
    ) -> String {
        var s = "\(name)=\(value); Path=\(path)"
        if let domain { s += "; Domain=\(domain)" }
        if let maxAge { s += "; Max-Age=\(max(0, maxAge))" }
        if maxAge == 0 { s += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT" }
        if secure { s += "; Secure" }
        if httpOnly { s += "; HttpOnly" }
        s += "; SameSite=\(sameSite.attribute)"
        return s
    }
}

extension Substring {
    public func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
