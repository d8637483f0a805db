/// Request `Cookie` parsing and `Set-Cookie` building (RFC 6265), for Gatehouse's own cookies.
public enum Cookies {
    /// At most this many cookies are looked at per request: a hostile header with thousands of pairs costs a
    /// bounded amount of work.
    public static let maxPairs = 200

    /// Every `name=value` pair of every `Cookie` header, in order. Quoted values lose their quotes; pairs
    /// without `=` are skipped. Scans the header's contiguous UTF-8 bytes once (no split arrays: `split` and
    /// Character-level operations showed up in profiles of session routes); the delimiters are ASCII, so every
    /// slice is valid UTF-8.
    public static func parse(_ headers: HeaderFields) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in headers where isCookieHeader(name) {
            var value = value
            let full = value.withUTF8 { parse(value: $0, into: &pairs) }
            if full { return pairs }
        }
        return pairs
    }

    /// `parse` for one `Cookie` value's bytes (the HTTP/1 edge passes the head's bytes: no String of the whole
    /// header). Appends its pairs; returns true once `maxPairs` is reached (look at no more).
    public static func parse(value buf: UnsafeBufferPointer<UInt8>, into pairs: inout [(name: String, value: String)])
        -> Bool
    {
        forEachPart(buf) { part in
            if pairs.count >= maxPairs { return false }
            guard let eq = buf[part].firstIndex(of: UInt8(ascii: "=")) else { return true }
            let n = trim(buf, part.lowerBound..<eq)
            var v = trim(buf, (eq + 1)..<part.upperBound)
            if v.count >= 2, buf[v.lowerBound] == UInt8(ascii: "\""), buf[v.upperBound - 1] == UInt8(ascii: "\"") {
                v = (v.lowerBound + 1)..<(v.upperBound - 1)
            }
            guard !n.isEmpty else { return true }
            pairs.append((text(buf, n), text(buf, v)))
            return true
        }
    }

    /// Calls `body` with each `;`-separated non-empty range of `buf`; stops (returning true) when it returns false.
    @inline(__always)
    static func forEachPart(_ buf: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Bool) -> Bool {
        var i = 0
        while i < buf.count {
            var end = i
            while end < buf.count, buf[end] != UInt8(ascii: ";") { end += 1 }
            if end > i, !body(i..<end) { return true }
            i = end + 1
        }
        return false
    }

    @inline(__always)
    static func trim(_ buf: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Range<Int> {
        var lo = r.lowerBound
        var hi = r.upperBound
        while lo < hi, buf[lo] == 0x20 || buf[lo] == 0x09 { lo += 1 }
        while hi > lo, buf[hi - 1] == 0x20 || buf[hi - 1] == 0x09 { hi -= 1 }
        return lo..<hi
    }

    @inline(__always)
    static func text(_ buf: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buf[r]), as: UTF8.self)
    }

    /// A `Cookie` header, in any case.
    @inline(__always)
    public static func isCookieHeader(_ name: String) -> Bool {
        RequestValidation.equalsLowercase(name, "cookie")
    }

    /// The request's header fields with every cookie for which `isOwn` holds removed from `Cookie` headers
    /// (a `Cookie` header left empty is dropped). Other cookies are passed on byte for byte; a header with none
    /// of ours is passed on as it is.
    public static func removing(_ isOwn: (Substring) -> Bool, from headers: HeaderFields) -> HeaderFields {
        var out: HeaderFields = []
        out.reserveCapacity(headers.count)
        for field in headers {
            guard isCookieHeader(field.name) else {
                out.append(field)
                continue
            }
            var value = field.value
            let kept = value.withUTF8 { filtered($0, removing: isOwn) }
            switch kept {
            case .none: out.append(field)
            case .some(nil): break
            case .some(let joined?): out.append((name: field.name, value: joined))
            }
        }
        return out
    }

    /// A `Cookie` value without the cookies for which `isOwn` holds: `.none` when none of them was there (the
    /// value is passed on as it is), `.some(nil)` when nothing is left (the field goes), else the kept pairs
    /// joined with `; ` byte for byte.
    public static func filtered(_ buf: UnsafeBufferPointer<UInt8>, removing isOwn: (Substring) -> Bool) -> String?? {
        var kept: [Range<Int>] = []
        var changed = false
        _ = forEachPart(buf) { part in
            let trimmed = trim(buf, part)
            let nameEnd = buf[trimmed].firstIndex(of: UInt8(ascii: "=")) ?? trimmed.upperBound
            let name = trim(buf, trimmed.lowerBound..<nameEnd)
            if isOwn(Substring(text(buf, name))) {
                changed = true
            } else if !trimmed.isEmpty {
                kept.append(trimmed)
            }
            return true
        }
        guard changed else { return .none }
        if kept.isEmpty { return .some(nil) }
        return .some(kept.map { text(buf, $0) }.joined(separator: "; "))
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
