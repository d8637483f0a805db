/// Request `Cookie` parsing and `Set-Cookie` building (RFC 6265), for Gatehouse's own cookies.
public enum Cookies {
    /// At most this many cookies are looked at per request: a hostile header with thousands of pairs costs a
    /// bounded amount of work.
    public static let maxPairs = 200

    /// Every `name=value` pair of every `Cookie` header, in order. Quoted values lose their quotes; pairs
    /// without `=` are skipped.
    public static func parse(_ headers: HeaderFields) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in headers where name.utf8.count == 6 && name.lowercased() == "cookie" {
            for part in value.split(separator: ";") {
                if pairs.count >= maxPairs { return pairs }
                guard let eq = part.firstIndex(of: "=") else { continue }
                let n = part[..<eq].trimmingSpaces()
                var v = part[part.index(after: eq)...].trimmingSpaces()
                if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") { v = v.dropFirst().dropLast() }
                guard !n.isEmpty else { continue }
                pairs.append((String(n), String(v)))
            }
        }
        return pairs
    }

    /// The request's header fields with every cookie for which `isOwn` holds removed from `Cookie` headers
    /// (a `Cookie` header left empty is dropped). Other cookies are passed on byte for byte.
    public static func removing(_ isOwn: (Substring) -> Bool, from headers: HeaderFields) -> HeaderFields {
        var out: HeaderFields = []
        out.reserveCapacity(headers.count)
        for field in headers {
            guard field.name.utf8.count == 6, field.name.lowercased() == "cookie" else {
                out.append(field)
                continue
            }
            var kept: [Substring] = []
            var changed = false
            for part in field.value.split(separator: ";") {
                let name = (part.firstIndex(of: "=").map { part[..<$0] } ?? part).trimmingSpaces()
                if isOwn(name) {
                    changed = true
                } else {
                    kept.append(part.trimmingSpaces())
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
