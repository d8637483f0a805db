/// The one canonical view of a request target that routing, authorization and forwarding all use.
///
/// Rules (RFC 3986 §6.2.2): percent-encoded unreserved characters are decoded, other escapes are kept with
/// upper-case hex, dot segments are removed (§5.2.4) and repeated slashes are merged (as nginx's
/// `merge_slashes`), so the upstream can never see a path that routes differently from the one we matched.
/// Anything that cannot be canonicalised safely is refused: an encoded `/` (unless the route opts in),
/// an encoded or raw `\`, NUL and other control bytes, raw non-ASCII, invalid percent-encoding, a `#`, and
/// `.`/`..` segments carrying `;` parameters (`/..;/admin`, the Tomcat bypass).
public struct CanonicalTarget: Sendable, Equatable {
    /// Canonical path, always starting with `/`.
    public var path: String
    /// The raw query (without `?`), forwarded as received; never used for matching. nil when absent.
    public var query: String?
    /// True when the path kept an encoded slash (`%2F`); only routes with `allow_encoded_slashes` accept it.
    public var hasEncodedSlash: Bool
    /// True when a backend that decodes twice would see another path (`DoubleEncoding`); only routes with
    /// `allow_double_encoding` accept it.
    public var hasDoubleEncoding: Bool

    public init(path: String, query: String?, hasEncodedSlash: Bool, hasDoubleEncoding: Bool = false) {
        self.path = path
        self.query = query
        self.hasEncodedSlash = hasEncodedSlash
        self.hasDoubleEncoding = hasDoubleEncoding
    }

    /// The target to send upstream: canonical path plus the original query.
    public var forwardTarget: String {
        guard let query else { return path }
        return path + "?" + query
    }

    public enum Rejection: String, Error, Sendable, Equatable {
        case notOriginForm = "request target is not an absolute path"
        case fragment = "request target contains '#'"
        case invalidPercentEncoding = "invalid percent-encoding in path"
        case encodedBackslash = "encoded backslash in path"
        case backslash = "backslash in path"
        case controlCharacter = "control character in request target"
        case nonASCII = "non-ASCII byte in request target"
        case dotSegmentParameters = "dot segment with parameters in path"
        case tooLong = "request target too long"
    }

    @inline(__always)
    public static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Canonicalises an origin-form target (`/path?query`). Absolute-form targets are reduced to origin-form by
    /// the caller after checking their authority.
    public static func parse(_ target: String) throws(Rejection) -> CanonicalTarget {
        let utf8 = target.utf8
        guard utf8.count <= 16 * 1024 else { throw .tooLong }
        guard utf8.first == UInt8(ascii: "/") else { throw .notOriginForm }
        var pathEnd = utf8.endIndex
        var needsWork = false
        var previous: UInt8 = 0
        for i in utf8.indices {
            let b = utf8[i]
            if b == UInt8(ascii: "?") {
                pathEnd = i
                break
            }
            switch b {
            case UInt8(ascii: "#"): throw .fragment
            case UInt8(ascii: "\\"): throw .backslash
            case 0..<0x21, 0x7f: throw .controlCharacter
            case 0x80...: throw .nonASCII
            case UInt8(ascii: "%"), UInt8(ascii: ";"): needsWork = true
            case UInt8(ascii: ".") where previous == UInt8(ascii: "/"): needsWork = true
            case UInt8(ascii: "/") where previous == UInt8(ascii: "/"): needsWork = true
            default: break
            }
            previous = b
        }
        var query: String?
        if pathEnd != utf8.endIndex {
            let q = utf8[utf8.index(after: pathEnd)...]
            for b in q {
                switch b {
                case UInt8(ascii: "#"): throw .fragment
                case 0..<0x21, 0x7f: throw .controlCharacter
                case 0x80...: throw .nonASCII
                default: break
                }
            }
            query = String(Substring(q))
        }
        if !needsWork {
            return CanonicalTarget(path: String(Substring(utf8[..<pathEnd])), query: query, hasEncodedSlash: false)
        }
        let (path, encodedSlash) = try canonicalPath(utf8[..<pathEnd])
        return CanonicalTarget(
            path: path, query: query, hasEncodedSlash: encodedSlash,
            hasDoubleEncoding: DoubleEncoding.changesPath(canonical: path))
    }

    static func canonicalPath(_ raw: Substring.UTF8View) throws(Rejection) -> (String, Bool) {
        // 1. Percent-decoding of unreserved characters, upper-case hex elsewhere.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(raw.count)
        var encodedSlash = false
        var i = raw.startIndex
        while i != raw.endIndex {
            let b = raw[i]
            if b == UInt8(ascii: "%") {
                let h1i = raw.index(after: i)
                guard h1i != raw.endIndex else { throw .invalidPercentEncoding }
                let h2i = raw.index(after: h1i)
                guard h2i != raw.endIndex, let h1 = hexValue(raw[h1i]), let h2 = hexValue(raw[h2i]) else {
                    throw .invalidPercentEncoding
                }
                let value = h1 << 4 | h2
                if isUnreserved(value) {
                    decoded.append(value)
                } else {
                    switch value {
                    case UInt8(ascii: "\\"): throw .encodedBackslash
                    case 0..<0x20, 0x7f: throw .controlCharacter
                    case UInt8(ascii: "/"): encodedSlash = true
                    default: break
                    }
                    decoded.append(UInt8(ascii: "%"))
                    decoded.append(hexDigits[Int(value >> 4)])
                    decoded.append(hexDigits[Int(value & 0xf)])
                }
                i = raw.index(after: h2i)
            } else {
                decoded.append(b)
                i = raw.index(after: i)
            }
        }
        // 2. Segments: merge empty ones, drop ".", pop on "..".
        var segments: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        var start = 1  // skip the leading "/"
        var index = 1
        while index <= decoded.count {
            if index == decoded.count || decoded[index] == UInt8(ascii: "/") {
                let segment = decoded[start..<index]
                let isLast = index == decoded.count
                if let semicolon = segment.firstIndex(of: UInt8(ascii: ";")) {
                    let name = segment[segment.startIndex..<semicolon]
                    if name.elementsEqual([UInt8(ascii: ".")])
                        || name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
                    {
                        throw .dotSegmentParameters
                    }
                }
                if segment.isEmpty {
                    if isLast { trailingSlash = true }
                } else if segment.elementsEqual([UInt8(ascii: ".")]) {
                    if isLast { trailingSlash = true }
                } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                    if !segments.isEmpty { segments.removeLast() }
                    if isLast { trailingSlash = true }
                } else {
                    segments.append(segment)
                    trailingSlash = false
                }
                start = index + 1
            }
            index += 1
        }
        var out: [UInt8] = [UInt8(ascii: "/")]
        out.reserveCapacity(decoded.count)
        for (n, s) in segments.enumerated() {
            if n > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: s)
        }
        if trailingSlash, !segments.isEmpty { out.append(UInt8(ascii: "/")) }
        return (String(decoding: out, as: UTF8.self), encodedSlash)
    }
}
